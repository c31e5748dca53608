"""Greedy layer-wise pre-training as an initialization (Bengio, Lamblin, Popovici & Larochelle
2007; Erhan, Bengio, Courville, Manzagol, Vincent & Bengio 2010).

Before the initializations of the 2010s, deep sigmoid networks trained by backpropagation from a
small random initialization stayed stuck near chance, and the remedy was to pre-train each layer,
bottom-up, as an autoencoder of the codes below it, then fine-tune the whole network (Bengio et
al. 2007, Sec. 3 and Table 1; Erhan et al. 2010, Sec. 6). Here: 5 hidden sigmoid layers of 256
units on the digits shipped with jwinit, the standard U(+-1/sqrt(n)) initialization alone and
followed by greedy pre-training (`jwinit.greedy_pretrain`: 300 full-batch Adam steps per layer on
the training set), then SGD on the labels.

Run: jwinit run --config=pretraining        (or pretraining:smoke)
"""

import ml_collections

STANDARD = "variance_scaling(scale=0.3333333333333333, mode='fan_in', distribution='uniform')"


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.experiment = "training"
    c.title = "Greedy layer-wise pre-training rescues a deep sigmoid network"
    c.paper = ('Bengio, Lamblin, Popovici & Larochelle 2007, "Greedy Layer-Wise Training of Deep '
               'Networks" (Sec. 3, Table 1); Erhan et al. 2010, "Why Does Unsupervised '
               'Pre-training Help Deep Learning?" (Sec. 6).')
    c.not_covered = ("The papers pre-train with RBMs and (denoising) autoencoders on MNIST and "
                     "other sets and also study generalization; this config pre-trains plain "
                     "autoencoders on 8x8 digits and reports the optimization effect only.")
    c.data = "digits"
    c.model = "mlp"
    c.depth = 5
    c.width = 256
    c.activations = ("sigmoid",)
    c.inits = (("standard U(+-1/sqrt(n))", STANDARD),
               ("standard, then greedy pre-training", f"pretrain:{STANDARD}"))
    c.pretrain_steps = 300
    c.pretrain_learning_rate = 0.01
    c.optimizer = "sgd"
    c.learning_rates = (0.03, 0.1, 0.3)
    c.steps = 2000
    c.batch_size = 16
    c.eval_every = 100
    c.seeds = 3
    c.seed = 0
    c.target_loss = 1.0
    c.signal = False
    c.claims = (
        ("reaches", "Sec. 3, Table 1 (greedy pre-training, then fine-tuning, trains the deep "
         "network)", "standard, then greedy pre-training", "sigmoid", 2000),
        ("stalls", "Sec. 3 (without pre-training the deep sigmoid network stays near chance)",
         "standard U(+-1/sqrt(n))", "sigmoid", 1, "standard, then greedy pre-training"),
    )
    if arg == "smoke":
        c.steps = 1000
        c.seeds = 2
        c.learning_rates = (0.1, 0.3)
        c.target_loss = 1.5
        c.claims = (
            ("reaches", c.claims[0][1], c.claims[0][2], "sigmoid", 1000),
            c.claims[1],
        )
    elif arg is not None:
        raise ValueError(f"unknown config argument {arg!r}; legal: 'smoke' or none.")
    return c

"""Greedy layer-wise pre-training as an initialization (Bengio, Lamblin, Popovici & Larochelle
2007; Erhan, Bengio, Courville, Manzagol, Vincent & Bengio 2010).

Before the initializations of the 2010s, deep sigmoid networks trained by backpropagation from a
small random initialization stayed stuck near chance, and the remedy was to pre-train each layer,
bottom-up, as an autoencoder of the codes below it, then fine-tune the whole network (Bengio et
al. 2007, Sec. 3 and Table 1; Erhan et al. 2010, Sec. 6). Here: 5 hidden sigmoid layers of 256
units on the digits shipped with jwinit, the standard U(+-1/sqrt(n)) initialization alone and
followed by greedy pre-training (`jwinit.greedy_pretrain`: 300 full-batch Adam steps per layer on
the training set), then SGD on the labels.

Title: Greedy layer-wise pre-training rescues a deep sigmoid network
Paper: Bengio, Lamblin, Popovici & Larochelle 2007, "Greedy Layer-Wise Training of Deep Networks"
  (Sec. 3, Table 1); Erhan et al. 2010, "Why Does Unsupervised Pre-training Help Deep Learning?"
  (Sec. 6).
Not covered: The papers pre-train with RBMs and (denoising) autoencoders on MNIST and other sets and
  also study generalization; this config pre-trains plain autoencoders on 8x8 digits and reports the
  optimization effect only.

Run: jwinit run --config=pretraining        (or pretraining:smoke)
"""

from jwinit.experiments import config

STANDARD = "variance_scaling(scale=0.3333333333333333, mode='fan_in', distribution='uniform')"
PLAIN = "standard U(+-1/sqrt(n))"
PRETRAINED = "standard, then greedy pre-training"
REACHES = "Sec. 3, Table 1 (greedy pre-training, then fine-tuning, trains the deep network)"
STALLS = ("stalls", "Sec. 3 (without pre-training the deep sigmoid network stays near chance)",
          PLAIN, "sigmoid", 1, PRETRAINED)


def get_config(arg=None):
    return config(
        "training", arg, __doc__, depth=5, width=256, activations=("sigmoid",),
        inits=((PLAIN, STANDARD), (PRETRAINED, f"pretrain:{STANDARD}")),
        pretrain_steps=300, pretrain_learning_rate=0.01,
        optimizer="sgd", learning_rates=(0.03, 0.1, 0.3), steps=2000, batch_size=16,
        eval_every=100, target_loss=1.0,
        claims=(("reaches", REACHES, PRETRAINED, "sigmoid", 2000), STALLS),
        smoke=dict(steps=1000, seeds=2, learning_rates=(0.1, 0.3), target_loss=1.5,
                   claims=(("reaches", REACHES, PRETRAINED, "sigmoid", 1000), STALLS)))

"""Glorot & Bengio 2010, "Understanding the difficulty of training deep feedforward neural
networks", Sec. 3-4: saturation of sigmoid networks, and the normalized initialization.

Sec. 3.1 (Fig. 2): with the standard initialization U(+-1/sqrt(n)), the top hidden layer of a
sigmoid network is driven to saturation at 0 early in training while the lower layers stay around
0.5; sigmoid networks learn worse than symmetric ones (tanh). Sec. 4.2: the normalized
initialization U(+-sqrt(6 / (n_in + n_out))) keeps activations and gradients alike across layers
and trains faster. Here: MLPs of 4 hidden layers of 256 units on the digits shipped with jwinit,
plain SGD (batch 16, as the paper's small mini-batches), four learning rates, three seeds.

Run: jwinit run --config=glorot2010_training        (or glorot2010_training:smoke)
"""

import ml_collections

STANDARD = "variance_scaling(scale=0.3333333333333333, mode='fan_in', distribution='uniform')"


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.experiment = "training"
    c.title = "Glorot & Bengio 2010: saturation and the normalized initialization in training"
    c.paper = ('Glorot & Bengio 2010, "Understanding the difficulty of training deep feedforward '
               'neural networks" (Sec. 3.1 and Fig. 2; Sec. 4.2 and Fig. 11).')
    c.not_covered = ("The paper trains 5-layer networks of 1000 units on Shapeset-3x2, MNIST and "
                     "CIFAR-10, and also studies softsign; this config uses 4 hidden layers of 256 "
                     "units on 8x8 digits. The signal at initialization is configs/glorot2010.py.")
    c.data = "digits"
    c.model = "mlp"
    c.depth = 4
    c.width = 256
    c.activations = ("tanh", "sigmoid")
    c.inits = (("standard U(+-1/sqrt(n))", STANDARD),
               ("normalized U(+-sqrt(6/(n_in+n_out)))", "glorot_uniform"))
    c.optimizer = "sgd"
    c.learning_rates = (0.03, 0.1, 0.3, 1.0)
    c.steps = 2000
    c.batch_size = 16
    c.eval_every = 25
    c.seeds = 3
    c.seed = 0
    c.target_loss = 0.3
    c.signal = True
    c.claims = (
        ("saturates", "Sec. 3.1, Fig. 2 (top hidden layer of a sigmoid net saturates at 0)",
         "standard U(+-1/sqrt(n))", "sigmoid", 0.3, 0.1, 500),
        ("better_activation", "Sec. 3 and Table 1 (sigmoid networks learn worse than tanh)",
         "standard U(+-1/sqrt(n))", "tanh", "sigmoid"),
        ("faster", "Sec. 4.2, Fig. 11 (normalized initialization trains faster)",
         "normalized U(+-sqrt(6/(n_in+n_out)))", "standard U(+-1/sqrt(n))", "tanh"),
    )
    if arg == "smoke":
        c.width = 128
        c.learning_rates = (0.03, 0.1, 0.3)
        c.steps = 600
        c.seeds = 2
    elif arg is not None:
        raise ValueError(f"unknown config argument {arg!r}; legal: 'smoke' or none.")
    return c

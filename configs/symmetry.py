"""Symmetry breaking: why weights must start random.

If every weight of a layer starts equal (zero or any constant), every hidden unit of the layer
computes the same function and receives the same gradient, so the units stay identical forever:
each hidden kernel keeps identical columns (rank one, or zero) and the network is no wider than one
unit per layer (Goodfellow, Bengio & Courville 2016, "Deep Learning", Sec. 8.4; Rumelhart, Hinton &
Williams 1986). With zeros and tanh even the gradient of every hidden kernel is zero. Here: a
3-hidden-layer tanh MLP on the digits shipped with jwinit, initialized with zeros, a constant, and
LeCun's random normal for comparison.

Run: jwinit run --config=symmetry        (or symmetry:smoke)
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.experiment = "training"
    c.title = "Symmetry breaking: zero and constant initializations cannot train"
    c.paper = ('Goodfellow, Bengio & Courville 2016, "Deep Learning" (Sec. 8.4, "the need to '
               'break symmetry"); Rumelhart, Hinton & Williams 1986.')
    c.not_covered = ("Biases (zero here) and the readout layer may differ between units; "
                     "dropout, which can break symmetry by itself, is not used.")
    c.data = "digits"
    c.model = "mlp"
    c.depth = 3
    c.width = 64
    c.activations = ("tanh",)
    c.inits = (("zeros", "zeros"), ("constant 0.05", "constant(value=0.05)"),
               ("LeCun normal (random)", "lecun_normal"))
    c.optimizer = "momentum"
    c.momentum = 0.9
    c.learning_rates = (0.01, 0.1)
    c.steps = 600
    c.batch_size = 64
    c.eval_every = 50
    c.seeds = 3
    c.seed = 0
    c.target_loss = 0.3
    c.signal = False
    c.claims = (
        ("symmetric", "Sec. 8.4 (identical units receive identical updates)", "zeros", "tanh"),
        ("symmetric", "Sec. 8.4", "constant 0.05", "tanh"),
        ("accuracy_below", "Sec. 8.4 (a network of identical units is one unit wide)",
         "zeros", "tanh", 0.5, "LeCun normal (random)"),
        ("accuracy_below", "Sec. 8.4", "constant 0.05", "tanh", 0.5, "LeCun normal (random)"),
        ("reaches", "random initialization breaks the symmetry and trains",
         "LeCun normal (random)", "tanh", 300),
    )
    if arg == "smoke":
        c.steps = 300
        c.seeds = 2
    elif arg is not None:
        raise ValueError(f"unknown config argument {arg!r}; legal: 'smoke' or none.")
    return c

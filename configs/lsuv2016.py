"""Mishkin & Matas 2016, "All you need is a good init": Layer-Sequential Unit-Variance init.

LSUV (Algorithm 1) starts from any initialization (the paper: orthonormal), then, layer by layer
in call order, rescales each kernel until the layer's output has unit variance on a data batch.
A deep ReLU network from a fixed N(0, 0.01^2) loses a factor width * 1e-4 / 2 of its signal per
layer (0.0064 at width 128) and cannot train; LSUV from the very same weights trains. The paper
also reports LSUV on top of orthonormal init for tanh networks.

Here: 20-layer MLPs (ReLU and tanh, width 128) on the digits shipped with jwinit: N(0, 0.01^2)
and orthogonal, each alone and followed by LSUV (`jwinit.lsuv` on each seed's first training
batch), SGD with momentum, three learning rates and three seeds.

Run: jwinit run --config=lsuv2016        (or lsuv2016:smoke)
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.experiment = "training"
    c.title = "LSUV (Mishkin & Matas 2016): unit variance layer by layer from any init"
    c.paper = ('Mishkin & Matas 2016, "All you need is a good init" (ICLR 2016; Sec. 2, '
               'Algorithm 1; Sec. 3).')
    c.not_covered = ("The paper trains FitNets and residual networks on MNIST, CIFAR-10/100 and "
                     "ImageNet; this config trains 20-layer MLPs on 8x8 digits. The LSUV batch "
                     "is each seed's first training batch of 64 examples (the paper: one "
                     "mini-batch). The paper's comparison of LSUV with orthonormal init alone "
                     "for tanh is shown but not claimed: at depth 20 orthogonal init alone "
                     "(gain 1, near the tanh edge of chaos) trains the tanh network as fast.")
    c.data = "digits"
    c.model = "mlp"
    c.depth = 20
    c.width = 128
    c.activations = ("relu", "tanh")
    c.inits = (("N(0, 0.01^2)", "normal(stddev=0.01)"),
               ("LSUV from N(0, 0.01^2)", "lsuv:normal(stddev=0.01)"),
               ("orthogonal", "orthogonal"),
               ("LSUV from orthogonal", "lsuv:orthogonal"))
    c.optimizer = "momentum"
    c.momentum = 0.9
    c.learning_rates = (0.003, 0.01, 0.03)
    c.steps = 500
    c.batch_size = 64
    c.eval_every = 50
    c.seeds = 3
    c.seed = 0
    c.target_loss = 0.3
    c.signal = False
    c.claims = (
        ("fails", "Sec. 3 (a deep net from a small fixed-variance init does not train)",
         "N(0, 0.01^2)", "relu"),
        ("reaches", "Sec. 2, Algorithm 1 (LSUV from the same weights trains)",
         "LSUV from N(0, 0.01^2)", "relu", 300),
        ("reaches", "Sec. 3 (LSUV with orthonormal init trains tanh networks)",
         "LSUV from orthogonal", "tanh", 300),
    )
    if arg == "smoke":
        c.width = 64
        c.learning_rates = (0.01, 0.03)
        c.steps = 300
        c.seeds = 2
    elif arg is not None:
        raise ValueError(f"unknown config argument {arg!r}; legal: 'smoke' or none.")
    return c

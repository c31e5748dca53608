"""Zhang, Dauphin & Ma 2019, "Fixup Initialization: Residual Learning Without Normalization".

In a residual network x_{l+1} = x_l + F_l(x_l) without normalization, the standard (He)
initialization makes every branch add as much variance as the stream already has: for ReLU
branches E[x_{l+1}^2] = 2 E[x_l^2], so L blocks multiply the output's second moment by 2^L and the
gradients explode (Sec. 2, Theorem 1). Fixup (Sec. 3) starts the last layer of every branch and
the classifier at zero and scales the other branch layers by L^(-1/(2m-2)): every block starts as
the identity and the network trains at any depth without normalization (Sec. 4). With BatchNorm
the standard initialization trains as well: normalization and careful initialization are two
answers to the same problem.

Here: `jwinit.models.ResidualMLP` (pre-activation blocks of 2 ReLU Dense layers of width 64) on
the digits shipped with jwinit, with and without BatchNorm, at 16 and 64 blocks, He initialization
against Fixup (`jwinit.fixup_rules` applied by `jwinit.init_params`), SGD with momentum, three
learning rates and three seeds.

Run: jwinit run --config=fixup2019        (or fixup2019:smoke)
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.experiment = "training"
    c.title = "Fixup (Zhang, Dauphin & Ma 2019): deep residual networks without normalization"
    c.paper = ('Zhang, Dauphin & Ma 2019, "Fixup Initialization: Residual Learning Without '
               'Normalization" (ICLR 2019; Sec. 2, Theorem 1; Sec. 3; Sec. 4).')
    c.not_covered = ("The paper trains convolutional ResNets (up to 10,000 layers) on CIFAR-10 "
                     "and ImageNet and Transformers on translation, with Fixup's scalar biases "
                     "and multiplier; this config trains fully connected residual networks of 16 "
                     "and 64 blocks on 8x8 digits, with Fixup's initialization only (no scalar "
                     "biases or multiplier).")
    c.data = "digits"
    c.model = "residual"
    c.blocks = (16, 64)
    c.branch_layers = 2
    c.norms = (None, "batch")
    c.width = 64
    c.activations = ("relu",)
    c.inits = (("He (standard)", "he_normal"), ("Fixup", "fixup"))
    c.optimizer = "momentum"
    c.momentum = 0.9
    c.learning_rates = (0.003, 0.01, 0.03)
    c.steps = 300
    c.batch_size = 64
    c.eval_every = 50
    c.seeds = 3
    c.seed = 0
    c.target_loss = 0.3
    c.signal = False
    c.claims = (
        ("fails", "Sec. 2, Theorem 1 (standard init without normalization: the output and "
         "gradients explode with depth)", "He (standard)", "relu, 64 blocks"),
        ("reaches", "Sec. 3 and 4 (Fixup trains deep residual networks without normalization)",
         "Fixup", "relu, 64 blocks", 250),
        ("reaches", "Sec. 4 (with normalization the standard init trains too: the BatchNorm "
         "baselines)", "He (standard)", "relu, 64 blocks, BatchNorm", 250),
        ("reaches", "Sec. 3 and 4 (Fixup at a smaller depth)", "Fixup", "relu, 16 blocks", 250),
    )
    if arg == "smoke":
        c.blocks = (8, 32)
        c.learning_rates = (0.003, 0.01)
        c.steps = 250
        c.seeds = 2
        c.claims = tuple(
            (k, ref, init, net.replace("64 blocks", "32 blocks").replace("16 blocks", "8 blocks"),
             *rest) for k, ref, init, net, *rest in c.claims)
    elif arg is not None:
        raise ValueError(f"unknown config argument {arg!r}; legal: 'smoke' or none.")
    return c

"""He et al. 2015, "Delving Deep into Rectifiers": initializing rectifier networks at init.

With ReLU, Var(W) = 2 / fan_in keeps the forward and backward second moments constant through
depth (Sec. 2.2, eqs. 10 and 14), while Glorot's 2 / (fan_in + fan_out) = 1 / fan_in on square
layers halves them at every layer: over the paper's 30 layers the signal shrinks by 2^29 (the
30-layer net initialized so stalls, Fig. 3). For a leaky ReLU / PReLU with slope a the right
variance is 2 / ((1 + a^2) fan_in) (eq. 15). A fixed small std (0.01, as in AlexNet-era code)
vanishes.

Run: jwinit run --config=he2015        (depth 30, width 1024, as the paper's 30-layer net)
     jwinit run --config=he2015:smoke  (small and fast)
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.experiment = "signal_propagation"
    c.title = "He et al. 2015: initializing rectifier networks"
    c.paper = ('He, Zhang, Ren & Sun 2015, "Delving Deep into Rectifiers: Surpassing Human-Level '
               'Performance on ImageNet Classification" (Sec. 2.2, Fig. 3).')
    c.description = __doc__
    c.not_covered = ("The paper's training result (the 30-layer ReLU net converges with its "
                     "init and stalls with Glorot's, Fig. 3) is about training: "
                     "configs/he2015_training.py.")
    c.pairs = (
        "he_normal+relu",
        "glorot_normal+relu",
        "he_normal(negative_slope=0.25)+leaky_relu:0.25",
        "he_normal+leaky_relu:0.25",
        "normal(stddev=0.01)+relu",
    )
    c.names = (
        ("he_normal+relu", "He, Var = 2/n (ReLU)"),
        ("glorot_normal+relu", "Glorot, Var = 2/(n_in + n_out) (ReLU)"),
        ("he_normal(negative_slope=0.25)+leaky_relu:0.25", "He for slope 0.25 (leaky ReLU)"),
        ("he_normal+leaky_relu:0.25", "He for ReLU, used with leaky ReLU 0.25"),
        ("normal(stddev=0.01)+relu", "N(0, 0.01^2) (ReLU)"),
    )
    c.expected = (
        ("he_normal+relu", "preserved", "Sec. 2.2, eqs. 10 and 14"),
        ("glorot_normal+relu", "vanishing", "Sec. 2.2 (Glorot's variance halves the signal "
                                            "per layer), Fig. 3"),
        ("he_normal(negative_slope=0.25)+leaky_relu:0.25", "preserved", "Sec. 2.2, eq. 15"),
        ("normal(stddev=0.01)+relu", "vanishing", "Sec. 2.2 (fixed-std init)"),
    )
    c.depths = (30,)
    c.widths = (1024,)
    c.seeds = 8
    c.batch = 512
    c.seed = 0
    c.bias = None
    c.precision = None
    if arg == "smoke":
        c.widths = (128,)
        c.seeds = 4
        c.batch = 64
    elif arg is not None:
        raise ValueError(f"unknown config argument {arg!r}; legal: 'smoke' or none.")
    return c

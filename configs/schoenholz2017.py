"""Schoenholz et al. 2017, "Deep Information Propagation": the order-to-chaos phase diagram.

Two inputs of correlation 0.5 are propagated through random tanh MLPs on a grid of
(sigma_w2, sigma_b2). Left of the critical line chi1 = 1 their pre-activations become identical
(c -> 1, ordered); right of it they decorrelate to c* < 1 (chaotic); near the line the
correlation converges slowly (the depth scale xi_c diverges), which is what lets information and
gradients travel through very deep networks (Sec. 3, Figs. 1-2; Poole et al. 2016, Fig. 2). The
measured correlations, extrapolated to infinite width from two widths, are held against the
mean-field c-map layer by layer.

Run: jwinit run --config=schoenholz2017        (or schoenholz2017:smoke)
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.experiment = "phase_diagram"
    c.activation = "tanh"
    c.sigma_w2 = tuple(round(0.5 + 0.25 * i, 4) for i in range(15))  # 0.5 .. 4.0
    c.sigma_b2 = (0.0, 0.05, 0.1, 0.2, 0.3)
    c.depth = 50
    c.widths = (512, 1024)  # two widths: the O(1/n) finite-width bias is extrapolated away
    c.seeds = 6
    c.batch = 64  # 32 input pairs per seed
    c.seed = 0
    c.input_correlation = 0.5
    c.se_multiple = 5.0  # agreement within 5 standard errors at every layer of every cell
    if arg == "smoke":
        c.sigma_w2 = (0.5, 1.0, 1.5, 2.5, 4.0)
        c.sigma_b2 = (0.0, 0.1)
        c.depth = 20
        c.widths = (64, 128)
        c.seeds = 4
    elif arg is not None:
        raise ValueError(f"unknown config argument {arg!r}; legal: 'smoke' or none.")
    return c

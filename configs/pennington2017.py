"""Pennington, Schoenholz & Ganguli 2017, "Resurrecting the sigmoid in deep learning through
dynamical isometry", and Saxe, McClelland & Ganguli 2014 (deep linear networks).

The input-output Jacobian of a network at the edge of chaos has mean squared singular value 1;
whether its whole spectrum stays concentrated around 1 (dynamical isometry) depends on the weights:
orthogonal weights achieve it for linear networks exactly and for tanh with small q*; Gaussian
weights never do, their spectral variance growing linearly with depth; ReLU never does, even with
orthogonal weights.

Run: jwinit run --config=pennington2017        (or pennington2017:smoke)
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.experiment = "isometry"
    # (activation, sigma_b2); sigma_w2 is the critical one. tanh with sigma_b2 = 1e-3 has
    # sigma_w2 = 1.189 and q* = 0.107 (small q*: the near-linear regime of the paper); ReLU at
    # He's sigma_w2 = 2.
    c.cases = (("linear", 0.0), ("tanh", 1e-3), ("relu", 0.0))
    c.depths = (4, 16, 64)
    c.width = 512
    # 12 seeds: the Gaussian-vs-orthogonal rank test has p = 1 / C(24, 12) = 3.7e-7 by chance, and
    # the per-cell agreement threshold (Student-t, 11 degrees of freedom, Bonferroni over the 36
    # moments, 1% family-wise) is 5.2 standard errors.
    c.seeds = 12
    c.seed = 0
    c.family_error = 0.01
    if arg == "smoke":
        c.cases = (("linear", 0.0), ("tanh", 1e-3))
        c.depths = (4, 16)
        c.width = 256  # at width 128 the O(1/n) correction to the mean eigenvalue (~9%) is
        c.seeds = 6    # already larger than the threshold
    elif arg is not None:
        raise ValueError(f"unknown config argument {arg!r}; legal: 'smoke' or none.")
    return c

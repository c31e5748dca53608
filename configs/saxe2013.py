"""Saxe, McClelland & Ganguli 2014 (arXiv 2013), "Exact solutions to the nonlinear dynamics of
learning in deep linear neural networks", Secs. 3-4: depth-independent learning times.

Deep linear networks trained by gradient descent (learning rate optimized per depth): with random
orthogonal weights the number of steps to learn saturates as depth grows; with scaled random
Gaussian weights of the same variance (Var(W) = 1 / fan_in) learning slows down sharply with depth
and deep nets fail to learn in the step budget. (The Jacobian side of the same paper, every
singular value 1 for orthogonal linear chains, is in configs/pennington2017.py.)

Run: jwinit run --config=configs/saxe2013.py[:smoke]
"""

import ml_collections
import numpy as np

ORTHOGONAL = "orthogonal"
GAUSSIAN = "variance_scaling(scale=1.0, mode='fan_in', distribution='normal')"


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.experiment = "linear_learning"
    c.schemes = (ORTHOGONAL, GAUSSIAN)
    c.orthogonal_scheme = ORTHOGONAL
    c.gaussian_scheme = GAUSSIAN
    c.depths = (2, 4, 8, 16, 32, 64)
    c.width = 32
    # learning rate = c / depth, c from 1 to 10^1.75 = 56 in 15 steps of x1.33
    c.lr_times_depth = tuple(float(x) for x in np.logspace(0.0, 1.75, 15))
    c.criterion = 1e-2          # relative error |M - P|^2 / |M|^2
    c.max_steps = 1000
    c.seeds = 4
    c.seed = 0
    # The checks' bounds default to the learning-rate grid's resolution r = 10^(1.75/14) = 1.33
    # (steps(L) / steps(L/2) <= r at the deep end; optimal lr x depth within r^2). Gaussian vs
    # orthogonal at the largest depth: at least 3x slower, or never reaching the criterion.
    c.gaussian_slowdown = 3.0
    if arg == "smoke":
        c.depths = (2, 8, 16, 32)
        c.max_steps = 500
    elif arg is not None:
        raise ValueError(f"unknown config argument {arg!r}; legal: 'smoke' or none.")
    return c

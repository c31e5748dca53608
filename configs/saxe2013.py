"""Saxe, McClelland & Ganguli 2014 (arXiv 2013), "Exact solutions to the nonlinear dynamics of
learning in deep linear neural networks", Secs. 3-4: depth-independent learning times.

Deep linear networks trained by gradient descent (learning rate optimized per depth): with random
orthogonal weights the number of steps to learn saturates as depth grows; with scaled random
Gaussian weights of the same variance (Var(W) = 1 / fan_in) learning slows down sharply with depth
and deep nets fail to learn in the step budget. (The Jacobian side of the same paper, every
singular value 1 for orthogonal linear chains, is in configs/pennington2017.py.)

Run: jwinit run --config=saxe2013        (or saxe2013:smoke)
"""

from jwinit.experiments import config


def get_config(arg=None):
    return config("linear_learning", arg, smoke=dict(depths=(2, 8, 16, 32), max_steps=500))

"""Pennington, Schoenholz & Ganguli 2017, "Resurrecting the sigmoid in deep learning through
dynamical isometry", and Saxe, McClelland & Ganguli 2014 (deep linear networks).

The input-output Jacobian of a network at the edge of chaos has mean squared singular value 1;
whether its whole spectrum stays concentrated around 1 (dynamical isometry) depends on the weights:
orthogonal weights achieve it for linear networks exactly and for tanh with small q*; Gaussian
weights never do, their spectral variance growing linearly with depth; ReLU never does, even with
orthogonal weights.

Run: jwinit run --config=pennington2017        (or pennington2017:smoke)
"""

from jwinit.experiments import config


def get_config(arg=None):
    # smoke: at width 128 the O(1/n) correction to the mean eigenvalue (~9%) is already larger
    # than the threshold, hence width 256
    return config("isometry", arg, smoke=dict(
        cases=(("linear", 0.0), ("tanh", 1e-3)), depths=(4, 16), width=256, seeds=6))

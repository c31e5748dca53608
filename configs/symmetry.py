"""Symmetry breaking: why weights must start random.

If every weight of a layer starts equal (zero or any constant), every hidden unit of the layer
computes the same function and receives the same gradient, so the units stay identical forever:
each hidden kernel keeps identical columns (rank one, or zero) and the network is no wider than one
unit per layer (Goodfellow, Bengio & Courville 2016, "Deep Learning", Sec. 8.4; Rumelhart, Hinton &
Williams 1986). With zeros and tanh even the gradient of every hidden kernel is zero. Here: a
3-hidden-layer tanh MLP on the digits shipped with jwinit, initialized with zeros, a constant, and
LeCun's random normal for comparison.

Title: Symmetry breaking: zero and constant initializations cannot train
Paper: Goodfellow, Bengio & Courville 2016, "Deep Learning" (Sec. 8.4, "the need to break
  symmetry"); Rumelhart, Hinton & Williams 1986.
Not covered: Biases (zero here) and the readout layer may differ between units; dropout, which can
  break symmetry by itself, is not used.

Run: jwinit run --config=symmetry        (or symmetry:smoke)
"""

from jwinit.experiments import config

RANDOM = "LeCun normal (random)"


def get_config(arg=None):
    return config(
        "training", arg, __doc__, depth=3, activations=("tanh",),
        inits=(("zeros", "zeros"), ("constant 0.05", "constant(value=0.05)"),
               (RANDOM, "lecun_normal")),
        learning_rates=(0.01, 0.1), steps=600,
        claims=(
            ("symmetric", "Sec. 8.4 (identical units receive identical updates)", "zeros",
             "tanh"),
            ("symmetric", "Sec. 8.4", "constant 0.05", "tanh"),
            ("accuracy_below", "Sec. 8.4 (a network of identical units is one unit wide)",
             "zeros", "tanh", 0.5, RANDOM),
            ("accuracy_below", "Sec. 8.4", "constant 0.05", "tanh", 0.5, RANDOM),
            ("reaches", "random initialization breaks the symmetry and trains", RANDOM, "tanh",
             300),
        ),
        smoke=dict(steps=300, seeds=2))

"""Schoenholz, Gilmer, Ganguli & Sohl-Dickstein 2017, "Deep Information Propagation", Sec. 5 and
Fig. 5-6: random tanh networks are trainable only up to depth ~ 6 xi_c, and at the edge of chaos
(xi_c = inf) at any depth.

A (depth, sigma_w2) grid of tanh MLPs with sigma_b2 = 0.05, trained a fixed number of steps on the
digits shipped with jwinit, against the theory's depth scale (`jwinit.theory.depth_scales`); the
edge-of-chaos initialization from `jwinit.critical` is trained at every depth too.

Title: Schoenholz et al. 2017: trainability is bounded by the depth scale xi_c
Paper: Schoenholz, Gilmer, Ganguli & Sohl-Dickstein 2017, "Deep Information Propagation" (Sec. 5,
  Fig. 5-6).
Not covered: The paper trains width-300 networks on MNIST and CIFAR-10 up to depth 300 for many more
  steps; this config uses width 64, depths up to 60 and a fixed budget of 600 steps on 8x8 digits,
  so 'trains' means 'learns within that budget'. Deeper networks need a smaller learning rate and
  more steps than that budget even at criticality (at depth 90 the critical network reaches 0.2-0.6
  train accuracy in 1500 steps at learning rates 1e-3 and 2e-3), so the grid stops at depth 60. The
  signal-propagation side is configs/schoenholz2017.py.

Run: jwinit run --config=schoenholz2017_trainability        (or :smoke)
"""

from jwinit.experiments import config


def get_config(arg=None):
    return config(
        "trainability", arg, __doc__,
        smoke=dict(sigma_w2=(1.0, 1.75, 8.0), depths=(8, 60), steps=400))

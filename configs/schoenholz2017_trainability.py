"""Schoenholz, Gilmer, Ganguli & Sohl-Dickstein 2017, "Deep Information Propagation", Sec. 5 and
Fig. 5-6: random tanh networks are trainable only up to depth ~ 6 xi_c, and at the edge of chaos
(xi_c = inf) at any depth.

A (depth, sigma_w2) grid of tanh MLPs with sigma_b2 = 0.05, trained a fixed number of steps on the
digits shipped with jwinit, against the theory's depth scale (`jwinit.theory.depth_scales`); the
edge-of-chaos initialization from `jwinit.critical` is trained at every depth too.

Run: jwinit run --config=schoenholz2017_trainability        (or :smoke)
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.experiment = "trainability"
    c.title = "Schoenholz et al. 2017: trainability is bounded by the depth scale xi_c"
    c.paper = ('Schoenholz, Gilmer, Ganguli & Sohl-Dickstein 2017, "Deep Information '
               'Propagation" (Sec. 5, Fig. 5-6).')
    c.not_covered = ("The paper trains width-300 networks on MNIST and CIFAR-10 up to depth 300 "
                     "for many more steps; this config uses width 64, depths up to 60 and a "
                     "fixed budget of 600 steps on 8x8 digits, so 'trains' means 'learns within "
                     "that budget'. Deeper networks need a smaller learning rate and more steps "
                     "than that budget even at criticality (at depth 90 the critical network "
                     "reaches 0.2-0.6 train accuracy in 1500 steps at learning rates 1e-3 and "
                     "2e-3), so the grid stops at depth 60. The signal-propagation side is "
                     "configs/schoenholz2017.py.")
    c.data = "digits"
    c.activation = "tanh"
    c.sigma_b2 = 0.05
    # sigma_w2 = 8 has 6 xi_c = 28: at depth 60 it is the chaotic-side cell a factor 2 beyond the
    # boundary; sigma_w2 = 1 (6 xi_c = 22) is the ordered-side one at depths 45 and 60.
    c.sigma_w2 = (1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0, 6.0, 8.0)
    c.depths = (10, 20, 30, 45, 60)
    c.width = 64
    c.optimizer = "momentum"
    c.momentum = 0.9
    c.learning_rate = 1e-3
    c.steps = 600
    c.batch_size = 64
    c.eval_every = 200
    c.seeds = 2
    c.seed = 0
    c.threshold = 0.5
    c.band = 2.0
    if arg == "smoke":
        c.sigma_w2 = (1.0, 1.75, 8.0)
        c.depths = (8, 60)
        c.steps = 400
    elif arg is not None:
        raise ValueError(f"unknown config argument {arg!r}; legal: 'smoke' or none.")
    return c

"""Sutskever, Martens, Dahl & Hinton 2013: a deep autoencoder trains without pre-training from
Martens (2010)'s sparse initialization with momentum rising to 0.99; which of the two decides.

Deep autoencoders were the standard hard case of the 2000s: without pre-training, SGD from a small
random init stalled (configs/pretraining.py). Martens (2010, Sec. 5) started them from a sparse
init, each unit with 15 non-zero incoming weights from N(0, 1), so a unit's summed input has the
variance of 15 unit-variance terms whatever the layer's width, and its weights are still of order
1; Sutskever et al. (2013, Sec. 3) showed that SGD with a momentum that rises slowly toward
0.99 then trains such autoencoders to errors close to Hessian-free optimization's, and that both
the init and the momentum are needed. Here: the autoencoder 64-256-128-32-128-256-64 (sigmoid
hidden units, a linear output) on the digits shipped with jwinit, the standardized images as
targets (mean squared error; 0.95 when the output is 0), batch 100, Nesterov momentum on the
paper's schedule mu_t = min(1 - 2^(-1 - log2(floor(t / T) + 1)), mu_max). Three inits of the
kernels (biases zero): the sparse init; a dense Gaussian of the same per-unit input variance,
N(0, 15 / fan_in); a dense Gaussian of the same per-weight scale, N(0, 1). Two optimizers:
momentum rising to 0.99, and none (plain SGD); learning rates 0.1 to 3 (each setting's best is
inside the grid: 3 does not train).

Title: Sutskever et al. 2013: sparse initialization and momentum train a deep autoencoder
Paper: Sutskever, Martens, Dahl & Hinton 2013, "On the importance of initialization and momentum
  in deep learning" (Sec. 3 the momentum schedule, Sec. 3.1 the sparse initialization,
  Table 1 autoencoders by mu_max); Martens 2010, "Deep learning via Hessian-free optimization"
  (Sec. 5, the sparse initialization).
Not covered: The paper trains the Curves, MNIST and Faces autoencoders (up to 784-1000-500-250-
  30-250-500-1000-784, logistic units, a linear code layer) for hundreds of thousands of steps;
  here a 6-layer autoencoder of 8x8 digits, 2000 steps, the schedule's step every T = 25 updates
  instead of 250 (so that it reaches 0.99 after 1225 steps, not 12250), and no final phase at
  momentum 0.9. Nesterov momentum only (the paper compares it with classical momentum too) and
  mu_max 0.99 or 0 (the paper's Table 1 also has 0.9, 0.995 and 0.999).

Run: jwinit run --config=sutskever2013        (or sutskever2013:smoke)
"""

import math

from jwinit.experiments import config

SPARSE = "sparse: 15 non-zero N(0, 1) per unit"
DENSE_VARIANCE = "dense N(0, 15/fan_in)"
DENSE_WEIGHT = "dense N(0, 1)"
INITS = ((SPARSE, "sparse(nonzero=15, stddev=1.0)"),
         (DENSE_VARIANCE, "variance_scaling(scale=15.0, mode='fan_in', "
                          "distribution='normal')"),
         (DENSE_WEIGHT, "normal(stddev=1.0)"))


def _momentum(mu_max, period):
    return dict(optimizer="momentum", momentum=mu_max, nesterov=True,
                momentum_schedule="sutskever2013", momentum_period=period)


def _claims(within):
    best = "sigmoid, momentum to 0.99"
    return (
        ("reaches", "Sec. 3, Table 1 (sparse init + momentum to 0.99 trains the deep "
         "autoencoder without pre-training)", SPARSE, best, within),
        ("loss_ratio", "Sec. 3, Table 1 (without momentum, mu_max = 0, the error stays far "
         "higher)", SPARSE, best, SPARSE, "sigmoid, no momentum", 5.0, math.inf),
        ("loss_ratio", "Martens 2010, Sec. 5 (a dense init with weights of the sparse init's "
         "size saturates the units)", SPARSE, best, DENSE_WEIGHT, best, 5.0, math.inf),
        ("loss_ratio", "Martens 2010, Sec. 5 (measured here: sparsity itself is not what "
         "decides; a dense init of the same per-unit input variance trains about as well)",
         SPARSE, best, DENSE_VARIANCE, best, 0.5, 2.0),
    )


def _optimizers(period):
    return (("momentum to 0.99", dict(optimizer="momentum", momentum=0.99, nesterov=True,
                                      momentum_schedule="sutskever2013", momentum_period=period)),
            ("no momentum", dict(optimizer="sgd")))


def get_config(arg=None):
    return config(
        "training", arg, __doc__, data="digits", data_options={"target": "inputs"},
        depth=5, width=(256, 128, 32, 128, 256), activations=("sigmoid",), inits=INITS,
        optimizers=_optimizers(25), learning_rates=(0.1, 0.3, 1.0, 3.0), steps=2000,
        batch_size=100, eval_every=100, seeds=2, target_loss=0.1, claims=_claims(1500),
        smoke=dict(steps=800, learning_rates=(0.3, 1.0), optimizers=_optimizers(10),
                   claims=_claims(800)))

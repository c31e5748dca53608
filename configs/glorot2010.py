"""Glorot & Bengio 2010, "Understanding the difficulty of training deep feedforward neural
networks": standard vs normalized initialization at init.

The "standard" initialization W ~ U(-1/sqrt(n), 1/sqrt(n)) has Var(W) = 1 / (3 n): with tanh the
activations and back-propagated gradients shrink layer after layer (Sec. 4.2, Figs. 6-7). The
"normalized" initialization W ~ U(+-sqrt(6 / (n_in + n_out))) (Var = 2 / (n_in + n_out),
glorot_uniform) keeps them near constant: tanh at sigma_w2 = 1 is critical, its q^l decays only
as a power law. Gradients are the quantity the paper plots; both directions are reported.

Title: Glorot & Bengio 2010: standard vs normalized initialization
Paper: Glorot & Bengio 2010, "Understanding the difficulty of training deep feedforward neural
  networks" (Sec. 4.2, Figs. 6-7).
Not covered: The paper's training results (sigmoid saturation, faster training with the normalized
  init, Secs. 3-4) are about training: configs/glorot2010_training.py.

Run: jwinit run --config=glorot2010        (or glorot2010:smoke)
"""

from jwinit.experiments import config

STANDARD = "variance_scaling(scale=0.3333333333333333, mode='fan_in', distribution='uniform')"


def get_config(arg=None):
    return config(
        "signal_propagation", arg, __doc__,
        pairs=(f"{STANDARD}+tanh", "glorot_uniform+tanh", f"{STANDARD}+sigmoid"),
        names=((f"{STANDARD}+tanh", "standard U(+-1/sqrt(n)) (tanh)"),
               ("glorot_uniform+tanh", "normalized U(+-sqrt(6/(n_in+n_out))) (tanh)"),
               (f"{STANDARD}+sigmoid", "standard U(+-1/sqrt(n)) (sigmoid)")),
        expected=((f"{STANDARD}+tanh", "vanishing", "Sec. 4.2, Fig. 7 (top: standard init)"),
                  ("glorot_uniform+tanh", "preserved",
                   "Sec. 4.2, eq. 16, Fig. 7 (bottom: normalized)")),
        depths=(16,), widths=(1000,),
        smoke=dict(widths=(128,), seeds=4, batch_size=64))

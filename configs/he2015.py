"""He et al. 2015, "Delving Deep into Rectifiers": initializing rectifier networks at init.

With ReLU, Var(W) = 2 / fan_in keeps the forward and backward second moments constant through
depth (Sec. 2.2, eqs. 10 and 14), while Glorot's 2 / (fan_in + fan_out) = 1 / fan_in on square
layers halves them at every layer: over the paper's 30 layers the signal shrinks by 2^29 (the
30-layer net initialized so stalls, Fig. 3). For a leaky ReLU / PReLU with slope a the right
variance is 2 / ((1 + a^2) fan_in) (eq. 15). A fixed small std (0.01, as in AlexNet-era code)
vanishes.

Title: He et al. 2015: initializing rectifier networks
Paper: He, Zhang, Ren & Sun 2015, "Delving Deep into Rectifiers: Surpassing Human-Level Performance
  on ImageNet Classification" (Sec. 2.2, Fig. 3).
Not covered: The paper's training result (the 30-layer ReLU net converges with its init and stalls
  with Glorot's, Fig. 3) is about training: configs/he2015_training.py.

Run: jwinit run --config=he2015        (depth 30, width 1024, as the paper's 30-layer net)
     jwinit run --config=he2015:smoke  (small and fast)
"""

from jwinit.experiments import config

HE, GLOROT, SMALL = "he_normal+relu", "glorot_normal+relu", "normal(stddev=0.01)+relu"
LEAKY = "he_normal(negative_slope=0.25)+leaky_relu:0.25"  # He's variance for the slope


def get_config(arg=None):
    return config(
        "signal_propagation", arg, __doc__,
        pairs=(HE, GLOROT, LEAKY, "he_normal+leaky_relu:0.25", SMALL),
        names=((HE, "He, Var = 2/n (ReLU)"),
               (GLOROT, "Glorot, Var = 2/(n_in + n_out) (ReLU)"),
               (LEAKY, "He for slope 0.25 (leaky ReLU)"),
               ("he_normal+leaky_relu:0.25", "He for ReLU, used with leaky ReLU 0.25"),
               (SMALL, "N(0, 0.01^2) (ReLU)")),
        expected=((HE, "preserved", "Sec. 2.2, eqs. 10 and 14"),
                  (GLOROT, "vanishing", "Sec. 2.2 (Glorot's variance halves the signal per "
                                        "layer), Fig. 3"),
                  (LEAKY, "preserved", "Sec. 2.2, eq. 15"),
                  (SMALL, "vanishing", "Sec. 2.2 (fixed-std init)")),
        depths=(30,), widths=(1024,),
        smoke=dict(widths=(128,), seeds=4, batch_size=64))

"""He et al. 2015, "Delving Deep into Rectifiers", Sec. 2.2 and Fig. 3: the 30-layer rectifier net
trains with He's initialization and stalls with Glorot's.

With ReLU, Var(W) = 2 / fan_in keeps the signal constant through depth; Glorot's 2 / (fan_in +
fan_out) halves it at every square layer, so 30 layers shrink the output and the gradients of the
first layers by 2^29. The paper's 30-layer model "converges" with its init and with Xavier's
"completely stalls" (gradients diminish). Here: a 30-layer ReLU MLP of width 128 on the digits
shipped with jwinit, SGD with momentum 0.9, three learning rates, four seeds.

Title: He et al. 2015: training a 30-layer rectifier network
Paper: He, Zhang, Ren & Sun 2015, "Delving Deep into Rectifiers: Surpassing Human-Level Performance
  on ImageNet Classification" (Sec. 2.2, Fig. 3).
Not covered: The paper trains 22- and 30-layer convolutional networks on ImageNet; this config
  trains a 30-layer MLP on 8x8 digits. The signal at initialization of the same schemes is
  configs/he2015.py.

Run: jwinit run --config=he2015_training        (or he2015_training:smoke)
"""

from jwinit.experiments import config

HE = "He, Var = 2/n"
GLOROT = "Glorot, Var = 2/(n_in + n_out)"


def get_config(arg=None):
    return config(
        "training", arg, __doc__,
        depth=30, width=128, inits=((HE, "he_normal"), (GLOROT, "glorot_normal")),
        learning_rates=(1e-3, 3e-3, 1e-2), steps=1000, seeds=4, target_loss=0.5,
        claims=(
            ("reaches", "Sec. 2.2, Fig. 3 (the 30-layer model converges with this init)", HE,
             "relu", 400),
            ("stalls", "Fig. 3 (with Xavier's init the 30-layer model completely stalls)", GLOROT,
             "relu", 2, HE),
        ),
        smoke=dict(width=64, learning_rates=(1e-3, 3e-3), steps=500, seeds=2))

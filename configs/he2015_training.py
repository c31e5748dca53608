"""He et al. 2015, "Delving Deep into Rectifiers", Sec. 2.2 and Fig. 3: the 30-layer rectifier net
trains with He's initialization and stalls with Glorot's.

With ReLU, Var(W) = 2 / fan_in keeps the signal constant through depth; Glorot's 2 / (fan_in +
fan_out) halves it at every square layer, so 30 layers shrink the output and the gradients of the
first layers by 2^29. The paper's 30-layer model "converges" with its init and with Xavier's
"completely stalls" (gradients diminish). Here: a 30-layer ReLU MLP of width 128 on the digits
shipped with jwinit, SGD with momentum 0.9, three learning rates, four seeds.

Run: jwinit run --config=he2015_training        (or he2015_training:smoke)
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.experiment = "training"
    c.title = "He et al. 2015: training a 30-layer rectifier network"
    c.paper = ('He, Zhang, Ren & Sun 2015, "Delving Deep into Rectifiers: Surpassing Human-Level '
               'Performance on ImageNet Classification" (Sec. 2.2, Fig. 3).')
    c.not_covered = ("The paper trains 22- and 30-layer convolutional networks on ImageNet; this "
                     "config trains a 30-layer MLP on 8x8 digits. The signal at initialization "
                     "of the same schemes is configs/he2015.py.")
    c.data = "digits"
    c.model = "mlp"
    c.depth = 30
    c.width = 128
    c.activations = ("relu",)
    c.inits = (("He, Var = 2/n", "he_normal"), ("Glorot, Var = 2/(n_in + n_out)", "glorot_normal"))
    c.optimizer = "momentum"
    c.momentum = 0.9
    c.learning_rates = (1e-3, 3e-3, 1e-2)
    c.steps = 1000
    c.batch_size = 64
    c.eval_every = 50
    c.seeds = 4
    c.seed = 0
    c.target_loss = 0.5
    c.signal = False
    c.claims = (
        ("reaches", "Sec. 2.2, Fig. 3 (the 30-layer model converges with this init)",
         "He, Var = 2/n", "relu", 400),
        ("stalls", "Fig. 3 (with Xavier's init the 30-layer model completely stalls)",
         "Glorot, Var = 2/(n_in + n_out)", "relu", 2, "He, Var = 2/n"),
    )
    if arg == "smoke":
        c.width = 64
        c.learning_rates = (1e-3, 3e-3)
        c.steps = 500
        c.seeds = 2
    elif arg is not None:
        raise ValueError(f"unknown config argument {arg!r}; legal: 'smoke' or none.")
    return c

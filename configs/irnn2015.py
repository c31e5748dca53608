"""Le, Jaitly & Hinton 2015, "A Simple Way to Initialize Recurrent Networks of Rectified Linear
Units": the IRNN on the adding problem.

The IRNN is a ReLU RNN whose recurrent matrix starts as the identity (biases zero): at init it
copies its state forward, so gradients over long sequences neither vanish nor explode. On the
adding problem (Sec. 4.1: two channels, a value in U[0, 1] and a marker on two steps; the target
is the sum of the two marked values; predicting the mean gives a mean squared error of 1/6) the
paper's IRNN solves sequences that a tanh RNN cannot.

Here: `jwinit.models.RNN` of 64 units (ReLU and tanh) on the adding problem of length 60, trained
with Adam after clipping the gradient to norm 1 (the paper clips too; two learning rates, three
seeds). The inits separate the factors: the recurrent matrix
(identity, orthogonal, or N(0, 0.001^2)) and the input/output scale (the paper's N(0, 0.001^2)
against Glorot uniform).

Run: jwinit run --config=irnn2015        (or irnn2015:smoke)
"""

import ml_collections

_GLOROT = {r"(^|/)input/kernel$": "glorot_uniform", r"(^|/)head/kernel$": "glorot_uniform"}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.experiment = "training"
    c.title = "IRNN (Le, Jaitly & Hinton 2015): identity-initialized ReLU RNN on the adding problem"
    c.paper = ('Le, Jaitly & Hinton 2015, "A Simple Way to Initialize Recurrent Networks of '
               'Rectified Linear Units" (Sec. 3, Sec. 4.1, Fig. 2).')
    c.not_covered = (
        "The paper trains 100 units with SGD and gradient clipping for about a million "
        "examples on sequences of 150 to 400 steps, and compares with LSTMs; this config trains "
        "64 units with Adam (gradient clipped to norm 1) for 2000 steps of 32 sequences of 60 "
        "steps, on CPU in minutes. Measured here, the activation and the input/output scale "
        "decide more than the recurrent matrix: every ReLU RNN with Glorot input and readout "
        "learns whether its recurrent matrix starts as the identity, orthogonal or near zero "
        "(the identity is the fastest at the larger learning rate, 300 steps against 400 and "
        "600, but not at the smaller); the tanh RNNs stay at the mean-prediction baseline except "
        "the orthogonal one, which begins to learn (one run of six reaches the target); and the "
        "paper's IRNN with its N(0, 0.001^2) input and readout weights never leaves the "
        "baseline in this budget (its output at init is 1e-4 of the others'). Without gradient "
        "clipping (not run here) the identity-initialized ReLU RNN is the unstable one at "
        "learning rate 1e-3: its state sums the inputs over the 60 steps (output RMS 2.6 at "
        "init against 0.07 for orthogonal). The paper's longer sequences are not run.")
    c.data = "adding_problem"
    c.data_options = {"length": 60, "n": 4096, "n_test": 1024}
    c.model = "rnn"
    c.width = 64
    c.activations = ("relu", "tanh")
    c.inits = (
        ("IRNN, paper's input scale", {r"(^|/)recurrent/kernel$": "irnn",
                                       r"(^|/)input/kernel$": "normal(stddev=0.001)",
                                       r"(^|/)head/kernel$": "normal(stddev=0.001)"}),
        ("identity recurrent, Glorot input", {r"(^|/)recurrent/kernel$": "irnn", **_GLOROT}),
        ("orthogonal recurrent, Glorot input",
         {r"(^|/)recurrent/kernel$": "orthogonal", **_GLOROT}),
        ("N(0, 0.001^2) recurrent, Glorot input",
         {r"(^|/)recurrent/kernel$": "normal(stddev=0.001)", **_GLOROT}),
    )
    c.optimizer = "adam"
    c.clip_norm = 1.0
    c.learning_rates = (0.0003, 0.001)
    c.steps = 2000
    c.batch_size = 32
    c.eval_every = 100
    c.seeds = 3
    c.seed = 0
    c.target_loss = 0.05
    c.signal = False
    c.claims = (
        ("reaches", "Sec. 4.1, Fig. 2 (the IRNN solves the adding problem)",
         "identity recurrent, Glorot input", "relu RNN", 1000),
        ("fails", "Sec. 4.1, Fig. 2 (a tanh RNN does not)",
         "N(0, 0.001^2) recurrent, Glorot input", "tanh RNN"),
        ("fails", "Sec. 3 (the identity is for ReLU units: a tanh RNN from it does not train)",
         "identity recurrent, Glorot input", "tanh RNN"),
        ("better_activation", "Sec. 4.1, Fig. 2 (ReLU against tanh units, same init)",
         "identity recurrent, Glorot input", "relu RNN", "tanh RNN"),
        ("reaches", "Sec. 3 (measured here: at 60 steps a ReLU RNN with an orthogonal "
         "recurrent matrix also learns)", "orthogonal recurrent, Glorot input", "relu RNN",
         1000),
        ("fails", "Sec. 4 (the paper's N(0, 0.001^2) input weights; measured here: too small to "
         "leave the baseline in this budget)", "IRNN, paper's input scale", "relu RNN"),
    )
    if arg == "smoke":
        c.data_options = {"length": 20, "n": 1024, "n_test": 256}
        c.steps = 400
        c.seeds = 2
        c.claims = c.claims[:2]
    elif arg is not None:
        raise ValueError(f"unknown config argument {arg!r}; legal: 'smoke' or none.")
    return c

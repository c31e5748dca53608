"""Glorot & Bengio 2010, "Understanding the difficulty of training deep feedforward neural
networks", Sec. 3-4: saturation of sigmoid networks, and the normalized initialization.

Sec. 3.1 (Fig. 2): with the standard initialization U(+-1/sqrt(n)), the top hidden layer of a
sigmoid network is driven to saturation at 0 early in training while the lower layers stay around
0.5; sigmoid networks learn worse than symmetric ones (tanh). Sec. 4.2: the normalized
initialization U(+-sqrt(6 / (n_in + n_out))) keeps activations and gradients alike across layers
and trains faster. Here: MLPs of 4 hidden layers of 256 units on the digits shipped with jwinit,
plain SGD (batch 16, as the paper's small mini-batches), four learning rates, three seeds.

Title: Glorot & Bengio 2010: saturation and the normalized initialization in training
Paper: Glorot & Bengio 2010, "Understanding the difficulty of training deep feedforward neural
  networks" (Sec. 3.1 and Fig. 2; Sec. 4.2 and Fig. 11).
Not covered: The paper trains 5-layer networks of 1000 units on Shapeset-3x2, MNIST and CIFAR-10,
  and also studies softsign; this config uses 4 hidden layers of 256 units on 8x8 digits, and
  measures the train loss every 25 steps on the first 512 of the 1438 training digits. The signal
  at initialization is configs/glorot2010.py.

Run: jwinit run --config=glorot2010_training        (or glorot2010_training:smoke)
"""

from jwinit.experiments import config

STANDARD = "variance_scaling(scale=0.3333333333333333, mode='fan_in', distribution='uniform')"
NORMALIZED = "normalized U(+-sqrt(6/(n_in+n_out)))"
STANDARD_NAME = "standard U(+-1/sqrt(n))"


def get_config(arg=None):
    return config(
        "training", arg, __doc__, depth=4, width=256, activations=("tanh", "sigmoid"),
        inits=((STANDARD_NAME, STANDARD), (NORMALIZED, "glorot_uniform")),
        optimizer="sgd", learning_rates=(0.03, 0.1, 0.3, 1.0), steps=2000, batch_size=16,
        # the train metrics over 512 training digits: the same cells reach the target (steps to it
        # equal in 15 of 16 cells, one evaluation apart in the other), final losses within 7%, in
        # 0.82x the time (72 s against 88 s on 2 cores)
        eval_every=25, eval_examples=512, signal=True,
        claims=(
            ("saturates", "Sec. 3.1, Fig. 2 (top hidden layer of a sigmoid net saturates at 0)",
             STANDARD_NAME, "sigmoid", 0.3, 0.1, 500),
            ("better_activation", "Sec. 3 and Table 1 (sigmoid networks learn worse than tanh)",
             STANDARD_NAME, "tanh", "sigmoid"),
            ("faster", "Sec. 4.2, Fig. 11 (normalized initialization trains faster)",
             NORMALIZED, STANDARD_NAME, "tanh"),
        ),
        smoke=dict(width=128, learning_rates=(0.03, 0.1, 0.3), steps=600, seeds=2))

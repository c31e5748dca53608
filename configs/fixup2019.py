"""Zhang, Dauphin & Ma 2019, "Fixup Initialization: Residual Learning Without Normalization".

In a residual network x_{l+1} = x_l + F_l(x_l) without normalization, the standard (He)
initialization makes every branch add as much variance as the stream already has: for ReLU
branches E[x_{l+1}^2] = 2 E[x_l^2], so L blocks multiply the output's second moment by 2^L and the
gradients explode (Sec. 2, Theorem 1). Fixup (Sec. 3) starts the last layer of every branch and
the classifier at zero and scales the other branch layers by L^(-1/(2m-2)): every block starts as
the identity and the network trains at any depth without normalization (Sec. 4). With BatchNorm
the standard initialization trains as well: normalization and careful initialization are two
answers to the same problem.

Here: `jwinit.models.ResidualMLP` (pre-activation blocks of 2 ReLU Dense layers of width 64) on
the digits shipped with jwinit, with and without BatchNorm, at 16 and 64 blocks, He initialization
against Fixup (`jwinit.fixup_rules` applied by `jwinit.init_params`), SGD with momentum, three
learning rates and three seeds.

Title: Fixup (Zhang, Dauphin & Ma 2019): deep residual networks without normalization
Paper: Zhang, Dauphin & Ma 2019, "Fixup Initialization: Residual Learning Without Normalization"
  (ICLR 2019; Sec. 2, Theorem 1; Sec. 3; Sec. 4).
Not covered: The paper trains convolutional ResNets (up to 10,000 layers) on CIFAR-10 and ImageNet
  and Transformers on translation, with Fixup's scalar biases and multiplier; this config trains
  fully connected residual networks of 16 and 64 blocks on 8x8 digits, with Fixup's initialization
  only (no scalar biases or multiplier).

Run: jwinit run --config=fixup2019        (or fixup2019:smoke)
"""

from jwinit.experiments import config

HE = "He (standard)"


def _smoke(c):
    """8 and 32 blocks instead of 16 and 64; the claims follow."""
    def smaller(net):
        return net.replace("64 blocks", "32 blocks").replace("16 blocks", "8 blocks")

    return dict(blocks=(8, 32), learning_rates=(0.003, 0.01), steps=250, seeds=2,
                claims=tuple((k, ref, init, smaller(net), *rest)
                             for k, ref, init, net, *rest in c.claims))


def get_config(arg=None):
    return config(
        "training", arg, __doc__, model="residual", blocks=(16, 64), norms=(None, "batch"),
        inits=((HE, "he_normal"), ("Fixup", "fixup")), steps=300,
        claims=(
            ("fails", "Sec. 2, Theorem 1 (standard init without normalization: the output and "
             "gradients explode with depth)", HE, "relu, 64 blocks"),
            ("reaches", "Sec. 3 and 4 (Fixup trains deep residual networks without "
             "normalization)", "Fixup", "relu, 64 blocks", 250),
            ("reaches", "Sec. 4 (with normalization the standard init trains too: the "
             "BatchNorm baselines)", HE, "relu, 64 blocks, BatchNorm", 250),
            ("reaches", "Sec. 3 and 4 (Fixup at a smaller depth)", "Fixup", "relu, 16 blocks",
             250),
        ),
        smoke=_smoke)

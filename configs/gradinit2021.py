"""Zhu et al. 2021, "GradInit: Learning to Initialize Neural Networks for Stable and Efficient
Training".

GradInit learns one scale per parameter tensor before training: it minimizes the loss after the
optimizer's first step, subject to a bound on the gradient norm (Sec. 3, Algorithm 1). On a
residual network without normalization the standard initialization makes the output and the
gradients explode with depth; GradInit, started from that same initialization, finds scales with
which it trains, as Fixup does by hand (Sec. 4.1, Table 2: ResNets without BatchNorm).

Here: a fully connected residual network (`jwinit.models.ResidualMLP`, 32 blocks of 2 ReLU
layers, width 64, no normalization) on the digits shipped with jwinit, SGD with momentum at three
learning rates, three seeds: He init, GradInit from He (`jwinit.gradinit`, per seed on the
training set), and Fixup for reference.

Title: GradInit (Zhu et al. 2021): learned per-tensor scales for a residual network
Paper: Zhu, Ni, Xu, Kong, Huang & Goldstein 2021, "GradInit: Learning to Initialize Neural Networks
  for Stable and Efficient Training" (NeurIPS 2021; Sec. 3, Algorithm 1; Sec. 4.1).
Not covered: The paper learns the scales of convolutional ResNets, VGG and Transformers on CIFAR-10,
  ImageNet and IWSLT for 2000 iterations; this config learns them for a 32-block fully connected
  residual network on 8x8 digits, 50 iterations per seed (one batch of 64 for g, another for the
  look-ahead loss; eta = 0.01 as the first SGD step, gamma = 1 on ||g||_2, Adam at 0.05 on the
  scales). The scales start where the He-initialized network's output has a root mean square of
  about 9e4 and end with about 2e-4: GradInit shrinks the stem and the classifier to the floor
  (0.01) and the early branches most, as Fixup zeroes the classifier and scales the branches by
  hand. At 64 blocks the second-order program takes about two minutes to compile on CPU, so 32
  blocks are run. The paper's comparison with BatchNorm and its Transformer results are not covered.

Run: jwinit run --config=gradinit2021        (or gradinit2021:smoke)
"""

from jwinit.experiments import config

HE = "He (standard)"


def _smoke(c):
    """16 blocks instead of 32; the claims follow."""
    return dict(blocks=(16,), gradinit_steps=30, learning_rates=(0.03,), steps=150, seeds=2,
                claims=tuple((k, ref, init, net.replace("32 blocks", "16 blocks"), *rest)
                             for k, ref, init, net, *rest in c.claims))


def get_config(arg=None):
    return config(
        "training", arg, __doc__, model="residual", blocks=(32,),
        inits=((HE, "he_normal"), ("GradInit from He", "gradinit:he_normal"),
               ("Fixup", "fixup")),
        gradinit_steps=50, gradinit_learning_rate=0.01, gradinit_gamma=1.0,
        gradinit_scale_lr=0.05, steps=300,
        claims=(
            ("fails", "Sec. 4.1 (a residual network without normalization does not train from "
             "the standard init: its output and gradients explode with depth)", HE,
             "relu, 32 blocks"),
            ("reaches", "Sec. 3, Algorithm 1 and Sec. 4.1 (GradInit, from that same init, makes "
             "it train)", "GradInit from He", "relu, 32 blocks", 200),
        ),
        smoke=_smoke)

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

Run: jwinit run --config=gradinit2021        (or gradinit2021:smoke)
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.experiment = "training"
    c.title = "GradInit (Zhu et al. 2021): learned per-tensor scales for a residual network"
    c.paper = ('Zhu, Ni, Xu, Kong, Huang & Goldstein 2021, "GradInit: Learning to Initialize '
               'Neural Networks for Stable and Efficient Training" (NeurIPS 2021; Sec. 3, '
               'Algorithm 1; Sec. 4.1).')
    c.not_covered = (
        "The paper learns the scales of convolutional ResNets, VGG and Transformers on "
        "CIFAR-10, ImageNet and IWSLT for 2000 iterations; this config learns them for a 32-block "
        "fully connected residual network on 8x8 digits, 50 iterations per seed (one batch of "
        "64 for g, another for the look-ahead loss; eta = 0.01 as the first SGD step, gamma = 1 "
        "on ||g||_2, Adam at 0.05 on the scales). The scales start where the He-initialized "
        "network's output has a root mean square of about 9e4 and end with about 2e-4: GradInit "
        "shrinks the stem and the classifier to the floor (0.01) and the early branches most, "
        "as Fixup zeroes the classifier and scales the branches by hand. At 64 blocks the "
        "second-order program takes about two minutes to compile on CPU, so 32 blocks are run. "
        "The paper's comparison with BatchNorm and its Transformer results are not covered.")
    c.data = "digits"
    c.model = "residual"
    c.blocks = (32,)
    c.branch_layers = 2
    c.norms = (None,)
    c.width = 64
    c.activations = ("relu",)
    c.inits = (("He (standard)", "he_normal"), ("GradInit from He", "gradinit:he_normal"),
               ("Fixup", "fixup"))
    c.gradinit_steps = 50
    c.gradinit_learning_rate = 0.01
    c.gradinit_gamma = 1.0
    c.gradinit_scale_lr = 0.05
    c.optimizer = "momentum"
    c.momentum = 0.9
    c.learning_rates = (0.003, 0.01, 0.03)
    c.steps = 300
    c.batch_size = 64
    c.eval_every = 50
    c.seeds = 3
    c.seed = 0
    c.target_loss = 0.3
    c.signal = False
    c.claims = (
        ("fails", "Sec. 4.1 (a residual network without normalization does not train from the "
         "standard init: its output and gradients explode with depth)", "He (standard)",
         "relu, 32 blocks"),
        ("reaches", "Sec. 3, Algorithm 1 and Sec. 4.1 (GradInit, from that same init, makes it "
         "train)", "GradInit from He", "relu, 32 blocks", 200),
    )
    if arg == "smoke":
        c.blocks = (16,)
        c.gradinit_steps = 30
        c.learning_rates = (0.03,)
        c.steps = 150
        c.seeds = 2
        c.claims = tuple((k, ref, init, net.replace("32 blocks", "16 blocks"), *rest)
                         for k, ref, init, net, *rest in c.claims)
    elif arg is not None:
        raise ValueError(f"unknown config argument {arg!r}; legal: 'smoke' or none.")
    return c

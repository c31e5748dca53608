"""Mishkin & Matas 2016, "All you need is a good init": Layer-Sequential Unit-Variance init.

LSUV (Algorithm 1) starts from any initialization (the paper: orthonormal), then, layer by layer
in call order, rescales each kernel until the layer's output has unit variance on a data batch.
A deep ReLU network from a fixed N(0, 0.01^2) loses a factor width * 1e-4 / 2 of its signal per
layer (0.0064 at width 128) and cannot train; LSUV from the very same weights trains. The paper
also reports LSUV on top of orthonormal init for tanh networks.

Here: 20-layer MLPs (ReLU and tanh, width 128) on the digits shipped with jwinit: N(0, 0.01^2)
and orthogonal, each alone and followed by LSUV (`jwinit.lsuv` on each seed's first training
batch), SGD with momentum, three learning rates and three seeds.

Title: LSUV (Mishkin & Matas 2016): unit variance layer by layer from any init
Paper: Mishkin & Matas 2016, "All you need is a good init" (ICLR 2016; Sec. 2, Algorithm 1; Sec. 3).
Not covered: The paper trains FitNets and residual networks on MNIST, CIFAR-10/100 and ImageNet;
  this config trains 20-layer MLPs on 8x8 digits. The LSUV batch is each seed's first training batch
  of 64 examples (the paper: one mini-batch). The paper's comparison of LSUV with orthonormal init
  alone for tanh is shown but not claimed: at depth 20 orthogonal init alone (gain 1, near the tanh
  edge of chaos) trains the tanh network as fast.

Run: jwinit run --config=lsuv2016        (or lsuv2016:smoke)
"""

from jwinit.experiments import config

SMALL = "N(0, 0.01^2)"


def get_config(arg=None):
    return config(
        "training", arg, __doc__, depth=20, width=128, activations=("relu", "tanh"),
        inits=((SMALL, "normal(stddev=0.01)"), (f"LSUV from {SMALL}", "lsuv:normal(stddev=0.01)"),
               ("orthogonal", "orthogonal"), ("LSUV from orthogonal", "lsuv:orthogonal")),
        claims=(
            ("fails", "Sec. 3 (a deep net from a small fixed-variance init does not train)",
             SMALL, "relu"),
            ("reaches", "Sec. 2, Algorithm 1 (LSUV from the same weights trains)",
             f"LSUV from {SMALL}", "relu", 300),
            ("reaches", "Sec. 3 (LSUV with orthonormal init trains tanh networks)",
             "LSUV from orthogonal", "tanh", 300),
        ),
        smoke=dict(width=64, learning_rates=(0.01, 0.03), steps=300, seeds=2))

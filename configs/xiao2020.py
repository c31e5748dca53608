"""Xiao, Pennington & Schoenholz 2020, "Disentangling Trainability and Generalization in Deep
Neural Networks": the NTK's condition number across the order-to-chaos phase diagram.

On a (sigma_w2, sigma_b2) grid of erf MLPs (tanh-like, with closed-form kernels) at depths 10, 30
and 100, the condition number of the
infinite-width NTK on 32 shipped digits (jwinit.theory.kernel_fn) blows up with depth in the
ordered phase, grows slowly at the edge of chaos and settles in the chaotic phase; the empirical
NTK of width-256 networks (jwinit.ntk) is set against it (it departs with depth in the chaotic
phase only), and on one row of the grid full-batch gradient descent at one learning rate is set
against what the NTK at init predicts (trains or stalls; above lr_max the linearized model
diverges). The phase boundary and the depth scale xi_c come from jwinit.theory.

Title: Xiao et al. 2020: the NTK's conditioning across the phase diagram
Paper: Xiao, Pennington & Schoenholz 2020, "Disentangling Trainability and Generalization in Deep
  Neural Networks" (ICML 2020; Sec. 3-5, Fig. 1-2).
Not covered: The paper studies the NTK parameterization, the generalization side (the chaotic
  phase's kernel memorizes: its test predictions converge to a constant) and convolutional
  networks on CIFAR-10; this config uses the standard parameterization (what a Flax model trained
  by optax is), 32 8x8 digits and trainability only.

Run: jwinit run --config=xiao2020        (or xiao2020:smoke)
"""

from jwinit.experiments import config


def get_config(arg=None):
    return config(
        "ntk_conditioning", arg, __doc__,
        smoke=dict(sigma_w2=(0.5, 1.0, 2.0, 8.0), sigma_b2=(0.02,), depths=(10, 30),
                   train_depths=(10,), width=128, seeds=1))

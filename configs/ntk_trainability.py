"""Predicting trainability at init from the NTK: the largest stable learning rate and the loss
curve of gradient descent, checked against training (Lee et al. 2019; Lewkowycz et al. 2020).

The first 128 shipped digits as regression on one-hot targets, full-batch gradient descent, MLPs
of 3 hidden layers at widths 64 and 1024, initialized with He, LeCun, orthogonal (gain sqrt 2) and
a chaotic tanh init (sigma_w2 = 4); 2 seeds each. From each network at init, `jwinit.trainability`
predicts the largest stable learning rate n k / lambda_max and the loss curve of the linearized
model; the trainer's measurements are set against them, and above the predicted limit each run is
classified as monotone, catapult or diverged.

Title: Predicting gradient descent from the NTK at init
Paper: Lee, Xiao, Schoenholz, Bahri, Novak, Sohl-Dickstein & Pennington 2019, "Wide Neural
  Networks of Any Depth Evolve as Linear Models Under Gradient Descent" (Sec. 2, Fig. 1);
  Lewkowycz, Bahri, Dyer, Sohl-Dickstein & Gur-Ari 2020, "The large learning rate phase of deep
  learning: the catapult mechanism" (Sec. 2-3); Jacot, Gabriel & Hongler 2018.
Not covered: The papers use the NTK parameterization and widths up to 2^13-2^15 on MNIST and
  CIFAR-10; this config uses the standard parameterization (what a Flax model trained by optax is;
  the infinite-width kernel is given in the same parameterization) at widths 64 and 1024 on 128
  8x8 digits. Lewkowycz et al.'s maximal rate of the catapult phase (about 12 / lambda for ReLU in
  their convention) is not measured; the catapult runs stop at 4 lr_max.

Run: jwinit run --config=ntk_trainability        (or ntk_trainability:smoke)
"""

from jwinit.experiments import config


def get_config(arg=None):
    return config(
        "ntk_prediction", arg, __doc__,
        smoke=dict(widths=(32, 512), examples=32, seeds=1, curve_steps=100))

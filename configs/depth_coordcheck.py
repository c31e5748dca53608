"""The coordinate check across depth (Dey et al. 2025, "Don't be lazy: CompleteP enables
compute-efficient deep transformers", Fig. 7; Yang et al. 2024, "Tensor Programs VI"): a pre-norm
Llama-style `jwinit.models.Decoder` at depths 2 ... 32 under the standard parametrization (SP),
depth-muP (branch multiplier (L/L0)^-1/2) and CompleteP ((L/L0)^-1), with the depth rules of the
learning rate and Adam's epsilon (`jwinit.recipes.depth_optimizer`).

At init the residual stream's RMS grows like sqrt(L) under SP and does not grow under depth-muP
and CompleteP; after a few Adam steps the change of the stream, RMS(h_t - h_0), does not depend on
the depth under CompleteP and grows with it under SP.

Title: Depth coordinate check: SP, depth-muP and CompleteP
Paper: Dey, Zhang, Noci, Li, Bordelon, Bergsma, Pehlevan, Hanin & Hestness 2025, "Don't be lazy:
  CompleteP enables compute-efficient deep transformers" (Table 1, Fig. 7); Yang, Yu, Zhu & Hayou
  2024, "Tensor Programs VI: Feature Learning in Infinite-Depth Neural Networks".
Not covered: The papers' learning-rate transfer across depth on language modelling at scale
  (here a random Markov chain, dim 64, 10 steps), and width scaling (muP) together with depth.

Run: jwinit run --config=depth_coordcheck        (or depth_coordcheck:smoke)
"""

from jwinit.experiments import config


def get_config(arg=None):
    return config("depth_coord_check", arg, __doc__,
                  smoke=dict(depths=(2, 4, 8), seeds=2, steps=5))

"""Dey et al. 2025, "Don't be lazy: CompleteP enables compute-efficient deep transformers": the
best learning rate transfers across depth under CompleteP and not under the standard
parametrization.

Under SP, a residual network's blocks each add to the stream with weight 1, so the same step size
moves a deeper network further, and a learning rate that is stable at small depth becomes
unstable at large depth: the optimum shifts down as L grows. CompleteP (alpha = 1) multiplies
each branch by (L/L0)^-1 and sets the blocks' AdamW learning rate and epsilon by its Table 1, so
that the optimum learning rate tuned at the base depth L0 stays optimal. Here: a Llama-style
`jwinit.models.Decoder` of width 32 at depths 2, 4, 8, 16 (base depth 2), 200 AdamW steps of
next-token prediction on a random Markov chain, learning rates 2^-10 ... 2^-4, two seeds.

Title: Dey et al. 2025: learning-rate transfer across depth, SP vs CompleteP
Paper: Dey, Zhang, Noci, Li, Bordelon, Bergsma, Pehlevan, Hanin & Hestness 2025, "Don't be lazy:
  CompleteP enables compute-efficient deep transformers" (Fig. 1, Table 1, Sec. 5).
Not covered: The paper's language models (up to 1.9B parameters, thousands of steps on
  SlimPajama) and its compute-efficiency results; here a width-32 decoder trained for 200 steps,
  where (measured) SP's best learning rate does not move yet on the 2x grid while its loss at
  large learning rates already rises with depth, the mechanism of the drift.

Run: jwinit run --config=completep2025        (or completep2025:smoke)
"""

from jwinit.experiments import config


def get_config(arg=None):
    return config("depth_lr_transfer", arg, __doc__,
                  smoke=dict(depths=(2, 4, 8), steps=80, tail=10, learning_rates=(-9, -8, -7,
                                                                                  -6, -5, -4)))

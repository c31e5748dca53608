"""Auditing an initialized language model (`jwinit.audit`): the initialization bugs the issue
trackers report, each injected into a GPT-2-small-shaped `jwinit.models.Decoder` (134M
parameters) and caught at its paths and nowhere else, while the correct initialization raises no
flag over 20 seeds.

Initialization bugs in large models are silent: GPT-2's depth-scaled `c_proj` init was never
applied in a popular library because a name check never matched; truncation bounds given in
absolute units at std 0.02 truncate nothing; a block copied from another or a key used twice
gives two identical blocks; a table at the wrong scale; a leaf in the wrong dtype. The audit
compares every parameter with the exact moments and support of the rule meant for it
(`jwinit.describe`), with thresholds from the sample sizes, Bonferroni-corrected for the number
of tests.

Title: Auditing an initialized language model against its rules
Paper: jwinit.audit, on the bugs of huggingface/transformers #47458 (GPT-2's residual scaling
  never applied), foundation-model-stack #289 and pytorch #155588 (truncation bounds in absolute
  units), and allenai/OLMo #607 (an init with factors nobody meant).
Not covered: A model after training (the audit is of an initialization); orbax checkpoints and
  the `jwinit audit` command (tests/test_audit.py runs both); nnx and Equinox models
  (tests/test_audit.py).

Run: jwinit run --config=audit_demo        (or audit_demo:smoke)
"""

from jwinit.experiments import config


def get_config(arg=None):
    return config("audit", arg, __doc__, smoke=dict(size="tiny", seeds=5, bug_seeds=2))

"""Huang et al. 2020, "Improving Transformer Optimization Through Better Initialization"
(T-Fixup).

Without LayerNorm, a deep Transformer encoder from Xavier initialization is unstable: every
block adds its output to the residual stream, whose scale grows with depth until training
diverges. T-Fixup (Sec. 3.3) scales the value, output and MLP weights by 0.67 N^(-1/4) and the
embeddings by (9N)^(-1/4), so that the update of the whole model stays bounded, and trains the
encoder without LayerNorm and without learning-rate warmup. Post-LN (Xiong et al. 2020; Sec. 2 of
the paper) needs warmup.

Here: `jwinit.models.Transformer` (width 32, 2 heads, MLP 64) on the majority-token task shipped
with jwinit (`jwinit.data.majority`: 12 tokens of 8 values; the label is the most frequent
token), Adam, two learning rates, three seeds: no LayerNorm at 6 and 24 layers, Xavier against
T-Fixup (`jwinit.t_fixup_rules`); Post-LN at 24 layers from Xavier, with and without 100 steps of
learning-rate warmup.

Title: T-Fixup (Huang et al. 2020): deep Transformers without LayerNorm or warmup
Paper: Huang, Perez, Ba & Volkovs 2020, "Improving Transformer Optimization Through Better
  Initialization" (ICML 2020; Sec. 2, Sec. 3.3, Table 1).
Not covered: The paper trains 6- to 30-layer encoder-decoders of width 512 on IWSLT'14, WMT'17 and
  WMT'14 translation for hours; this config trains encoders of width 32 on a synthetic 8-way
  majority-token task (sequences of 8 tokens) for 200 Adam steps, on CPU in minutes. Measured at
  init: the 24-layer encoder without LayerNorm from Xavier has an output root mean square around 2e4
  (T-Fixup: about 0.02). The warmup comparison is Xavier only: at learning rate 1e-3 the Post-LN
  encoder without warmup stays near chance (ln 8 = 2.08) while 100 warmup steps bring it lower (the
  median over seeds, and most seeds), though not to the target within 200 steps; at 3e-4 both train.
  T-Fixup on Post-LN and T-Fixup with warmup are not run. The paper's BLEU scores, its 200-layer
  runs and its comparison with Admin and Pre-LN are not covered.

Run: jwinit run --config=tfixup2020        (or tfixup2020:smoke)
"""

from jwinit.experiments import config

DEEP = "24 layers, no LayerNorm"


def get_config(arg=None):
    return config(
        "training", arg, __doc__,
        data="majority", data_options={"vocab": 8, "length": 8, "n": 4096, "n_test": 256},
        eval_examples=256, model="transformer", width=32, heads=2, mlp_dim=64,
        # T-Fixup is an init for encoders without LayerNorm; the Post-LN networks train from
        # Xavier
        networks=((6, None, 0), (24, None, 0), (24, "post", 0, ("Xavier",)),
                  (24, "post", 100, ("Xavier",))),
        inits=(("Xavier", "glorot_uniform"), ("T-Fixup", "t_fixup")),
        optimizer="adam", learning_rates=(0.0003, 0.001), steps=200, batch_size=16,
        target_loss=1.0,
        claims=(
            ("reaches", "Sec. 3.3, Table 1 (T-Fixup trains a deep encoder without LayerNorm or "
             "warmup)", "T-Fixup", DEEP, 200),
            ("fails", "Sec. 1 and 3 (without LayerNorm, Xavier init is unstable at depth)",
             "Xavier", DEEP),
            ("reaches", "Sec. 3 (the instability grows with depth: a shallow encoder trains "
             "from Xavier)", "Xavier", "6 layers, no LayerNorm", 200),
            ("lower_final_loss", "Sec. 2 (Post-LN needs warmup: without it Adam's early "
             "updates are too large)", "Xavier", "24 layers, Post-LN, warmup 100",
             "24 layers, Post-LN", 0.001),
        ),
        smoke=dict(networks=((2, None, 0), (12, None, 0)), learning_rates=(0.001,), steps=100,
                   seeds=2,
                   claims=(("reaches", "Sec. 3.3, Table 1", "T-Fixup", "12 layers, no LayerNorm",
                            100),
                           ("reaches", "Sec. 3", "Xavier", "2 layers, no LayerNorm", 100))))

"""The muP coordinate check (Yang et al. 2022, "Tensor Programs V", Sec. 4 and App. D.1; the `mup`
package's coord check).

Train an MLP for a few Adam steps at widths 64 ... 2048 and record the size of every layer's
activation coordinates (the RMS of each Dense output) and of every kernel's gradient. In the
standard parametrization (SP: N(0, 1/fan_in) everywhere, one learning rate) the hidden and output
coordinates grow with width once training starts (Adam's updates are O(1) per coordinate, so a
hidden layer's change grows like its fan-in): a learning rate tuned at one width does not transfer.
In muP (`jwinit.mup_rules`: readout variance 1/fan_in^2 relative to the base width;
`jwinit.mup_optimizer`: hidden and readout learning rates scaled by base_width / width) every
coordinate stays width-independent; only the readout starts O(width^-1/2) at init.

Title: muP coordinate check: activation size against width, SP vs muP
Paper: Yang, Hu, Babuschkin, Sidor, Liu, Farhi, Ryder, Pachocki, Chen & Gao 2022, "Tensor Programs
  V: Tuning Large Neural Networks via Zero-Shot Hyperparameter Transfer" (Sec. 4, Fig. 5; App. D.1,
  the coordinate check).
Not covered: The paper checks Transformers and ResNets and then transfers learning rates across
  widths; this config checks a 3-hidden-layer ReLU MLP on 8x8 digits and does not tune or transfer
  hyperparameters. muP here is the initialization form of Table 3 (no output multiplier).

Run: jwinit run --config=mup_coordcheck        (or mup_coordcheck:smoke)
"""

from jwinit.experiments import config


def get_config(arg=None):
    return config(
        "coord_check", arg, __doc__, claims=(
            ("slope_at_least", "Sec. 4, Fig. 5 (SP: coordinates blow up with width after "
             "training starts)", "SP", "after_input", (3,), 0.5),
            ("slope_within", "Sec. 4, Fig. 5 (muP: width-independent coordinates at every step)",
             "muP", "all_but_output", "all", 0.0, 0.1),
            ("slope_agrees", "Table 3 (muP readout N(0, 1/fan_in^2): logits O(width^-1/2) at "
             "init)", "muP", "output", (0,), -0.5),
            ("slope_within", "Sec. 4, Fig. 5 (muP: the logits become width-independent once "
             "trained)", "muP", "output", (3,), 0.0, 0.1),
        ),
        smoke=dict(widths=(64, 256, 1024)))

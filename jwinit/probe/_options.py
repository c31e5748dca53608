"""The probe's options, validated once: `ProbeOptions`.

Every entry point that runs probe programs (`jwinit.probe_mlp`, `jwinit.probe.probe_program`,
`jwinit.sweep.sweep`/`plan`, the `jwinit probe` command) builds one `ProbeOptions`; its constructor
is the only place these arguments are checked, so an error reads the same wherever it comes from.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from jwinit._checks import check_choice, check_int, check_real

__all__ = ["ProbeOptions", "PRECISIONS", "REMAT", "STATISTICS"]

#: Legal values of `precision`: 'highest' (float32), 'tensorfloat32' (TF32 on NVIDIA GPUs),
#: 'bfloat16' (bf16 operands, float32 accumulation) or None (the backend default).
PRECISIONS = ("highest", "tensorfloat32", "bfloat16", None)
#: Legal values of `remat` (see `jwinit.probe`).
REMAT = ("auto", "none", "layer", "sqrt")
#: Legal values of `statistics`: every statistic; only the forward/backward second moments (the
#: others are NaN); or every forward statistic without the backward pass ('backward' is NaN:
#: a third of the work, for c-maps and other forward-only studies).
STATISTICS = ("all", "second_moments", "forward")


@dataclasses.dataclass(frozen=True)
class ProbeOptions:
    """How a probe measures, for every (depth, width) it runs.

    Attributes:
      batch_size: inputs per seed (>= 1; pairs (2i, 2i + 1) give the correlation statistic).
      input_dim: dimension of x (None: the width of each network).
      precision: matmul precision, one of `PRECISIONS`.
      remat: 'auto', 'none', 'layer' or 'sqrt' (memory of the backward pass; see
        `jwinit.probe`).
      input_correlation: correlation of the input pairs, in [-1, 1].
      saturation_threshold: |phi'(h)| at or below which a unit counts as dead/saturated (>= 0).
      statistics: 'all'; 'second_moments' for only `forward` and `backward`; 'forward' for every
        forward statistic and no backward pass.

    Raises:
      ValueError, TypeError: a bad option, named with its value and the legal values.
    """

    batch_size: int = 256
    input_dim: int | None = None
    precision: str | None = None
    remat: str = "auto"
    input_correlation: float = 0.5
    saturation_threshold: float = 1e-3
    statistics: str = "all"

    def __post_init__(self) -> None:
        canon: dict[str, Any] = {
            "batch_size": check_int(self.batch_size, "batch_size", minimum=1),
            "input_dim": None if self.input_dim is None else check_int(
                self.input_dim, "input_dim", minimum=1),
            "precision": check_choice(self.precision, "precision", PRECISIONS),
            "remat": check_choice(self.remat, "remat", REMAT),
            "input_correlation": float(check_real(
                self.input_correlation, "input_correlation", low=-1.0, high=1.0)),
            "saturation_threshold": float(check_real(
                self.saturation_threshold, "saturation_threshold", low=0.0, high=math.inf,
                finite=False)),
            "statistics": check_choice(self.statistics, "statistics", STATISTICS),
        }
        for name, value in canon.items():
            object.__setattr__(self, name, value)

    def input_dim_for(self, width: int) -> int:
        """The input dimension of a network of `width` units."""
        return width if self.input_dim is None else self.input_dim

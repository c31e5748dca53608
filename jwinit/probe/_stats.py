"""The probe's statistics, one table: name -> (documentation, how to compute it from one layer).

The program, `ProbeResult`, sweep rows and the documentation are all built from `TABLE`, so adding a
statistic is one `Statistic` entry (plus its test). Forward statistics are computed from a layer's
pre-activations h of shape (rows, batch, units) through shared reductions (`Reductions`: per-unit
batch means of h and h^2 and of the saturation indicator, computed once and fused by XLA into about
one pass over h); the one backward statistic comes from the custom-VJP tap of the program.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

__all__ = ["Statistic", "TABLE", "STATS", "FORWARD", "Reductions", "layer_stats",
           "CORRELATION_PAIRS"]

#: Input pairs the correlation statistic averages over (the first ones of the batch).
CORRELATION_PAIRS = 32


class Reductions:
    """Reductions of one layer's pre-activations h (rows, batch, units), each computed once.

    Args:
      h: the pre-activations.
      derivs: for each block of rows (one per program member), phi' of that member's activation.
      row_slices: the (start, stop) rows of each member.
      saturation_threshold: |phi'| at or below which an entry counts as inactive.
    """

    def __init__(self, h: jax.Array, derivs: Sequence[Callable[[jax.Array], jax.Array]],
                 row_slices: Sequence[tuple[int, int]], saturation_threshold: float,
                 lean: bool = False):
        self.h = h
        self.lean = lean
        self.batch = h.shape[1]
        self._derivs = derivs
        self._slices = row_slices
        self._threshold = saturation_threshold

    @functools.cached_property
    def unit_mean(self) -> jax.Array:
        """Batch mean of h per unit, (rows, units)."""
        return jnp.mean(self.h, axis=1)

    @functools.cached_property
    def unit_square_mean(self) -> jax.Array:
        """Batch mean of h^2 per unit, (rows, units)."""
        return jnp.mean(jnp.square(self.h), axis=1)

    @functools.cached_property
    def inactive_count(self) -> jax.Array:
        """Per unit, how many inputs have |phi'(h)| <= threshold, (rows, units)."""
        counts = []
        for deriv, (s, e) in zip(self._derivs, self._slices, strict=True):
            inactive = jnp.abs(deriv(self.h[s:e])) <= self._threshold
            counts.append(jnp.sum(inactive.astype(jnp.float32), axis=1))
        return counts[0] if len(counts) == 1 else jnp.concatenate(counts, axis=0)

    @functools.cached_property
    def second_moment(self) -> jax.Array:
        """Mean of h^2 over batch and units, (rows,) (one reduction when nothing else is needed)."""
        if self.lean:
            return jnp.mean(jnp.square(self.h), axis=(1, 2))
        return jnp.mean(self.unit_square_mean, axis=1)

    @functools.cached_property
    def mean(self) -> jax.Array:
        return jnp.mean(self.unit_mean, axis=1)


def _correlation(r: Reductions) -> jax.Array:
    pairs = min(r.batch // 2, CORRELATION_PAIRS)
    if not pairs:
        return jnp.full_like(r.second_moment, jnp.nan)
    ha, hb = r.h[:, 0 : 2 * pairs : 2], r.h[:, 1 : 2 * pairs : 2]
    num = jnp.sum(ha * hb, axis=2)
    den = jnp.sqrt(jnp.sum(jnp.square(ha), axis=2) * jnp.sum(jnp.square(hb), axis=2))
    return jnp.mean(num / den, axis=1)


@dataclasses.dataclass(frozen=True)
class Statistic:
    """One per-layer statistic: its name, what it is, and how to compute it.

    Attributes:
      name: the field of `ProbeResult` and the key of sweep rows.
      doc: one line, for the docs of `ProbeResult` (column l describes h^{l+1}).
      compute: ``compute(reductions) -> (rows,)``, or None for the backward statistic (computed
        by the program's tap).
      cheap: computed also with ``statistics='second_moments'``.
    """

    name: str
    doc: str
    compute: Callable[[Reductions], jax.Array] | None
    cheap: bool = False


TABLE: tuple[Statistic, ...] = (
    Statistic("forward", "mean square of h^{l+1} over batch and units.",
              lambda r: r.second_moment, cheap=True),
    Statistic("mean", "mean of h^{l+1} over batch and units.", lambda r: r.mean),
    Statistic("variance", "variance of h^{l+1} over batch and units.",
              lambda r: r.second_moment - jnp.square(r.mean)),
    Statistic("channel_sq_mean",
              "average over units of the squared batch mean (Brock et al. 2021).",
              lambda r: jnp.mean(jnp.square(r.unit_mean), axis=1)),
    Statistic("channel_var", "average over units of the batch variance (Brock et al. 2021).",
              lambda r: jnp.mean(r.unit_square_mean - jnp.square(r.unit_mean), axis=1)),
    Statistic("dead", "fraction of units with |phi'(h)| <= `saturation_threshold` on every input "
              "of the batch (dead ReLUs, saturated tanh units).",
              lambda r: jnp.mean((r.inactive_count >= r.batch).astype(jnp.float32), axis=1)),
    Statistic("saturated", "fraction of (input, unit) entries with |phi'(h)| <= "
              "`saturation_threshold`.",
              lambda r: jnp.mean(r.inactive_count, axis=1) / r.batch),
    Statistic("correlation", "mean cosine between h^{l+1} of the input pairs (2i, 2i + 1), whose "
              "inputs have correlation `input_correlation` (the first "
              f"{CORRELATION_PAIRS} pairs of the batch; the c-map of Poole et al. 2016).",
              _correlation),
    Statistic("backward", "mean square of d<g, h^depth>/dh^{l+1}, g ~ N(0, I) on the last "
              "pre-activation (no loss).", None, cheap=True),
)
#: Names of the forward statistics, in the order the program returns them.
STATS: tuple[str, ...] = tuple(s.name for s in TABLE if s.compute is not None)
#: The forward statistics.
FORWARD: tuple[Statistic, ...] = tuple(s for s in TABLE if s.compute is not None)


def layer_stats(r: Reductions) -> jax.Array:
    """(rows, len(STATS)) statistics of one layer (when `r.lean`, only the cheap ones; the others
    NaN)."""
    cols = []
    for s in FORWARD:
        if not r.lean or s.cheap:
            cols.append(s.compute(r))
        else:
            cols.append(jnp.full_like(r.second_moment, jnp.nan))
    return jnp.stack(cols, axis=-1)

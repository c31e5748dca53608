"""`describe(init, shape)`: what an initializer will produce for a shape, without sampling.

For every jwinit initializer the description is exact (read off the scheme's formula): fans,
mode, distribution, the effective Var(W) (truncation included), mean and bounds. For a foreign
initializer (e.g. ``jax.nn.initializers.*``) the moments are estimated from one draw and marked so.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jwinit._checks import check_callable_init
from jwinit._types import canonical_dtype, canonical_shape, info_of

__all__ = ["Description", "describe"]


@dataclasses.dataclass(frozen=True)
class Description:
    """The static facts of ``init`` at ``shape``/``dtype``.

    Attributes:
      name: scheme name.
      shape, dtype: what was asked for.
      fan_in, fan_out: the fans the scheme uses (None if it uses none).
      mode: fan mode ('fan_in', 'fan_avg', ...) or None.
      distribution: e.g. 'uniform', 'truncated_normal', 'orthogonal'.
      variance: the effective per-entry variance E|W - E W|^2, truncation included.
      mean: E[W].
      bounds: (low, high) of the support (+-inf for unbounded).
      target_variance: the variance the scheme aims for, when it differs in meaning.
      exact: False when the moments were estimated from one draw.
      extra: further scheme-specific facts (gain, scale, sparsity, ...).
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    fan_in: int | None = None
    fan_out: int | None = None
    mode: str | None = None
    distribution: str | None = None
    variance: float | None = None
    mean: Any = 0.0
    bounds: tuple[float, float] | None = None
    target_variance: float | None = None
    exact: bool = True
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def std(self) -> float | None:
        return None if self.variance is None else math.sqrt(self.variance)

    def __str__(self) -> str:
        def num(x):
            if isinstance(x, complex):
                return f"{x:.6g}"
            return f"{x:.6g}" if isinstance(x, float | int | np.floating) else str(x)

        lines = [f"{self.name}  shape={self.shape}  dtype={self.dtype}"]
        if self.fan_in is not None:
            lines.append(f"  fans       fan_in={self.fan_in}  fan_out={self.fan_out}"
                         + (f"  mode={self.mode}" if self.mode else ""))
        if self.distribution:
            lines.append(f"  dist       {self.distribution}")
        if self.variance is not None:
            lines.append(f"  Var(W)     {num(self.variance)}   std {num(self.std)}"
                         + ("" if self.exact else "   (estimated from one draw)"))
        if self.target_variance is not None and not math.isclose(
            self.target_variance, self.variance or 0.0, rel_tol=1e-9
        ):
            lines.append(f"  target     {num(self.target_variance)}")
        lines.append(f"  mean       {num(self.mean)}")
        if self.bounds is not None:
            lines.append(f"  bounds     [{num(self.bounds[0])}, {num(self.bounds[1])}]")
        for k, v in self.extra.items():
            lines.append(f"  {k:<10} {num(v)}")
        return "\n".join(lines)


_FIELDS = {f.name for f in dataclasses.fields(Description)}


def describe(init: Callable[..., Any], shape: Sequence[int], dtype: Any = jnp.float32
             ) -> Description:
    """Describe what `init` gives for `shape` and `dtype`.

    Args:
      init: an initializer closure (jwinit's, or any ``(key, shape, dtype) -> Array``).
      shape: the weight shape.
      dtype: the dtype.

    Raises:
      TypeError: `init` is not callable.
      ValueError: the scheme cannot use `shape` (same error as calling it).

    Examples:
      >>> print(jwinit.describe(jwinit.he_normal(), (784, 256)))
      he_normal  shape=(784, 256)  dtype=float32
        fans       fan_in=784  fan_out=256  mode=fan_in
        dist       truncated_normal
        Var(W)     0.00255102   std 0.0505076
        mean       0
        bounds     [-0.114839, 0.114839]
        scale      2
    """
    check_callable_init(init, "init", name="describe")
    shape = canonical_shape(shape, "describe")
    dt = canonical_dtype(dtype)
    info = info_of(init)
    if info is None:
        return _estimate(init, shape, dt)
    info.validate(shape, dt)
    facts = dict(info.describe(shape, dt))
    extra = {k: facts.pop(k) for k in list(facts) if k not in _FIELDS}
    return Description(name=info.name, shape=shape, dtype=dt.name, extra=extra, **facts)


def _estimate(init: Callable[..., Any], shape: tuple[int, ...], dt: np.dtype) -> Description:
    x = np.asarray(init(jax.random.key(0), shape, dt))
    fans = (None, None)
    if len(shape) >= 2:
        from jwinit.fans import compute_fans

        fans = compute_fans(shape)
    mean = complex(x.mean()) if np.iscomplexobj(x) else float(x.mean()) if x.size else 0.0
    var = float(np.mean(np.abs(x - mean) ** 2)) if x.size else 0.0
    bounds = (float(np.real(x).min()), float(np.real(x).max())) if x.size else None
    return Description(
        name=getattr(init, "__name__", type(init).__name__),
        shape=shape, dtype=dt.name, fan_in=fans[0], fan_out=fans[1],
        distribution="unknown", variance=var, mean=mean, bounds=bounds, exact=False,
    )

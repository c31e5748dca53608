"""The one reading of the mean-field variances (sigma_w2, sigma_b2) from initializers.

Mean-field theory describes a layer h = W phi(x) + b by sigma_w2 = fan_in Var(W) and
sigma_b2 = Var(b), for zero-mean weights and biases. `variances_of` reads them off an initializer
with `jwinit.describe` (exact for every jwinit scheme) and refuses what the theory cannot describe:
an initializer without a per-entry variance, or a nonzero mean (a constant bias such as
`jwinit.relu_bias` shifts every pre-activation, which the zero-mean Gaussian theory does not
model). `jwinit.theory.predict`, the probe and the sweep all read the variances here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

from jwinit._checks import check_int

__all__ = ["MeanFieldVariances", "variances_of"]


class MeanFieldVariances(NamedTuple):
    """sigma_w2 = width Var(W) of a hidden (width, width) layer, sigma_b2 = Var(b) (0 without a
    bias) and sigma_w2_first = input_dim Var(W^1) of the (input_dim, width) first layer."""

    sigma_w2: float
    sigma_b2: float
    sigma_w2_first: float


def _variance(init: Callable[..., Any], shape: tuple[int, ...], argument: str,
              estimate: bool) -> float:
    from jwinit.description import describe

    d = describe(init, shape)
    if not d.exact and not estimate:
        raise ValueError(f"`{argument}` {d.name!r} is not a jwinit initializer: its variance is "
                         "not known exactly.")
    if d.variance is None:
        raise ValueError(f"`{argument}` {d.name!r} has no per-entry variance; mean-field theory "
                         "cannot describe it.")
    mean = complex(d.mean)
    n = math.prod(shape)
    allowed = 0.0 if d.exact else 6 * math.sqrt(max(d.variance, 0.0) / max(n, 1))
    if abs(mean) > allowed:
        raise ValueError(
            f"`{argument}` {d.name!r} has mean {d.mean!r}; mean-field theory needs zero-mean "
            "weights and biases."
        )
    return float(d.variance)


def variances_of(kernel_init: Callable[..., Any], bias_init: Callable[..., Any] | None = None, *,
                 width: int, input_dim: int | None = None,
                 estimate: bool = True) -> MeanFieldVariances:
    """The mean-field variances of an MLP built from `kernel_init` and `bias_init`.

    Args:
      kernel_init: the weight initializer (read at (width, width) and (input_dim, width)).
      bias_init: the bias initializer or None (no bias: sigma_b2 = 0).
      width: the layer width.
      input_dim: the input dimension (default `width`).
      estimate: accept a foreign initializer (e.g. ``jax.nn.initializers``) whose moments
        `jwinit.describe` estimates from one draw; with False only exact descriptions are used.

    Returns:
      `MeanFieldVariances`.

    Raises:
      ValueError: an initializer the zero-mean theory cannot describe (naming it and why).

    Examples:
      >>> round(theory.variances_of(jwinit.he_normal(), width=256).sigma_w2, 12)
      2.0
      >>> v = theory.variances_of(jwinit.glorot_normal(), jwinit.normal(0.1), width=256,
      ...                         input_dim=64)
      >>> round(v.sigma_w2_first, 12), round(v.sigma_b2, 12)   # 64 * 2 / (64 + 256), 0.1^2
      (0.4, 0.01)
    """
    width = check_int(width, "width", minimum=1)
    input_dim = width if input_dim is None else check_int(input_dim, "input_dim", minimum=1)
    sw = _variance(kernel_init, (width, width), "kernel_init", estimate) * width
    sw1 = _variance(kernel_init, (input_dim, width), "kernel_init", estimate) * input_dim
    sb = 0.0 if bias_init is None else _variance(bias_init, (width,), "bias_init", estimate)
    return MeanFieldVariances(sw, sb, sw1)

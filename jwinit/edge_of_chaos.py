"""`critical`: Flax-ready initializers on the edge of chaos of an activation, with their theory.

On the edge of chaos chi1 = sigma_w2 E[phi'(h)^2] = 1 at the fixed point q* of the variance map
(Poole et al. 2016; Schoenholz et al. 2017): the correlation depth scale xi_c is infinite, so
signals and gradients neither die out nor explode exponentially with depth. For a bias variance
sigma_b2 the critical weight variance sigma_w2 comes from `jwinit.theory.critical_sigma_w2`;
kernels are N(0, sigma_w2 / fan_in) (or scaled orthogonal, W W^T = sigma_w2 I, which adds
dynamical isometry where the activation allows it: Pennington et al. 2017) and biases
N(0, sigma_b2).

Not every (activation, sigma_b2) has such a point, and `critical` says why instead of returning
NaN:

* the ReLU family (ReLU, leaky ReLU, abs, linear) is critical only at sigma_b2 = 0, with
  sigma_w2 = 2 / (1 + a^2) (He et al. 2015); any bias variance makes q grow without bound;
* SiLU/Swish, softplus, and GELU at small bias variances (sigma_b2 below about 0.2) behave like
  ReLU for large inputs: wherever their fixed point q* is finite, chi1 < 1 (ordered phase), and
  chi1 reaches 1 only as q* diverges, at sigma_w2 -> 2. (GELU with sigma_b2 = 0.3 has an edge
  of chaos at sigma_w2 = 1.956, q* = 8.8.)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from typing import Any

import jax

from jwinit._checks import check_choice, check_real
from jwinit.activations import Activation, get_activation

__all__ = ["Critical", "critical", "WEIGHTS"]

#: Legal values of `weights`.
WEIGHTS = ("gaussian", "orthogonal")


@dataclasses.dataclass(frozen=True)
class Critical:
    """Initializers at the edge of chaos and the mean-field quantities there.

    Unpacks as ``kernel_init, bias_init = jwinit.critical(...)``.

    Attributes:
      kernel_init, bias_init: Flax-ready initializers (the bias one is zeros when sigma_b2 = 0).
      activation: the activation's label.
      sigma_w2, sigma_b2: the critical weight variance (times fan_in) and the bias variance.
      q_star: the fixed point of the variance map there (0 for the collapsed state of an odd
        activation at sigma_b2 = 0; 1 where every q is a fixed point, as for ReLU at He init).
      chi1: sigma_w2 E[phi'(h)^2] at q* (1 up to rounding).
      xi_q, xi_c: the depth scales of the length and of the correlation (xi_c = inf on the edge).
      weights: 'gaussian' or 'orthogonal'.
    """

    kernel_init: Any
    bias_init: Any
    activation: str
    sigma_w2: float
    sigma_b2: float
    q_star: float
    chi1: float
    xi_q: float
    xi_c: float
    weights: str

    def __iter__(self) -> Iterator[Any]:
        yield self.kernel_init
        yield self.bias_init


def _relu_family(act: Activation) -> bool:
    return bool(act.closed_form) and bool(act.positively_homogeneous)


def critical(activation: Any, sigma_b2: float = 0.0, *, weights: str = "gaussian") -> Critical:
    """The initialization at the edge of chaos of `activation` with bias variance `sigma_b2`.

    Args:
      activation: a name from `jwinit.activation_names()`, an `Activation` or a callable.
      sigma_b2: the bias variance (>= 0).
      weights: 'gaussian' (N(0, sigma_w2 / fan_in)) or 'orthogonal' (W W^T = sigma_w2 I).

    Returns:
      A `Critical` (unpacks to ``(kernel_init, bias_init)``).

    Raises:
      ValueError: a bad argument, or no edge of chaos with a finite q* exists for this
        (activation, sigma_b2); the message says why and what to use instead.

    Examples:
      >>> c = jwinit.critical('tanh', 0.05)
      >>> round(c.sigma_w2, 4), round(c.q_star, 4), c.xi_c
      (1.761, 0.57, inf)
      >>> kernel_init, bias_init = c          # for nn.Dense(..., kernel_init=..., bias_init=...)
      >>> jwinit.critical('relu').sigma_w2      # He et al. 2015
      2.0
    """
    from jwinit import theory
    from jwinit.distributions import normal, zeros
    from jwinit.structured import orthogonal
    from jwinit.variance import variance_scaling

    act = get_activation(activation)
    sb2 = float(check_real(sigma_b2, "sigma_b2", low=0.0))
    check_choice(weights, "weights", WEIGHTS)
    name = act.label
    if _relu_family(act) and sb2 > 0:
        raise ValueError(
            f"`activation` {name!r} has no edge of chaos with sigma_b2 = {sb2:g} > 0: for the "
            "ReLU family chi1 = 1 fixes sigma_w2 = 2 / (1 + a^2), and there every bias variance "
            "adds to q at every layer, which then grows without bound (no finite q*). Its edge of "
            f"chaos is sigma_b2 = 0: jwinit.critical({name!r}).")
    with jax.enable_x64(True):
        sw2 = float(theory.critical_sigma_w2(act, sb2))
        if not math.isfinite(sw2):
            raise ValueError(
                f"`activation` {name!r} has no edge of chaos with a finite fixed point at "
                f"sigma_b2 = {sb2:g}: wherever its variance map has a finite fixed point q*, "
                "chi1 < 1 (the ordered phase), and chi1 reaches 1 only where q* diverges. Like "
                "ReLU, whose large-input behaviour it shares, it keeps signals only "
                "asymptotically at sigma_w2 = 2 (He initialization, jwinit.he_normal()).")
        q = float(theory.fixed_point(act, sw2, sb2))
        chi = float(theory.chi1(act, sw2, sb2))
        xi_q, xi_c = (float(v) for v in theory.depth_scales(act, sw2, sb2))
    if not (math.isfinite(q) and abs(chi - 1) <= 1e-6):
        raise ValueError(
            f"`activation` {name!r}: sigma_w2 = {sw2:g} solves chi1 = 1 at sigma_b2 = {sb2:g} "
            f"only with q* = {q:g} and chi1 = {chi:g}; there is no critical point with a finite "
            "fixed point.")
    xi_c = math.inf if abs(chi - 1) <= 1e-9 or xi_c > 1e12 else xi_c
    kernel = (variance_scaling(sw2, "fan_in", "normal") if weights == "gaussian"
              else orthogonal(scale=math.sqrt(sw2)))
    bias = normal(math.sqrt(sb2)) if sb2 > 0 else zeros()
    return Critical(kernel, bias, name, sw2, sb2, q, chi, xi_q, xi_c, weights)

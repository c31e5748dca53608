"""The standard normal truncated to [lower, upper]: exact moments (closed form).

Real bounds may be infinite; the complex variant bounds the modulus of the standard complex normal.
"""

from __future__ import annotations

import math

__all__ = ["truncnorm_moments", "complex_truncnorm_second_moment"]

_SQRT2 = math.sqrt(2.0)


def _phi(x: float) -> float:
    return 0.0 if math.isinf(x) else math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _Phi(x: float) -> float:
    return 0.5 * math.erfc(-x / _SQRT2)


def truncnorm_moments(lower: float, upper: float) -> tuple[float, float]:
    """Mean and variance of N(0, 1) truncated to [lower, upper] (closed form).

    mean = (phi(a) - phi(b)) / Z,  var = 1 + (a phi(a) - b phi(b)) / Z - mean^2,
    Z = Phi(b) - Phi(a).
    """
    a, b = float(lower), float(upper)
    z = _Phi(b) - _Phi(a)
    if a < 0 < b:  # better conditioned near the centre
        z = 0.5 * (math.erf(b / _SQRT2) - math.erf(a / _SQRT2))
    mean = (_phi(a) - _phi(b)) / z
    aphi = 0.0 if math.isinf(a) else a * _phi(a)
    bphi = 0.0 if math.isinf(b) else b * _phi(b)
    var = 1.0 + (aphi - bphi) / z - mean * mean
    return mean, var


def complex_truncnorm_second_moment(bound: float) -> float:
    """E|z|^2 of the standard complex normal (E|z|^2 = 1) conditioned on |z| <= bound.

    |z|^2 ~ Exp(1), so E[|z|^2 | |z|^2 <= b^2] = 1 - b^2 exp(-b^2) / (1 - exp(-b^2)).
    (``jax.nn.initializers`` divides by 0.9531^2 = 0.9084 for b = 2; the exact value is 0.9254.)
    """
    b2 = float(bound) ** 2
    if math.isinf(b2):
        return 1.0
    return 1.0 - b2 * math.exp(-b2) / -math.expm1(-b2)

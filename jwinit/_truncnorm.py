"""The standard normal truncated to [lower, upper]: exact moments and exact sampling, any bounds.

Bounds may be infinite and may lie far in one tail ([8, 9], [-inf, -6], [40, inf]).

Moments. An interval that contains 0 uses the closed form (mean = (phi(a) - phi(b)) / Z, ...),
which is well conditioned there. An interval in one tail is mirrored to the upper tail and written
around its near end a >= 0: with x = a + y the density is proportional to
``w(y) = exp(-a y - y^2 / 2)`` on [0, b - a], whose moments are computed by Gauss-Legendre
quadrature in float64 to full precision (the closed form there cancels catastrophically: at
a = 8, Z = Phi(9) - Phi(8) is a difference of two numbers within 1e-15 of 1).

Sampling. An interval that contains 0, or reaches no further than 2 from it on its near side, is
sampled as ``jax.random.truncated_normal`` does (inverse CDF through erf; bit-identical to it). An
interval in one tail (near end |a| >= 2) is sampled by inverting the *tail* probability in log
space: with Q(x) = P(Z > x) and u ~ U[0, 1),

    log Q(x) = log Q(a) + log1p(-u (1 - Q(b) / Q(a))),

solved for x by Newton's method on ``log_ndtr(-x)``, whose derivative is -phi(x) / Q(x). Every
uniform gives a distinct sample at the dtype's resolution, whereas the erf inversion in float32
collapses onto a handful of values beyond a ~ 4 (erf(a / sqrt(2)) is within 1e-7 of 1).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["truncnorm_moments", "complex_truncnorm_second_moment", "sample_real",
           "log_tail_probability", "TAIL_START"]

_SQRT2 = math.sqrt(2.0)
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
#: Intervals whose near end is at least this far from 0 are sampled in the tail.
TAIL_START = 2.0


def _phi(x: float) -> float:
    return 0.0 if math.isinf(x) else math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _erfcx(x: float) -> float:
    """exp(x^2) erfc(x) for x >= 0 (asymptotic series where erfc underflows)."""
    if x < 25.0:
        return math.exp(x * x) * math.erfc(x)
    inv = 1.0 / (2.0 * x * x)
    series = 1.0 - inv + 3 * inv**2 - 15 * inv**3 + 105 * inv**4
    return series / (x * math.sqrt(math.pi))


def log_tail_probability(x: float) -> float:
    """log Q(x) = log P(Z > x), accurate for every real x (and -inf at x = inf)."""
    if x == math.inf:
        return -math.inf
    if x < 0:
        return math.log1p(-0.5 * math.erfc(-x / _SQRT2))
    return math.log(0.5 * _erfcx(x / _SQRT2)) - 0.5 * x * x


@functools.lru_cache(maxsize=8)
def _legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.polynomial.legendre.leggauss(n)


def _tail_moments(a: float, c: float) -> tuple[float, float]:
    """(E[Y], Var[Y]) for the density proportional to exp(-a y - y^2 / 2) on [0, c], a >= 0."""
    # Beyond T the weight is below e^-745 (the float64 underflow): T solves a T + T^2 / 2 = 745.
    top = min(c, -a + math.sqrt(a * a + 2 * 745.0))
    scale = 1.0 / (a + 1.0)  # the width over which the weight falls by e
    # Geometric panels from 0 to `top`, finest near 0 where the weight is largest.
    edges = [0.0]
    step = scale / 8
    while edges[-1] < top:
        edges.append(min(top, edges[-1] + step))
        step *= 1.5
    t, v = _legendre(32)
    e = np.asarray(edges)
    lo, hi = e[:-1, None], e[1:, None]
    y = (0.5 * (hi - lo) * t + 0.5 * (hi + lo)).ravel()
    w = (0.5 * (hi - lo) * v).ravel() * np.exp(-a * y - 0.5 * y * y)
    m0 = float(np.sum(w))
    mean = float(np.sum(w * y)) / m0
    var = float(np.sum(w * (y - mean) ** 2)) / m0
    return mean, var


def truncnorm_moments(lower: float, upper: float) -> tuple[float, float]:
    """Mean and variance of N(0, 1) truncated to [lower, upper], exact for any bounds.

    Closed form when the interval contains 0 (mean = (phi(a) - phi(b)) / Z,
    var = 1 + (a phi(a) - b phi(b)) / Z - mean^2, Z = Phi(b) - Phi(a)); in one tail, float64
    quadrature of the density around the near end (see the module docstring).

    Examples:
      >>> truncnorm_moments(-2.0, 2.0)[1]   # the std 0.8796 of jax's default truncation, squared
      0.7737413035499232
      >>> [round(v, 6) for v in truncnorm_moments(8.0, 9.0)]   # scipy.stats.truncnorm(8, 9)
      [8.121189, 0.014149]
    """
    a, b = float(lower), float(upper)
    if a < 0 < b or (a == 0 and b == math.inf) or (b == 0 and a == -math.inf):
        z = 0.5 * (math.erf(b / _SQRT2) - math.erf(a / _SQRT2))
        mean = (_phi(a) - _phi(b)) / z
        aphi = 0.0 if math.isinf(a) else a * _phi(a)
        bphi = 0.0 if math.isinf(b) else b * _phi(b)
        return mean, 1.0 + (aphi - bphi) / z - mean * mean
    if b <= 0:  # the lower tail, mirrored
        mean, var = truncnorm_moments(-b, -a)
        return -mean, var
    mean_y, var_y = _tail_moments(a, b - a)
    return a + mean_y, var_y


def complex_truncnorm_second_moment(bound: float) -> float:
    """E|z|^2 of the standard complex normal (E|z|^2 = 1) conditioned on |z| <= bound.

    |z|^2 ~ Exp(1), so E[|z|^2 | |z|^2 <= b^2] = 1 - b^2 exp(-b^2) / (1 - exp(-b^2)).
    (``jax.nn.initializers`` divides by 0.9531^2 = 0.9084 for b = 2; the exact value is 0.9254.)
    """
    b2 = float(bound) ** 2
    if math.isinf(b2):
        return 1.0
    return 1.0 - b2 * math.exp(-b2) / -math.expm1(-b2)


# ------------------------------------------------------------------------------------------------
# sampling


def _upper_tail(key: jax.Array, a: float, b: float, shape: tuple[int, ...], dtype) -> jax.Array:
    """N(0, 1) on [a, b], 0 <= a < b <= inf, by inverting log Q (see the module docstring)."""
    la = log_tail_probability(a)
    # 1 - Q(b) / Q(a), in float64 on the host (1 when b is infinite)
    frac = -math.expm1(log_tail_probability(b) - la)
    u = jax.random.uniform(key, shape, dtype)
    target = jnp.asarray(la, dtype) + jnp.log1p(-u * jnp.asarray(frac, dtype))
    # Start: the inverse of the leading asymptotics log Q(x) ~ -x^2 / 2 - log(x sqrt(2 pi)),
    # refined below; start at a where that is larger (near the centre).
    s = -2.0 * target - 2.0 * _LOG_SQRT_2PI
    x = jnp.sqrt(jnp.maximum(s - jnp.log(jnp.maximum(s, 1.0)), a * a))
    x = jnp.maximum(x, jnp.asarray(a, dtype))
    for _ in range(6):  # Newton on f(x) = log Q(x) - target, f'(x) = -phi(x) / Q(x)
        lq = jax.scipy.special.log_ndtr(-x)
        log_phi = -0.5 * x * x - _LOG_SQRT_2PI
        x = x + (lq - target) * jnp.exp(lq - log_phi)
    return jnp.clip(x, jnp.asarray(a, dtype), jnp.asarray(b, dtype))


def sample_real(key: jax.Array, lower: float, upper: float, shape: tuple[int, ...],
                dtype) -> jax.Array:
    """Standard normal truncated to [lower, upper] in a real float dtype, exact for any bounds."""
    a, b = float(lower), float(upper)
    if a >= TAIL_START:
        return _upper_tail(key, a, b, shape, dtype)
    if b <= -TAIL_START:
        return -_upper_tail(key, -b, -a, shape, dtype)
    return jax.random.truncated_normal(key, lower, upper, shape, dtype)

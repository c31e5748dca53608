"""Fixed-scale distributions: constant, zeros, ones, uniform, normal, truncated normal.

Moments are exact. For complex dtypes the scale refers to E|w|^2 (the complex normal has
independent real and imaginary parts of variance stddev^2 / 2), and truncation bounds the modulus.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from jwinit._builders import named_constant
from jwinit._checks import check_real
from jwinit._sampling import sample_normal, sample_truncated_normal
from jwinit._truncnorm import complex_truncnorm_second_moment, truncnorm_moments
from jwinit._types import (
    DTypeLike,
    Initializer,
    compute_dtype,
    is_complex,
    make_initializer,
    real_dtype,
)
from jwinit.registry import register

__all__ = [
    "constant",
    "zeros",
    "ones",
    "uniform",
    "normal",
    "truncated_normal",
    "truncnorm_moments",
    "complex_truncnorm_second_moment",
]

# --------------------------------------------------------------------------------------------
# factories


@register(
    distribution="constant", variance="0", paper="-", example={"value": 0.5}, kind="bias",
    shared_with_jax=True,
)
def constant(value: Any, dtype: DTypeLike = None) -> Initializer:
    """Every entry equals `value`: W = value, Var(W) = 0.

    Args:
      value: a scalar (or an array broadcastable to the requested shape).
      dtype: the initializer's default dtype (``None``: the default float dtype).

    Examples:
      >>> jwinit.constant(-7.0)(jax.random.key(0), (2, 3))
      Array([[-7., -7., -7.],
             [-7., -7., -7.]], dtype=float32)
    """
    return named_constant(value, dtype, "constant")


@register(distribution="constant 0", variance="0", paper="-", kind="bias")
def zeros(dtype: DTypeLike = None) -> Initializer:
    """W = 0. A factory: ``jwinit.zeros()`` (``jax.nn.initializers.zeros`` is the closure)."""
    return named_constant(0, dtype, "zeros")


@register(distribution="constant 1", variance="0", paper="-", kind="bias")
def ones(dtype: DTypeLike = None) -> Initializer:
    """W = 1. A factory: ``jwinit.ones()`` (``jax.nn.initializers.ones`` is the closure)."""
    return named_constant(1, dtype, "ones")


@register(
    distribution="uniform [0, scale)", variance="scale^2 / 12", paper="-",
    example={"scale": 0.1}, kind="bias", shared_with_jax=True,
)
def uniform(scale: Any = None, dtype: DTypeLike = None, *, low: Any = None,
            high: Any = None) -> Initializer:
    """W ~ U[low, high): by default U[0, scale) as ``jax.nn.initializers.uniform``.

    ``jwinit.uniform(scale)`` is jax's U[0, scale) (scale defaults to 0.01; the same values for
    the same key); ``jwinit.uniform(low=a, high=b)`` is any interval, as PyTorch's
    ``nn.init.uniform_(w, a, b)`` (e.g. ``low=-0.1, high=0.1``). E[W] = (low + high) / 2,
    Var(W) = (high - low)^2 / 12.

    Complex dtypes: real and imaginary parts are independent U[low, high), so
    E|W - E W|^2 = (high - low)^2 / 6.

    Args:
      scale: the width of U[0, scale) (positive); not together with `low`/`high`.
      dtype: default dtype.
      low, high: the interval, ``low < high`` (both finite; give both).

    Examples:
      >>> jwinit.describe(jwinit.uniform(low=-0.5, high=1.5), (4,)).variance   # 2^2 / 12
      0.3333333333333333
    """
    if low is None and high is None:
        scale = 1e-2 if scale is None else scale
        check_real(scale, "scale", low=0, low_open=True)
        lo, hi = 0.0, float(scale)
    else:
        if scale is not None:
            raise ValueError(f"give either `scale` (U[0, scale)) or `low` and `high`, not both; "
                             f"got scale={scale!r}, low={low!r}, high={high!r}.")
        if low is None or high is None:
            raise ValueError(f"`low` and `high` go together (U[low, high)); got low={low!r}, "
                             f"high={high!r}.")
        check_real(low, "low")
        check_real(high, "high")
        lo, hi = float(low), float(high)
        if not lo < hi:
            raise ValueError(f"`low` must be less than `high`, got low={low}, high={high}.")
    jax_form = lo == 0.0

    def draw(key, shape, rd):
        u = jax.random.uniform(key, shape, rd)
        if jax_form:  # bit-identical to jax.nn.initializers.uniform(scale)
            return u * jnp.array(hi, rd)
        return u * jnp.array(hi - lo, rd) + jnp.array(lo, rd)

    def sample(key, shape, dtype):
        cd = compute_dtype(dtype)
        if is_complex(cd):
            rd = real_dtype(cd)
            k1, k2 = jax.random.split(key)
            return jax.lax.complex(draw(k1, shape, rd), draw(k2, shape, rd))
        return draw(key, shape, cd)

    def describe(shape, dtype):
        c = is_complex(dtype)
        m = (lo + hi) / 2
        return {
            "distribution": "uniform",
            "mean": complex(m, m) if c else m,
            "variance": (hi - lo) ** 2 / (6 if c else 12),
            "bounds": (lo, hi),
        }

    def pointwise(key, shape, full_shape, dtype):
        return draw(key, shape, compute_dtype(dtype))

    params = {"scale": hi} if jax_form else {"low": lo, "high": hi}
    return make_initializer(sample, name="uniform", dtype=dtype, describe=describe, params=params,
                            pointwise=pointwise)


@register(
    distribution="normal", variance="stddev^2", paper="-", example={"stddev": 0.1},
    kind="bias", shared_with_jax=True,
)
def normal(stddev: Any = 1e-2, dtype: DTypeLike = None, *, mean: Any = 0.0) -> Initializer:
    """W ~ N(mean, stddev^2): Var(W) = stddev^2 (complex: E|W - mean|^2 = stddev^2).

    With the default mean 0 the values equal ``jax.nn.initializers.normal(stddev)``'s; `mean` is
    PyTorch's ``nn.init.normal_(w, mean, std)`` and Keras' ``RandomNormal(mean, stddev)``.

    Args:
      stddev: the standard deviation (positive).
      dtype: default dtype.
      mean: the mean (finite, real).
    """
    check_real(stddev, "stddev", low=0, low_open=True)
    check_real(mean, "mean")
    mu = float(mean)

    def sample(key, shape, dtype):
        cd = compute_dtype(dtype)
        w = sample_normal(key, shape, dtype) * jnp.array(stddev, cd)
        return w if mu == 0.0 else w + jnp.array(mu, cd)

    def describe(shape, dtype):
        return {"distribution": "normal", "mean": mu, "variance": float(stddev) ** 2,
                "bounds": (-math.inf, math.inf)}

    params = {"stddev": stddev} if mu == 0.0 else {"stddev": stddev, "mean": mu}
    return make_initializer(sample, name="normal", dtype=dtype, describe=describe, params=params,
                            pointwise=lambda key, shape, full_shape, dtype: sample(key, shape,
                                                                                   dtype))


@register(
    distribution="truncated normal [lower, upper] * stddev",
    variance="stddev^2 * Var(N(0,1) on [lower, upper]); stddev^2 with preserve_std",
    paper="-", example={"stddev": 0.1}, kind="bias", shared_with_jax=True,
)
def truncated_normal(
    stddev: Any = 1e-2,
    dtype: DTypeLike = None,
    lower: Any = -2.0,
    upper: Any = 2.0,
    *,
    preserve_std: bool = False,
    mean: Any = 0.0,
) -> Initializer:
    """W = mean + stddev * z / c, z ~ N(0, 1) truncated to [lower, upper].

    The bounds are in units of `stddev` around `mean` (as ``jax.nn.initializers`` and Keras'
    ``TruncatedNormal``; PyTorch's ``trunc_normal_(mean, std, a, b)`` takes absolute bounds:
    pass ``lower=(a - mean) / std, upper=(b - mean) / std``). Without `preserve_std`, c = 1 as in
    ``jax.nn.initializers.truncated_normal`` (the std is then below `stddev`: 0.8796 * stddev for
    the default bounds). With ``preserve_std=True``, c = std(z), so std(W) = `stddev` exactly.

    Any bounds work, infinite ones included (``lower=-inf`` for a one-sided truncation), and far
    tails are exact: moments by `jwinit.distributions.truncnorm_moments`, samples by inverting the
    tail probability in log space when the interval lies beyond 2 on one side (the erf inversion
    of ``jax.random.truncated_normal`` collapses onto a few values there in float32). Intervals
    that reach within 2 of 0 on their near side are sampled exactly as jax does (the same values).

    Complex dtypes: z is the standard complex normal (E|z|^2 = 1) with |z| <= `upper`; the bounds
    must then be symmetric (``lower == -upper``) and `mean` real, and with `preserve_std`
    E|W - mean|^2 = stddev^2.

    Args:
      stddev: scale (positive).
      dtype: default dtype.
      lower, upper: truncation bounds in units of `stddev` around `mean`, ``lower < upper``;
        -inf and inf are allowed.
      preserve_std: rescale so that the standard deviation equals `stddev`.
      mean: the centre (finite).

    Examples:
      >>> init = jwinit.truncated_normal(1.0, lower=8.0, upper=9.0)
      >>> d = jwinit.describe(init, (1000,))
      >>> round(d.mean, 4), round(d.variance, 4)
      (8.1212, 0.0141)
      >>> w = init(jax.random.key(0), (100_000,))
      >>> bool(8 <= w.min() and w.max() <= 9), round(float(w.mean()), 2)
      (True, 8.12)
    """
    check_real(stddev, "stddev", low=0, low_open=True)
    check_real(lower, "lower", finite=False)
    check_real(upper, "upper", finite=False)
    check_real(mean, "mean")
    if not float(lower) < float(upper):
        raise ValueError(
            f"`lower` must be less than `upper`, got lower={lower}, upper={upper}."
        )
    if not isinstance(preserve_std, bool):
        raise TypeError(f"`preserve_std` must be a bool, got {preserve_std!r}.")
    lo, hi, mu = float(lower), float(upper), float(mean)
    z_mean, z_var = truncnorm_moments(lo, hi)

    def complex_ok():
        if lo != -hi:
            raise ValueError(
                f"complex truncated normal bounds the modulus: `lower` must equal -`upper`, got "
                f"lower={lower}, upper={upper}."
            )

    def sample(key, shape, dtype):
        cd = compute_dtype(dtype)
        if is_complex(cd):
            complex_ok()
            c = math.sqrt(complex_truncnorm_second_moment(hi)) if preserve_std else 1.0
        else:
            c = math.sqrt(z_var) if preserve_std else 1.0
        z = sample_truncated_normal(key, lo, hi, shape, dtype)
        w = z * jnp.array(float(stddev) / c, cd) if preserve_std else z * jnp.array(stddev, cd)
        return w if mu == 0.0 else w + jnp.array(mu, cd)

    def describe(shape, dtype):
        s = float(stddev)
        if is_complex(dtype):
            complex_ok()
            m2 = complex_truncnorm_second_moment(hi)
            k = s / math.sqrt(m2) if preserve_std else s
            return {"distribution": "truncated_normal", "mean": mu, "variance": k * k * m2,
                    "bounds": (mu - k * hi, mu + k * hi)}
        k = s / math.sqrt(z_var) if preserve_std else s
        return {"distribution": "truncated_normal", "mean": mu + k * z_mean,
                "variance": k * k * z_var, "bounds": (mu + k * lo, mu + k * hi)}

    return make_initializer(
        sample, name="truncated_normal", dtype=dtype, describe=describe,
        params={"stddev": stddev, "lower": lower, "upper": upper, "preserve_std": preserve_std,
                "mean": mean},
        pointwise=lambda key, shape, full_shape, dtype: sample(key, shape, dtype),
    )

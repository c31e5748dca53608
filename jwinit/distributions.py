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
def uniform(scale: Any = 1e-2, dtype: DTypeLike = None) -> Initializer:
    """W ~ U[0, scale): E[W] = scale / 2, Var(W) = scale^2 / 12 (as ``jax.nn.initializers``).

    Complex dtypes: real and imaginary parts are independent U[0, scale), so
    E|W - E W|^2 = scale^2 / 6.
    """
    check_real(scale, "scale", low=0, low_open=True)

    def sample(key, shape, dtype):
        cd = compute_dtype(dtype)
        if is_complex(cd):
            rd = real_dtype(cd)
            k1, k2 = jax.random.split(key)
            s = jnp.array(scale, rd)
            return jax.lax.complex(
                jax.random.uniform(k1, shape, rd) * s, jax.random.uniform(k2, shape, rd) * s
            )
        return jax.random.uniform(key, shape, cd) * jnp.array(scale, cd)

    def describe(shape, dtype):
        s = float(scale)
        c = is_complex(dtype)
        return {
            "distribution": "uniform",
            "mean": complex(s / 2, s / 2) if c else s / 2,
            "variance": s * s / (6 if c else 12),
            "bounds": (0.0, s),
        }

    return make_initializer(
        sample, name="uniform", dtype=dtype, describe=describe, params={"scale": scale}
    )


@register(
    distribution="normal", variance="stddev^2", paper="-", example={"stddev": 0.1},
    kind="bias", shared_with_jax=True,
)
def normal(stddev: Any = 1e-2, dtype: DTypeLike = None) -> Initializer:
    """W ~ N(0, stddev^2): Var(W) = stddev^2 (complex: E|W|^2 = stddev^2)."""
    check_real(stddev, "stddev", low=0, low_open=True)

    def sample(key, shape, dtype):
        cd = compute_dtype(dtype)
        return sample_normal(key, shape, dtype) * jnp.array(stddev, cd)

    def describe(shape, dtype):
        return {"distribution": "normal", "mean": 0.0, "variance": float(stddev) ** 2,
                "bounds": (-math.inf, math.inf)}

    return make_initializer(
        sample, name="normal", dtype=dtype, describe=describe, params={"stddev": stddev}
    )


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
) -> Initializer:
    """W = stddev * z / c, z ~ N(0, 1) truncated to [lower, upper].

    Without `preserve_std`, c = 1 as in ``jax.nn.initializers.truncated_normal`` (the std is then
    below `stddev`: 0.8796 * stddev for the default bounds). With ``preserve_std=True``,
    c = std(z) in closed form (``truncnorm_moments``), so std(W) = `stddev` exactly for any bounds.

    Complex dtypes: z is the standard complex normal (E|z|^2 = 1) with |z| <= `upper`; the bounds
    must then be symmetric (``lower == -upper``), and with `preserve_std` E|W|^2 = stddev^2.

    Args:
      stddev: scale before truncation (positive).
      dtype: default dtype.
      lower, upper: truncation bounds in units of `stddev`, ``lower < upper``.
      preserve_std: rescale so that the standard deviation equals `stddev`.
    """
    check_real(stddev, "stddev", low=0, low_open=True)
    check_real(lower, "lower")
    check_real(upper, "upper")
    if not float(lower) < float(upper):
        raise ValueError(
            f"`lower` must be less than `upper`, got lower={lower}, upper={upper}."
        )
    if not isinstance(preserve_std, bool):
        raise TypeError(f"`preserve_std` must be a bool, got {preserve_std!r}.")
    lo, hi = float(lower), float(upper)
    mean, var = truncnorm_moments(lo, hi)

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
            z = sample_truncated_normal(key, lo, hi, shape, dtype)
            c = math.sqrt(complex_truncnorm_second_moment(hi)) if preserve_std else 1.0
        else:
            z = jax.random.truncated_normal(key, lower, upper, shape, cd)
            c = math.sqrt(var) if preserve_std else 1.0
        if preserve_std:
            return z * jnp.array(float(stddev) / c, cd)
        return z * jnp.array(stddev, cd)

    def describe(shape, dtype):
        s = float(stddev)
        if is_complex(dtype):
            complex_ok()
            m2 = complex_truncnorm_second_moment(hi)
            k = s / math.sqrt(m2) if preserve_std else s
            return {"distribution": "truncated_normal", "mean": 0.0, "variance": k * k * m2,
                    "bounds": (-k * hi, k * hi)}
        k = s / math.sqrt(var) if preserve_std else s
        return {"distribution": "truncated_normal", "mean": k * mean, "variance": k * k * var,
                "bounds": (k * lo, k * hi)}

    return make_initializer(
        sample, name="truncated_normal", dtype=dtype, describe=describe,
        params={"stddev": stddev, "lower": lower, "upper": upper, "preserve_std": preserve_std},
    )

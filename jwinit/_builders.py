"""Builders of named initializers that several schemes share.

* `named_constant`: every entry one value (zeros, ones, constant, Fixup's zeros, muP's zero bias).
* `named_identity`: gain * I on the last two axes (identity, IRNN).
* `scaled_variance`: Var(W) = scale / n(mode) from a `FanSpec` (the core of `variance_scaling`
  and of every fan-based recipe).
* `derived`: another initializer times a positive factor, renamed (Fixup, T-Fixup, DeepNet, muP).

Each returns a closure built by `jwinit._types.make_initializer`, so `describe`, dtypes and
``out_sharding`` work as for every public scheme.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jwinit._checks import check_callable_init, check_real
from jwinit._sampling import sample_symmetric_uniform, sample_truncated_normal
from jwinit._truncnorm import complex_truncnorm_second_moment, truncnorm_moments
from jwinit._types import (
    DTypeLike,
    Initializer,
    compute_dtype,
    info_of,
    is_complex,
    make_initializer,
    prod,
    real_dtype,
)
from jwinit.fans import FanSpec, fan_spec

__all__ = ["MODES", "DISTRIBUTIONS", "named_constant", "named_identity", "deterministic_moments",
           "scaled_variance", "derived", "fan_scaled"]

MODES = ("fan_in", "fan_out", "fan_avg", "fan_geo_avg")
DISTRIBUTIONS = ("truncated_normal", "normal", "uniform")

# std of N(0, 1) truncated to [-2, 2], the constant jax.nn.initializers uses (bit-compatible).
_TRUNC_STD = 0.87962566103423978
_COMPLEX_TRUNC_STD = math.sqrt(complex_truncnorm_second_moment(2.0))


def _denominator(mode: str, fan_in: int, fan_out: int) -> float:
    if mode == "fan_in":
        return fan_in
    if mode == "fan_out":
        return fan_out
    if mode == "fan_avg":
        return (fan_in + fan_out) / 2
    return (fan_in * fan_out) ** 0.5



def named_constant(value: Any, dtype: DTypeLike, name: str) -> Initializer:
    """Every entry `value` (a finite number or array broadcastable to the shape)."""
    if isinstance(value, str | bytes) or value is None:
        raise TypeError(f"`value` of `{name}` must be a number or array, got {value!r}.")
    traced = isinstance(value, jax.core.Tracer)
    try:
        arr = value if isinstance(value, jax.Array) else np.asarray(value)
        kind = np.dtype(arr.dtype).kind
    except (TypeError, ValueError):
        raise TypeError(f"`value` of `{name}` must be a number or array, got {value!r}.") from None
    if kind not in "biufc":
        raise TypeError(f"`value` of `{name}` must be a number or array, got {value!r}.")
    if not traced and kind in "fc" and not bool(np.all(np.isfinite(np.asarray(arr)))):
        raise ValueError(f"`value` of `{name}` must be finite, got {value!r}.")

    def check_shape(shape):
        try:
            ok = np.broadcast_shapes(np.shape(arr), shape) == tuple(shape)
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"`value` of `{name}` has shape {np.shape(arr)}, which does not "
                             f"broadcast to the requested shape {tuple(shape)}.")

    def check_dtype(dtype):
        if kind == "c" and not is_complex(dtype):
            raise ValueError(
                f"`value` of `{name}` is complex ({value!r}) but the dtype {dtype.name} is real; "
                "ask for a complex dtype or pass a real value (the imaginary part would be "
                "dropped)."
            )

    def sample(key, shape, dtype):
        return jnp.broadcast_to(jnp.asarray(arr, dtype), shape)

    def pointwise(key, shape, full_shape, dtype):
        return jnp.broadcast_to(jnp.asarray(arr, dtype), shape)

    def describe(shape, dtype):
        m = complex(arr) if np.ndim(arr) == 0 and is_complex(dtype) else (
            float(np.real(arr)) if np.ndim(arr) == 0 else float(np.mean(np.real(arr)))
        )
        return {"distribution": "constant", "mean": m, "variance": 0.0, "bounds": (m, m)}

    return make_initializer(
        sample, name=name, dtype=dtype, describe=describe, inexact=False,
        check_dtype=check_dtype, check_shape=check_shape, params={"value": value},
        pointwise=pointwise if np.ndim(arr) == 0 and not traced else None,
    )


def deterministic_moments(count: int, value: float, size: int, total: float | None = None):
    """Mean and variance over the entries of an array with `count` entries of modulus |value|
    (summing to `total`, default count * value) and zeros elsewhere."""
    if size == 0:
        return 0.0, 0.0
    total = count * value if total is None else total
    mean = total / size
    return mean, max(count * value * value / size - mean * mean, 0.0)


def named_identity(gain: Any, dtype: DTypeLike, name: str) -> Initializer:
    check_real(gain, "gain")
    g = float(gain)

    def check_shape(shape):
        if len(shape) < 2:
            raise ValueError(
                f"`{name}` needs a weight of rank >= 2 (..., in, out), got shape {shape}."
            )

    def sample(key, shape, dtype):
        cd = compute_dtype(dtype)
        eye_ = jnp.eye(shape[-2], shape[-1], dtype=cd) * jnp.array(g, cd)
        return jnp.broadcast_to(eye_, shape)

    def describe(shape, dtype):
        check_shape(shape)
        n, m = shape[-2:]
        k = min(n, m)
        mean, var = deterministic_moments(k * prod(shape[:-2]), g, prod(shape))
        lo, hi = (g, g) if k == n * m else (min(0.0, g), max(0.0, g))
        return {"distribution": "identity", "mean": mean, "variance": var, "bounds": (lo, hi),
                "gain": g, "deterministic": True}

    return make_initializer(
        sample, name=name, dtype=dtype, describe=describe, check_shape=check_shape,
        params={"gain": gain},
    )


def scaled_variance(
    scale: Any, mode: str, distribution: str, spec: FanSpec, dtype: DTypeLike, name: str
) -> Initializer:
    def draw(key, shape, full_shape, dtype):
        denominator = _denominator(mode, *spec.fans(full_shape)) or 1
        cd = compute_dtype(dtype)
        rd = real_dtype(cd)
        variance = jnp.array(scale / denominator, dtype=rd)
        if distribution == "normal":
            return jax.random.normal(key, shape, cd) * jnp.sqrt(variance).astype(cd)
        if is_complex(cd):
            if distribution == "uniform":
                return sample_symmetric_uniform(key, shape, cd) * jnp.sqrt(variance).astype(cd)
            stddev = jnp.sqrt(variance) / jnp.array(_COMPLEX_TRUNC_STD, rd)
            return sample_truncated_normal(key, -2.0, 2.0, shape, cd) * stddev.astype(cd)
        if distribution == "uniform":
            return jax.random.uniform(key, shape, cd, -1) * jnp.sqrt(3 * variance)
        stddev = jnp.sqrt(variance) / jnp.array(_TRUNC_STD, cd)
        return jax.random.truncated_normal(key, -2, 2, shape, cd) * stddev

    def sample(key, shape, dtype):
        return draw(key, shape, shape, dtype)

    def describe(shape, dtype):
        fan_in, fan_out = spec.fans(shape)
        target = float(scale) / (_denominator(mode, fan_in, fan_out) or 1)
        if distribution == "normal":
            variance, bounds = target, (-math.inf, math.inf)
        elif distribution == "uniform":
            variance = target
            r = math.sqrt((2 if is_complex(dtype) else 3) * target)
            bounds = (-r, r)
        elif is_complex(dtype):
            r = 2 * math.sqrt(target) / _COMPLEX_TRUNC_STD
            variance, bounds = target, (-r, r)
        else:
            variance = target * truncnorm_moments(-2.0, 2.0)[1] / _TRUNC_STD**2
            r = 2 * math.sqrt(target) / _TRUNC_STD
            bounds = (-r, r)
        return {
            "fan_in": fan_in,
            "fan_out": fan_out,
            "mode": mode,
            "distribution": distribution,
            "mean": 0.0,
            "variance": variance,
            "target_variance": target,
            "bounds": bounds,
            "scale": float(scale),
        }

    return make_initializer(
        sample,
        name=name,
        dtype=dtype,
        describe=describe,
        check_shape=spec.fans,
        params={"scale": scale, "mode": mode, "distribution": distribution},
        pointwise=draw,
    )


def derived(
    base: Initializer,
    *,
    name: str,
    factor: float = 1.0,
    dtype: DTypeLike = None,
    extra: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
) -> Initializer:
    """`base` multiplied by a positive `factor`, renamed, with extra facts for `describe`."""
    check_callable_init(base, "base", name=name.split(".")[0])
    f = float(factor)
    base_info = info_of(base)

    def sample(key, shape, dtype):
        out = base(key, shape, compute_dtype(dtype))
        return out if f == 1.0 else out * f

    def pointwise(key, shape, full_shape, dtype):
        out = base_info.pointwise(key, shape, full_shape, compute_dtype(dtype))
        return out if f == 1.0 else out * f

    def describe(shape, dtype):
        facts = dict(base_info.describe(shape, dtype)) if base_info is not None else {
            "distribution": f"scaled {getattr(base, '__name__', 'initializer')}"}
        for k in ("variance", "target_variance"):
            if facts.get(k) is not None:
                facts[k] = facts[k] * f * f
        if facts.get("mean") is not None:
            facts["mean"] = facts["mean"] * f
        if facts.get("bounds") is not None:
            lo, hi = facts["bounds"]
            facts["bounds"] = (lo * f, hi * f)
        if f != 1.0:
            facts["factor"] = f
        facts.update(extra or {})
        return facts

    def check_shape(shape):
        if base_info is not None:
            base_info.describe(shape, np.dtype(np.float32))

    return make_initializer(
        sample, name=name, dtype=dtype, describe=describe, check_shape=check_shape,
        params=dict(params or {}, factor=f),
        pointwise=pointwise if base_info is not None and base_info.pointwise else None,
    )


def fan_scaled(scale, mode, distribution, dtype, layout, name, in_axis=-2, out_axis=-1,
               batch_axis=()):
    """`scaled_variance` with fan arguments validated here (the recipes' named bases)."""
    spec = fan_spec(in_axis, out_axis, batch_axis, layout=layout)
    return scaled_variance(scale, mode, distribution, spec, dtype, name)

"""Samplers shared by the schemes: unit-scale draws in the compute dtype, drawn flat.

Every sampler returns an array of the requested shape in ``compute_dtype(dtype)`` (float32 for
half precision, the dtype itself for float32/float64/complex). Complex samplers have E|z|^2 = 1.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jwinit._truncnorm import sample_real
from jwinit._types import Shape, compute_dtype, is_complex, prod, real_dtype

__all__ = ["flat", "sample_normal", "sample_symmetric_uniform", "sample_truncated_normal"]


def flat(sampler, key: jax.Array, shape: Shape, *args: Any) -> jax.Array:
    """``sampler(key, shape, *args)`` drawn as a flat vector and reshaped.

    The values are identical (JAX's threefry bits are laid out in row-major order, with or
    without ``jax_threefry_partitionable``); XLA's CPU compiler is up to 10x slower on some
    multi-dimensional random shapes such as conv kernels (3, 3, 8, 16).
    """
    return jnp.reshape(sampler(key, (prod(shape),), *args), shape)


def sample_truncated_normal(
    key: jax.Array, lower: float, upper: float, shape: tuple[int, ...], dtype: np.dtype
) -> jax.Array:
    """Standard normal truncated to [lower, upper] (real) or to |z| <= upper (complex)."""
    cd = compute_dtype(dtype)
    if not is_complex(cd):
        return sample_real(key, lower, upper, shape, cd)
    rd = real_dtype(cd)
    k_r, k_t = jax.random.split(key)
    # |z|^2 = -log(1 - t), t ~ U(0, 1 - exp(-b^2)): Exp(1) conditioned on |z|^2 <= b^2.
    t = -jnp.expm1(jnp.array(-(float(upper) ** 2), rd)) * jax.random.uniform(k_r, shape, rd)
    r = jnp.sqrt(-jnp.log1p(-t))
    theta = 2 * jnp.pi * jax.random.uniform(k_t, shape, rd)
    return jax.lax.complex(r * jnp.cos(theta), r * jnp.sin(theta))


def sample_normal(key: jax.Array, shape: tuple[int, ...], dtype: np.dtype) -> jax.Array:
    """N(0, 1); complex: E|z|^2 = 1."""
    return jax.random.normal(key, shape, compute_dtype(dtype))


def sample_symmetric_uniform(key: jax.Array, shape: tuple[int, ...], dtype: np.dtype) -> jax.Array:
    """Unit-variance uniform: U(-sqrt3, sqrt3) (real), the disk of radius sqrt2 (complex)."""
    cd = compute_dtype(dtype)
    if not is_complex(cd):
        return jax.random.uniform(key, shape, cd, -1) * jnp.sqrt(jnp.array(3, cd))
    rd = real_dtype(cd)
    k_r, k_t = jax.random.split(key)
    r = jnp.sqrt(2 * jax.random.uniform(k_r, shape, rd))
    theta = 2 * jnp.pi * jax.random.uniform(k_t, shape, rd)
    return jax.lax.complex(r * jnp.cos(theta), r * jnp.sin(theta))

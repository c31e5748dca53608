"""Elementwise application of a scalar core over broadcast arrays, compiled once per size bucket.

Every public theory function is a scalar "core" (one (sigma_w2, sigma_b2, ...) point, written with
``lax`` loops) that `compiled` vmaps and jits. Arguments are flattened and padded to a power-of-two
length so that one compiled program per length bucket serves every shape, and the programs are
cached per (core, activation moments, static arguments).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jwinit.theory._moments import Moments

__all__ = ["compiled", "cast", "float_dtype"]


def float_dtype() -> np.dtype:
    """The default float dtype: float64 under ``jax.enable_x64``, float32 otherwise."""
    return np.dtype(jnp.zeros((), float).dtype)


def cast(*values: Any) -> list[jax.Array]:
    """Cast to the default float dtype and broadcast explicitly (strict rank promotion)."""
    dt = float_dtype()
    arrs = [jnp.asarray(v).astype(dt) for v in values]
    shape = np.broadcast_shapes(*(a.shape for a in arrs))
    return [jnp.broadcast_to(a, shape) for a in arrs]


@functools.lru_cache(maxsize=512)
def _batched(core: Callable[..., Any], model: Moments, **static: Any) -> Callable[..., Any]:
    return jax.jit(jax.vmap(functools.partial(core, model, **static)))


def _bucket(n: int) -> int:
    """The padded length of `n` points: 1, 2, 4, ..., 128, then the next multiple of 128."""
    if n <= 128:
        return 1 << max(n - 1, 0).bit_length()
    return -(-n // 128) * 128


def compiled(core: Callable[..., Any], model: Moments, **static: Any) -> Callable[..., Any]:
    """`core` (a function of scalars) applied elementwise to broadcast arrays, compiled once.

    The arguments are flattened and padded (with their first entry) to a bucketed length (a
    power of two up to 128, then a multiple of 128), so that one compiled program per length
    bucket serves every shape while padding wastes little work; the outputs are unpadded and
    reshaped, keeping any trailing axes the core returns (e.g. per-layer values).
    """
    fn = _batched(core, model, **static)

    def run(*args: jax.Array) -> Any:
        shape = args[0].shape
        n = math.prod(shape)
        size = _bucket(n)
        if n == 0:
            flat = [jnp.ones((1,), a.dtype) for a in args]
        else:
            flat = [jnp.pad(a.reshape(-1), (0, size - n), mode="edge") for a in args]
        out = fn(*flat)
        return jax.tree_util.tree_map(lambda o: o[:n].reshape(shape + o.shape[1:]), out)

    return run

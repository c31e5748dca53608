"""Singular values of the input-output Jacobian of a random MLP (Pennington et al. 2017)."""

from __future__ import annotations

import collections
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jwinit._checks import check_choice, check_initializer, check_int, check_real, renamed
from jwinit._linalg import singular_values
from jwinit.probe._options import PRECISIONS
from jwinit.probe._program import (
    MAX_PROGRAMS,
    Member,
    dot,
    dot_precision,
    resolve_activation,
    seed_keys,
    single_key,
)

__all__ = ["jacobian_singular_values", "OUTPUTS"]

#: Legal values of `output`.
OUTPUTS = ("preactivation", "activation")
#: Legal values of `dtype`.
DTYPES = ("float32", "float64")

_JAC_PROGRAMS: collections.OrderedDict[tuple[Any, ...], Callable[..., Any]] = (
    collections.OrderedDict()
)


@renamed(num_seeds="seeds")
def jacobian_singular_values(
    key: jax.Array | int,
    kernel_init: Callable[..., Any],
    activation: str | Callable[..., Any],
    *,
    depth: int,
    width: int,
    seeds: int = 1,
    bias_init: Callable[..., Any] | None = None,
    input_dim: int | None = None,
    precision: str | None = "highest",
    output: str = "preactivation",
    input_q: float = 1.0,
    dtype: str = "float32",
) -> np.ndarray:
    """Singular values of the input-output Jacobian of a random MLP at a random input.

    The network and its weights are those of `probe_mlp` for the same key and seed. The Jacobian
    is ``d h^depth / d x`` (``output='preactivation'``, the probe's convention) or
    ``d phi(h^depth) / d x`` (``output='activation'``, Pennington et al. 2017), built layer by
    layer inside a scan as ``J <- (J * phi'(h)) @ W`` at x ~ N(0, input_q I).

    Args:
      key: a PRNG key (or int seed).
      kernel_init, activation, depth, width, bias_init, input_dim, precision: as in `probe_mlp`
        (the default precision here is 'highest': isometry is a statement about exact products).
      seeds: independent networks.
      output: 'preactivation' or 'activation'.
      input_q: the second moment of the input entries. To start the network at its fixed point
        q* (as the mean-field Jacobian spectrum assumes), pass (q* - sigma_b2) / sigma_w2.
      dtype: 'float32', or 'float64' (weights, products and SVD in double precision, with
        ``jax.enable_x64`` on for the call): singular values below float32's resolution of the
        largest (a spread of 1e7 and more, as deep Gaussian products reach) are then resolved
        rather than rounding noise.

    Returns:
      float64 array (seeds, min(input_dim, width)), singular values in descending order.

    Examples:
      >>> s = jwinit.jacobian_singular_values(jax.random.key(0), jax.nn.initializers.orthogonal(),
      ...                                     'linear', depth=16, width=128)
      >>> np.allclose(s, 1, atol=1e-4)
      True

    References:
      Pennington, Schoenholz & Ganguli 2017; Saxe et al. 2014.
    """
    key = single_key(key, "jacobian_singular_values")
    depth = check_int(depth, "depth", minimum=1)
    width = check_int(width, "width", minimum=1)
    num_seeds = check_int(seeds, "seeds", minimum=1)
    input_dim = width if input_dim is None else check_int(input_dim, "input_dim", minimum=1)
    precision = check_choice(precision, "precision", PRECISIONS)
    check_choice(output, "output", OUTPUTS)
    input_q = float(check_real(input_q, "input_q", low=0.0, low_open=True))
    check_choice(dtype, "dtype", DTYPES)
    act = resolve_activation(activation)
    check_initializer(kernel_init, "kernel_init", (input_dim, width))
    if depth > 1:
        check_initializer(kernel_init, "kernel_init", (width, width))
    if bias_init is not None:
        check_initializer(bias_init, "bias_init", (width,))
    backend = jax.default_backend()
    member = Member(kernel_init, bias_init, act, 1)
    cache_key = (member, depth, width, input_dim, precision, output, backend, dtype)
    fn = _JAC_PROGRAMS.get(cache_key)
    dt = jnp.dtype(dtype)
    if fn is None:
        fn = jax.jit(jax.vmap(lambda k, scale: _jacobian_svals(
            k, kernel_init, bias_init, act, depth, width, input_dim,
            dot_precision(precision, backend), output, scale, dt,
        ), in_axes=(0, None)))
        _JAC_PROGRAMS[cache_key] = fn
        while len(_JAC_PROGRAMS) > MAX_PROGRAMS:
            _JAC_PROGRAMS.popitem(last=False)
    keys = seed_keys(key, range(num_seeds))
    with jax.enable_x64(dtype == "float64"):
        return np.asarray(fn(keys, jnp.asarray(math.sqrt(input_q), dt)), np.float64)


def _jacobian_svals(key, kernel_init, bias_init, act, depth, width, input_dim, precision, output,
                    scale, dt):
    k_w, k_b, k_x, _ = jax.random.split(key, 4)
    x = jax.random.normal(k_x, (1, input_dim), dt) * scale

    def bias(layer):
        if bias_init is None:
            return jnp.zeros((width,), dt)
        return bias_init(jax.random.fold_in(k_b, layer), (width,), dt).astype(dt)

    w1 = kernel_init(jax.random.fold_in(k_w, 0), (input_dim, width), dt).astype(dt)
    h = dot(x, w1, precision, dt)[0] + bias(0)
    jac = w1

    def body(carry, layer):
        h, jac = carry
        w = kernel_init(jax.random.fold_in(k_w, layer), (width, width), dt).astype(dt)
        d = act.deriv(h)
        jac = dot(jac * d[None, :], w, precision, dt)
        h = dot(act(h)[None, :], w, precision, dt)[0] + bias(layer)
        return (h, jac), None

    if depth > 1:
        (h, jac), _ = lax.scan(body, (h, jac), jnp.arange(1, depth, dtype=jnp.int32))
    if output == "activation":
        jac = jac * act.deriv(h)[None, :]
    return singular_values(jac)

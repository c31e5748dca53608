"""``vmap`` with convolutions unrolled: runs vectorized, except each run's own convolution.

``jax.vmap`` of a convolution over both its input and its kernel (every run has its own kernel and
its own activations) is a grouped convolution (``feature_group_count`` = runs), which XLA:CPU
computes several times slower than the runs' convolutions one by one (measured on the trainer's
CNN: 8 runs forward and backward 69 ms vmapped, 13 ms unrolled). `vmap_unrolled_convs(fn)` traces
`fn` for one run, then evaluates its jaxpr under ``jax.vmap`` with every such convolution replaced
by the runs' separate convolutions, stacked; everything else (and a convolution batched on one
operand only, which folds into the batch or the features) is vmapped as usual. The values are the
same computation as ``jax.vmap(fn)`` (each run's convolution is the one of the unbatched run).
Convolutions inside control flow (``scan``, ``while``, ``cond``) keep vmap's rule.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from jax.extend import core as jcore

__all__ = ["vmap_unrolled_convs"]

_INLINED = ("pjit", "jit", "closed_call", "core_call")


def _conv(params: dict[str, Any]) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """``conv_general_dilated`` with these params, batched run by run when both operands are."""

    def bind(lhs: jax.Array, rhs: jax.Array) -> jax.Array:
        return lax.conv_general_dilated_p.bind(lhs, rhs, **params)

    @jax.custom_batching.custom_vmap
    def conv(lhs, rhs):
        return bind(lhs, rhs)

    @conv.def_vmap
    def rule(axis_size, in_batched, lhs, rhs):
        lhs_batched, rhs_batched = in_batched
        if lhs_batched and rhs_batched:
            return jnp.stack([conv(lhs[i], rhs[i]) for i in range(axis_size)]), True
        axes = (0 if lhs_batched else None, 0 if rhs_batched else None)
        return jax.vmap(bind, in_axes=axes)(lhs, rhs), True

    return conv


def _eval(jaxpr: Any, consts: Sequence[Any], *args: Any) -> list[Any]:
    """`jax.core.eval_jaxpr` with convolutions through `_conv` (nested jit calls inlined)."""
    env: dict[Any, Any] = {}

    def read(v: Any) -> Any:
        return v.val if isinstance(v, jcore.Literal) else env[v]

    env.update(zip(jaxpr.constvars, consts, strict=True))
    env.update(zip(jaxpr.invars, args, strict=True))
    for eqn in jaxpr.eqns:
        ins = [read(v) for v in eqn.invars]
        name = eqn.primitive.name
        if name == "conv_general_dilated":
            outs = [_conv(eqn.params)(*ins)]
        elif name in _INLINED and "jaxpr" in eqn.params:
            inner = eqn.params["jaxpr"]
            if hasattr(inner, "consts"):
                outs = _eval(inner.jaxpr, inner.consts, *ins)
            else:
                outs = _eval(inner, (), *ins)
        else:
            with eqn.ctx.manager:
                outs = eqn.primitive.bind(*ins, **eqn.primitive.get_bind_params(eqn.params))
            if not eqn.primitive.multiple_results:
                outs = [outs]
        env.update(zip(eqn.outvars, outs, strict=True))
    return [read(v) for v in jaxpr.outvars]


def vmap_unrolled_convs(fn: Callable[..., Any], n_extra: int) -> Callable[..., Any]:
    """``jax.vmap(fn, in_axes=(0,) + (None,) * n_extra)`` with convolutions unrolled over the
    mapped axis (see the module docstring)."""

    @functools.wraps(fn)
    def batched(state: Any, *extra: Any) -> Any:
        one = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape[1:], a.dtype), state)
        closed, out_shape = jax.make_jaxpr(fn, return_shape=True)(one, *extra)
        flat_state, flat_extra = jax.tree.leaves(state), jax.tree.leaves(extra)
        n_state = len(flat_state)

        def run(*flat):
            return _eval(closed.jaxpr, closed.consts, *flat)

        axes = (0,) * n_state + (None,) * len(flat_extra)
        out = jax.vmap(run, in_axes=axes)(*flat_state, *flat_extra)
        return jax.tree.unflatten(jax.tree.structure(out_shape), out)

    return batched

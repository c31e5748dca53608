"""Compiled programs: a bounded store of them, kept per hashable key (a model, its keyword
arguments, shapes), so that the reports of many initializations of one model compile it once;
and `jit_few_outputs`, a jit for programs with many same-shape outputs (every layer's kernel).
Private to the package."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax


class ProgramCache:
    """At most `size` programs; the oldest is dropped first. A key that cannot be hashed (a model
    with an unhashable field, say) is built every time and not kept."""

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self._store: dict[Hashable, Callable[..., Any]] = {}

    def get(self, key: Any, build: Callable[[], Callable[..., Any]]) -> Callable[..., Any]:
        try:
            hash(key)
        except TypeError:
            return build()
        if key not in self._store:
            if len(self._store) >= self.size:
                self._store.pop(next(iter(self._store)))
            self._store[key] = build()
        return self._store[key]

    def __len__(self) -> int:
        return len(self._store)

    def clear(self) -> None:
        self._store.clear()


#: XLA:CPU compile options of jwinit's programs: LLVM's optimization level 1 instead of 2. It
#: halves the compile of an initialization (a 30-layer MLP's He draws: 0.78 s to 0.40 s, the
#: values bit for bit the same) and shortens a training step's (the benchmark's Transformer:
#: 1.3 s to 1.1 s) at no measured cost in step time (an 8-layer MLP of width 512 under Adam:
#: 8.1-9.5 ms per step either way).
CPU_COMPILER_OPTIONS = {"xla_backend_optimization_level": 1}


def compiler_options() -> dict[str, Any]:
    """The options to compile a program with on the default backend (`CPU_COMPILER_OPTIONS` on
    CPU, none elsewhere)."""
    return dict(CPU_COMPILER_OPTIONS) if jax.default_backend() == "cpu" else {}


def _stackable(leaf: Any) -> bool:
    return not jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def _axis(ndim: int) -> int:
    """Where leaves of `ndim` dimensions are stacked: after a leading (runs or seeds) axis, as a
    vmapped draw lays them out, so that XLA sees the stack of the draw's slices as the draw
    itself (0-d leaves: axis 0)."""
    return 1 if ndim >= 1 else 0


def jit_few_outputs(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``jax.jit(fn)``, the same values, compiled with the outputs of one shape and dtype stacked
    into one array, split again after the call.

    XLA:CPU compiles every output of a program as a kernel of its own, a few to ten milliseconds
    each: the initial parameters of a 30-layer MLP (61 leaves, 29 of them one vmapped draw) took
    0.45 s to compile as separate outputs and 0.15 s as one stacked output (XLA folds the stack of
    the draw's slices back into the draw). The slices are then copies in host memory (one CPU
    device) or the dispatches of one compiled slicing program per stacked shape. Typed PRNG keys
    are returned as they are. A new trace and compile per call, on CPU at LLVM optimization level
    1: for programs run once.
    """

    def call(*args: Any) -> Any:
        layout: dict[str, Any] = {}

        def packed(*a: Any) -> Any:
            leaves, layout["tree"] = jax.tree.flatten(fn(*a))
            groups: dict[tuple[Any, ...], list[int]] = {}
            for i, leaf in enumerate(leaves):
                if _stackable(leaf):
                    groups.setdefault((leaf.shape, leaf.dtype), []).append(i)
            layout["groups"] = [ix for ix in groups.values() if len(ix) > 1]
            stacked = {i for ix in layout["groups"] for i in ix}
            layout["alone"] = [i for i in range(len(leaves)) if i not in stacked]
            return ([jnp.stack([leaves[i] for i in ix], axis=_axis(leaves[ix[0]].ndim))
                     for ix in layout["groups"]],
                    [leaves[i] for i in layout["alone"]])

        cpu = jax.default_backend() == "cpu"
        lowered = jax.jit(packed, compiler_options=compiler_options()).lower(*args)
        stacks, alone = lowered.compile()(*args)
        out: list[Any] = [None] * (len(alone) + sum(map(len, layout["groups"])))
        for ix, stack in zip(layout["groups"], stacks, strict=True):
            axis = _axis(stack.ndim - 1)
            if cpu and len(stack.devices()) == 1:  # host memory: copies, no program to compile
                host = np.asarray(stack)
                for j, i in enumerate(ix):
                    out[i] = jnp.asarray(np.take(host, j, axis))
                continue
            for j, i in enumerate(ix):
                out[i] = lax.dynamic_index_in_dim(stack, j, axis, keepdims=False)
        for i, leaf in zip(layout["alone"], alone, strict=True):
            out[i] = leaf
        return jax.tree.unflatten(layout["tree"], out)

    return call

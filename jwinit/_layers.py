"""The plumbing every data-dependent scheme shares: checking a Flax model (linen or nnx) and a data
batch, running it with clear errors, and observing the output of every kernel-carrying layer in
call order (linen through ``nn.intercept_methods``, nnx on a private recording copy).

Used by `jwinit.data_dependent` (LSUV, weight-norm init, signal reports), `jwinit.pretraining`
and `jwinit.gradinit`; private to the package.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import flax
import flax.errors
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx, traverse_util

Path = tuple[Any, ...]


# --------------------------------------------------------------------------------------------
# checks


def check_model(model: Any, variables: Any) -> str:
    if isinstance(model, nnx.Module):
        if variables is not None:
            raise ValueError("`variables` must be None for an nnx model (its state is inside it).")
        if not nnx_layers(model):
            raise ValueError(f"`model` {type(model).__name__} has no layer with a `kernel` "
                             "parameter; nothing to report or rescale.")
        return "nnx"
    if isinstance(model, nn.Module):
        if not isinstance(variables, Mapping) or "params" not in variables:
            raise ValueError(
                "a linen model needs `variables`, the dict returned by `model.init(...)` with a "
                f"'params' collection; got {type(variables).__name__}."
            )
        if not linen_kernel_paths(variables):
            raise ValueError(f"`variables` of `model` {type(model).__name__} hold no `kernel` "
                             "parameter; nothing to report or rescale.")
        return "linen"
    raise TypeError(
        f"`model` must be a flax.linen.Module or a flax.nnx.Module, got {type(model).__name__}."
    )


def check_batch(x: Any) -> jax.Array:
    if not isinstance(x, jax.Array | np.ndarray):
        raise TypeError(f"`x` must be an array (a data batch), got {type(x).__name__}.")
    if x.ndim < 1 or x.shape[0] < 2:
        raise ValueError(f"`x` must be a batch of at least 2 examples, got shape {x.shape}.")
    if (jnp.issubdtype(x.dtype, jnp.inexact) and concrete(x)
            and not np.all(np.isfinite(np.asarray(x)))):
        raise ValueError("`x` holds NaN or inf values; pass a finite data batch.")
    return jnp.asarray(x)


def concrete(value: Any) -> bool:
    """False under a transformation (jit, vmap): the value is unknown, its checks are skipped."""
    return not isinstance(value, jax.core.Tracer)


def scalar(value: jax.Array) -> Any:
    """A Python float, or the traced scalar itself under jit (the report is then a pytree)."""
    return float(value) if concrete(value) else value


def run_model(run: Callable[..., Any], x: jax.Array, what: str) -> Any:
    """`run()`, with a failure of the model on `x` (a batch of the wrong shape, variables of
    another model) reported as a ValueError that names the batch."""
    try:
        return run()
    except (TypeError, ValueError, flax.errors.FlaxError) as e:
        kind = ValueError if isinstance(e, flax.errors.FlaxError) else type(e)
        raise kind(f"running the model on `x` of shape {x.shape} failed ({what}): "
                   f"{str(e).split(' (https://')[0]}") from None


# --------------------------------------------------------------------------------------------
# observing layer outputs


class Recorder:
    """Records each kernel layer's output in first-call order, perturbed by `deltas` if given."""

    def __init__(self, deltas: Mapping[Path, jax.Array] | None):
        self.deltas = deltas
        self.outputs: dict[Path, jax.Array] = {}
        self.order: list[Path] = []

    def __call__(self, path: Path, out: Any) -> Any:
        if not isinstance(out, jax.Array):
            return out
        if self.deltas is not None and path in self.deltas:
            out = out + self.deltas[path]
        if path not in self.outputs:
            self.order.append(path)
        self.outputs[path] = out
        return out

    def layers(self) -> list[tuple[Path, jax.Array]]:
        return [(p, self.outputs[p]) for p in self.order]


# linen


def linen_kernel_paths(variables: Mapping[str, Any]) -> list[Path]:
    flat = traverse_util.flatten_dict(dict(variables.get("params", {})))
    return [p[:-1] for p in flat if p[-1] == "kernel"]


def linen_kernel(variables: Mapping[str, Any], path: Path) -> jax.Array:
    """The kernel at `path`, its value (unboxed from `nn.Partitioned` / `nn.LogicallyPartitioned`
    if the model annotates it)."""
    kernel = traverse_util.flatten_dict(dict(variables["params"]))[(*path, "kernel")]
    return kernel.unbox() if isinstance(kernel, nn.meta.AxisMetadata) else kernel


def set_linen_kernel(variables: Mapping[str, Any], path: Path, value: jax.Array) -> dict:
    """`variables` with the kernel at `path` set to `value` (inside its partitioning box, which
    keeps its axis names, if it has one)."""
    params = traverse_util.flatten_dict(dict(variables["params"]))
    old = params[(*path, "kernel")]
    params[(*path, "kernel")] = (old.replace_boxed(value)
                                 if isinstance(old, nn.meta.AxisMetadata) else value)
    return {**variables, "params": traverse_util.unflatten_dict(params)}


def linen_apply_kwargs(variables: Mapping[str, Any], kwargs: Mapping[str, Any],
                        key: jax.Array) -> dict[str, Any]:
    out = dict(kwargs)
    mutable = [c for c in variables if c != "params"]
    if mutable and "mutable" not in out:
        out["mutable"] = mutable
    if "rngs" not in out:
        out["rngs"] = {"dropout": key}
    return out


def linen_outputs(module: nn.Module, variables, x, deltas, kwargs, key):
    """Run `module` recording (and perturbing by `deltas`) each kernel layer's output."""
    layers = set(linen_kernel_paths(variables))
    record = Recorder(deltas)

    def interceptor(next_fun, args, kw, context):
        out = next_fun(*args, **kw)
        path = tuple(context.module.path)
        if context.method_name != "__call__" or path not in layers:
            return out
        return record(path, out)

    apply_kwargs = linen_apply_kwargs(variables, kwargs, key)
    with nn.intercept_methods(interceptor):
        y = module.apply(variables, x, **apply_kwargs)
    if "mutable" in apply_kwargs and apply_kwargs["mutable"]:
        y = y[0]
    return y, record.layers()


# nnx


def nnx_layers(model: nnx.Module) -> list[tuple[Path, nnx.Module]]:
    return [
        (tuple(path), mod)
        for path, mod in nnx.iter_modules(model)
        if isinstance(getattr(mod, "kernel", None), nnx.Param)
    ]


def recording(cls: type, path: Path, record: Recorder) -> type:
    """A subclass of `cls` whose ``__call__`` passes its output through `record` under `path`."""

    def __call__(self, *args, **kwargs):
        return record(path, cls.__call__(self, *args, **kwargs))

    return type(cls.__name__, (cls,), {"__call__": __call__, "__module__": cls.__module__})


def nnx_outputs(model: nnx.Module, x, deltas, kwargs):
    """Run a private copy of `model` (nnx.split/merge) whose kernel layers record their outputs."""
    graphdef, state = nnx.split(model)
    copy = nnx.merge(graphdef, state)
    record = Recorder(deltas)
    for path, mod in nnx_layers(copy):
        object.__setattr__(mod, "__class__", recording(type(mod), path, record))
    y = copy(x, **kwargs)
    return y, record.layers()

"""One functional view of a Flax model, linen or nnx: parameters as a pytree, the rest apart.

`Functional(model)` gives what the trainer needs, as pure functions of pytrees that jit and vmap:
the model's own parameters for a key (`default_variables`), a forward pass in training or
evaluation mode that returns the updated non-parameter state (batch statistics), and a forward
pass that records every kernel layer's input and output (for signal statistics during training).
Parameter paths are strings such as ``'Dense_0/kernel'`` (linen) or ``'layers/0/kernel'`` (nnx).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
from flax import nnx

from jwinit.rules import path_name

__all__ = ["Functional", "path_name", "leaf_paths"]


def leaf_paths(tree: Any) -> list[str]:
    """The path names of the leaves of `tree`, in `jax.tree.leaves` order."""
    return [path_name(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


class Functional:
    """A linen or nnx model as pure functions.

    Args:
      model: a ``flax.linen.Module`` or an ``nnx.Module`` (an instance: its current values are
        the defaults of the parameters no initializer replaces).
      example: one input batch (shape and dtype are what matters).
      train_kwargs / eval_kwargs: keyword arguments of the model's call in training and in
        evaluation (e.g. ``{'train': True}``); nnx models are also put in ``.train()`` /
        ``.eval()`` mode.
    """

    def __init__(self, model: Any, example: jax.Array, *,
                 train_kwargs: Mapping[str, Any] | None = None,
                 eval_kwargs: Mapping[str, Any] | None = None):
        self.train_kwargs = dict(train_kwargs or {})
        self.eval_kwargs = dict(eval_kwargs or {})
        if isinstance(model, nn.Module):
            self.kind = "linen"
            self.model = model
            self._example = example
            try:
                shapes = jax.eval_shape(self._linen_init, jax.random.key(0))
            except TypeError as e:
                if "keyword argument" not in str(e):
                    raise
                raise TypeError(f"`train_kwargs` {self.train_kwargs} do not fit the model's call: "
                                f"{e}") from None
            self.collections = tuple(c for c in shapes if c != "params")
            if "params" not in shapes:
                raise ValueError("`model` has no parameters ('params' collection is empty).")
            shapes = dict(shapes)
            self._abstract = (shapes.pop("params"), shapes)
        elif isinstance(model, nnx.Module):
            self.kind = "nnx"
            self.graphdef, self._params, self._rest = nnx.split(model, nnx.Param, ...)
            self.collections = ()
        else:
            raise TypeError(f"`model` must be a flax.linen.Module or an nnx.Module, got "
                            f"{type(model).__name__}.")

    # -- variables ------------------------------------------------------------------------------

    def default_variables(self, key: jax.Array) -> tuple[Any, Any]:
        """(params, rest): the model's own initialization for `key` (linen), or its current
        values (nnx: the same for every key)."""
        if self.kind == "linen":
            v = dict(self._linen_init(key))
            params = v.pop("params")
            return params, v
        return self._params, self._rest

    def _linen_init(self, key: jax.Array) -> Any:
        return self.model.init({"params": key, "dropout": key}, self._example,
                               **self.train_kwargs)

    def abstract_variables(self) -> tuple[Any, Any]:
        """(params, rest) as ``jax.ShapeDtypeStruct`` trees: `default_variables`' structure,
        traced once (when the model was wrapped)."""
        if self.kind == "linen":
            return self._abstract
        return jax.eval_shape(lambda: (self._params, self._rest))

    # -- forward passes -------------------------------------------------------------------------

    def apply(self, params: Any, rest: Any, x: jax.Array, *, train: bool,
              key: jax.Array | None = None) -> tuple[jax.Array, Any]:
        """(output, updated rest) in training (`train`) or evaluation mode."""
        kwargs = self.train_kwargs if train else self.eval_kwargs
        if self.kind == "linen":
            mutable = list(self.collections) if train and self.collections else False
            rngs = {"dropout": key} if key is not None else {}
            out = self.model.apply({"params": params, **rest}, x, rngs=rngs, mutable=mutable,
                                   **kwargs)
            if mutable:
                y, updates = out
                return y, {**rest, **updates}
            return out, rest
        m = nnx.merge(self.graphdef, params, rest, copy=True)  # fresh Variables: this trace
        (m.train if train else m.eval)()
        y = m(x, **kwargs)
        if not train:
            return y, rest
        _, _, new_rest = nnx.split(m, nnx.Param, ...)  # batch statistics, RNG counters
        return y, new_rest

    def recorded(self, params: Any, rest: Any, x: jax.Array,
                 deltas: Mapping[str, jax.Array] | None = None
                 ) -> tuple[jax.Array, list[tuple[str, jax.Array, jax.Array]]]:
        """Evaluation-mode output and, per kernel layer in call order, (path, input, output);
        each output is shifted by ``deltas[path]`` when given (for per-layer gradients)."""
        record: dict[str, tuple[jax.Array, jax.Array]] = {}
        order: list[str] = []

        def note(path: str, inp: Any, out: Any) -> Any:
            if not isinstance(out, jax.Array):
                return out
            if deltas is not None and path in deltas:
                out = out + deltas[path]
            if path not in record:
                order.append(path)
            record[path] = (inp, out)
            return out

        if self.kind == "linen":
            kernels = {p.rsplit("/", 1)[0] for p in leaf_paths(params) if p.endswith("kernel")}

            def interceptor(next_fun, args, kw, context):
                out = next_fun(*args, **kw)
                path = "/".join(context.module.path)
                if context.method_name != "__call__" or path not in kernels or not args:
                    return out
                return note(path, args[0], out)

            with nn.intercept_methods(interceptor):
                y = self.model.apply({"params": params, **rest}, x, **self.eval_kwargs)
        else:
            m = nnx.merge(self.graphdef, params, rest, copy=True)  # fresh Variables: this trace
            m.eval()
            for keypath, mod in nnx.iter_modules(m):
                if isinstance(getattr(mod, "kernel", None), nnx.Param):
                    path = "/".join(str(k) for k in keypath)
                    object.__setattr__(mod, "__class__", _recording(type(mod), path, note))
            y = m(x, **self.eval_kwargs)
        return y, [(p, *record[p]) for p in order]


def _recording(cls: type, path: str, note: Callable[[str, Any, Any], Any]) -> type:
    """A subclass of `cls` whose ``__call__`` reports (path, input, output) to `note`."""

    def __call__(self, *args, **kwargs):
        out = cls.__call__(self, *args, **kwargs)
        return note(path, args[0] if args else None, out)

    return type(cls.__name__, (cls,), {"__call__": __call__, "__module__": cls.__module__})


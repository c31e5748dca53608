"""The part of a linen model's NTK that comes from its dense layers, from their factors (private
to `jwinit.ntk`).

A dense layer applied at positions s of one example, y_s = h_s W + b, has the Jacobian
df_i/dW = sum_s h_s delta_{i,s}^T and df_i/db = sum_s delta_{i,s}, with delta_{i,s} = df_i/dy_s.
Its part of the NTK is therefore

    Theta_{ab,ij} += sum_{s,t} (h_{a,s} . h_{b,t} + [bias]) (delta_{a,i,s} . delta_{b,j,t}),

which needs S (d_in + k d_out) numbers per example instead of the k d_in d_out of the layer's
Jacobian (Novak, Sohl-Dickstein & Schoenholz 2022, "Fast Finite Width Neural Tangent Kernel",
the structured-derivatives rule for a matrix product). For an MLP of width 1024 that is a factor
of about 1000 in memory and in the contraction's flops.

A layer takes this path when it is a ``flax.linen.Dense`` (the class itself, not a subclass)
called once per example, its kernel is the (d_in, d_out) parameter at its path (a layer inside
``nn.scan`` has a stacked kernel and is left to the Jacobian), and the factors are cheaper than
the Jacobian: S^2 (d_in + k d_out) < k d_in d_out. Every other parameter is differentiated as
before. A model whose recording cannot be traced through (a Dense inside ``nn.remat`` or
``nn.vmap``) is left whole to the Jacobian.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from jwinit._programs import ProgramCache

Path = tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Layer:
    """A dense layer on the factored path: S positions per example, d_in -> d_out."""

    positions: int
    d_in: int
    d_out: int
    bias: bool
    shape: tuple[int, ...]  # the layer's output for one example, (1, ..., d_out)


def _tapped(model: nn.Module, layers: Any) -> Callable[..., tuple[jax.Array, dict]]:
    """(variables, x, deltas) -> (output, {path: [dense inputs]}, {path: calls}): the model
    with each Dense's output plus ``deltas[path]`` (when given) and its inputs recorded."""

    def run(variables: Mapping[str, Any], x: jax.Array, deltas: Mapping[Path, jax.Array],
            kwargs: Mapping[str, Any]) -> tuple[jax.Array, dict, dict]:
        inputs: dict[Path, list] = {}
        outputs: dict[Path, list] = {}

        def interceptor(next_fun, args, kw, context):
            module = context.module
            if type(module) is not nn.Dense or context.method_name != "__call__":
                return next_fun(*args, **kw)
            path = tuple(module.path)
            if layers is not None and path not in layers:
                return next_fun(*args, **kw)
            out = next_fun(*args, **kw)
            inputs.setdefault(path, []).append(args[0] if args else kw["inputs"])
            if path in deltas:
                out = out + deltas[path]
            outputs.setdefault(path, []).append(out)
            return out

        with nn.intercept_methods(interceptor):
            y = model.apply(variables, x, **kwargs)
        return y, inputs, outputs

    return run


def dense_layers(model: nn.Module, variables: Mapping[str, Any], example: jax.Array, k: int,
                 kwargs: Mapping[str, Any]) -> dict[Path, Layer]:
    """The model's dense layers that take the factored path (see the module's docstring),
    found from one abstract application to one example (shape (1, ...)). (A layer recorded
    inside a lifted transform such as ``nn.remat`` is found too; its factors program fails to
    trace, and the caller then leaves the model to the Jacobian.)"""
    run = _tapped(model, None)
    params = traverse_util.flatten_dict(dict(variables["params"]))

    def recorded(v: Any, x: jax.Array) -> tuple[dict, dict]:
        _, inputs, outputs = run(v, x, {}, kwargs)
        return inputs, outputs

    try:
        inputs, outputs = jax.eval_shape(recorded, variables, example)
    except jax.errors.UnexpectedTracerError:
        return {}
    found = {}
    for path, ins in inputs.items():
        outs = outputs[path]
        kernel = params.get((*path, "kernel"))
        if len(ins) != 1 or kernel is None or kernel.ndim != 2:
            continue
        d_in, d_out = kernel.shape
        h, y = ins[0].shape, outs[0].shape
        if (len(h) < 2 or h[0] != 1 or h[-1] != d_in or y[:-1] != h[:-1] or y[-1] != d_out):
            continue
        bias = params.get((*path, "bias"))
        if bias is not None and bias.shape != (d_out,):
            continue
        s = int(np.prod(h[1:-1]))
        if s * s * (d_in + k * d_out) >= k * d_in * d_out:
            continue  # the layer's Jacobian is the cheaper way
        found[path] = Layer(s, d_in, d_out, bias is not None, tuple(y))
    return found


def covered(params: Mapping[str, Any], layers: Mapping[Path, Layer]
            ) -> tuple[dict, dict]:
    """(the parameters of the factored layers, every other parameter), two nested dicts."""
    flat = traverse_util.flatten_dict(dict(params))
    names = {(*p, leaf) for p, layer in layers.items()
             for leaf in (("kernel", "bias") if layer.bias else ("kernel",))}
    mine = {p: v for p, v in flat.items() if p in names}
    rest = {p: v for p, v in flat.items() if p not in names}
    return traverse_util.unflatten_dict(mine), traverse_util.unflatten_dict(rest)


def merged(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict:
    flat = traverse_util.flatten_dict(dict(a))
    flat.update(traverse_util.flatten_dict(dict(b)))
    return traverse_util.unflatten_dict(flat)


def factors_program(model: nn.Module, rest_variables: Mapping[str, Any],
                    layers: Mapping[Path, Layer], kwargs: Mapping[str, Any], k: int
                    ) -> Callable[[Any, jax.Array], dict]:
    """params, x (b, ...) -> {path: (h (b, S, d_in), delta (b, k, S, d_out))}, example by
    example (vmapped, as the Jacobian path): k reverse passes per example. The compiled program
    is kept for the same model, layers, keyword arguments and outputs (linen modules compare by
    their fields), so the NTKs of many initializations of one model compile once."""
    program = _program(model, tuple(layers.items()), kwargs, k)

    def factors(params: Any, x: jax.Array) -> dict:
        return program(params, rest_variables, x)

    return factors


_PROGRAMS = ProgramCache(32)


def _program(model: nn.Module, layers: tuple[tuple[Path, Layer], ...],
             kwargs: Mapping[str, Any], k: int) -> Callable[..., Any]:
    """The factors of one example block, vmapped over its examples and compiled; kept per
    (model, layers, keyword arguments, outputs)."""
    key = (model, layers, tuple(sorted(kwargs.items())), k)
    return _PROGRAMS.get(key, lambda: _build_program(model, layers, kwargs, k))


def _build_program(model: nn.Module, layers: tuple[tuple[Path, Layer], ...],
                   kwargs: Mapping[str, Any], k: int) -> Callable[..., Any]:
    paths = dict(layers)
    run = _tapped(model, set(paths))

    def one(params: Any, rest_variables: Any, xi: jax.Array) -> dict:
        zeros = {p: jnp.zeros(layer.shape, jnp.result_type(float)) for p, layer in layers}

        def f(deltas: Mapping[Path, jax.Array]) -> tuple[jax.Array, dict]:
            y, inputs, _ = run({**rest_variables, "params": params}, xi[None], deltas, kwargs)
            return y.reshape(-1), {p: v[0] for p, v in inputs.items()}

        y, pullback, inputs = jax.vjp(f, zeros, has_aux=True)
        deltas = jax.vmap(pullback)(jnp.eye(k, dtype=y.dtype))[0]
        return {p: (inputs[p].reshape(layer.positions, layer.d_in),
                    deltas[p].reshape(k, layer.positions, layer.d_out))
                for p, layer in layers}

    return jax.jit(jax.vmap(one, in_axes=(None, None, 0)))


def contract(a: dict, c: dict, layers: Mapping[Path, Layer], trace: bool) -> jax.Array:
    """The factored layers' part of Theta between the blocks of factors `a` and `c`: (b1, b2)
    summed over the outputs (the caller divides by k) with `trace`, else (b1, b2, k, k)."""
    total = 0.0
    for p, layer in layers.items():
        h1, d1 = a[p]
        h2, d2 = c[p]
        if layer.positions == 1:
            g = h1[:, 0] @ h2[:, 0].T + float(layer.bias)
            if trace:
                total = total + g * (d1.reshape(d1.shape[0], -1) @ d2.reshape(d2.shape[0], -1).T)
            else:
                total = total + g[:, :, None, None] * jnp.einsum("aiq,bjq->abij", d1[:, :, 0],
                                                                 d2[:, :, 0])
            continue
        g = jnp.einsum("asp,btp->abst", h1, h2) + float(layer.bias)
        if trace:
            total = total + jnp.einsum("abst,aisq,bitq->ab", g, d1, d2)
        else:
            total = total + jnp.einsum("abst,aisq,bjtq->abij", g, d1, d2)
    return total


def bytes_per_example(layers: Mapping[Path, Layer], k: int, itemsize: int) -> int:
    return itemsize * sum(layer.positions * (layer.d_in + k * layer.d_out)
                          for layer in layers.values())

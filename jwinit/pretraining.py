"""Greedy layer-wise pre-training as an initialization (Bengio, Lamblin, Popovici & Larochelle
2007; Hinton, Osindero & Teh 2006 with RBMs): before supervised training, each hidden layer is
trained alone as an autoencoder of the codes of the layers below it.

:func:`greedy_pretrain` does this for a linen model whose hidden layers are kernel layers each
followed by the same activation (`jwinit.models.MLP`, ``nn.Sequential([Dense, act, ...])``): for
hidden layer l in call order, with a_l its input on the data batch (the codes of the already
pre-trained layers below), it minimizes the reconstruction error

    || phi(a_l W_l + b_l) D + d - a_l ||^2 / (batch * fan_in)

over (W_l, b_l) and a fresh linear decoder (D, d) (initialized with W_l^T, zero d) for `steps`
full-batch optimizer steps, then keeps (W_l, b_l) and drops the decoder. The readout (the last
kernel layer) is left as it is; fine-tuning is ordinary supervised training afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import traverse_util

from jwinit._checks import check_int, check_real
from jwinit._layers import check_batch, check_model, linen_outputs, run_model
from jwinit.activations import get_activation

__all__ = ["greedy_pretrain"]


def greedy_pretrain(model: nn.Module, x: jax.Array, variables: Mapping[str, Any], *,
                    activation: Any, steps: int = 200, learning_rate: float = 1e-2,
                    optimizer: Callable[..., Any] = optax.adam,
                    apply_kwargs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Pre-train every hidden kernel layer of a linen model as an autoencoder, bottom-up.

    Args:
      model: a ``flax.linen.Module`` whose hidden kernel layers are each followed by `activation`.
      x: the (unlabelled) data batch.
      variables: from ``model.init``; the result has the same structure.
      activation: the hidden layers' activation (a name or a callable).
      steps: full-batch optimizer steps per layer (>= 1).
      learning_rate: the optimizer's learning rate (> 0).
      optimizer: an optax factory taking the learning rate.
      apply_kwargs: extra keyword arguments for the model's forward pass.

    Returns:
      The variables with every hidden layer's kernel and bias pre-trained (the readout and every
      other leaf unchanged).

    Examples:
      >>> model = jwinit.models.MLP(depth=2, width=16, output_dim=3, activation='sigmoid')
      >>> x = jax.random.normal(jax.random.key(0), (128, 8))
      >>> v = jwinit.greedy_pretrain(model, x, model.init(jax.random.key(1), x),
      ...                            activation='sigmoid', steps=50)
      >>> bool(jnp.all(v['params']['Dense_2']['kernel'] ==
      ...               model.init(jax.random.key(1), x)['params']['Dense_2']['kernel']))
      True

    References:
      Bengio, Lamblin, Popovici & Larochelle 2007, "Greedy Layer-Wise Training of Deep Networks"
      (Sec. 2-3, autoencoder variant).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a flax.linen.Module, got {type(model).__name__} (nnx "
                        "models: pre-train the linen form, or apply the layers' pre-trained "
                        "weights by hand).")
    check_model(model, variables)
    x = check_batch(x)
    phi = get_activation(activation)
    steps = check_int(steps, "steps", minimum=1)
    lr = float(check_real(learning_rate, "learning_rate", low=0.0, low_open=True))
    if not callable(optimizer):
        raise TypeError(f"`optimizer` must be an optax factory such as optax.adam, got "
                        f"{optimizer!r}.")
    kwargs = dict(apply_kwargs or {})
    key = jax.random.key(0)
    variables = dict(variables)

    def inputs_of(v):
        """Each kernel layer's input on the batch, in call order."""
        seen: dict[tuple, jax.Array] = {}
        order: list[tuple] = []

        def keep(next_fun, args, kw, context):
            path = tuple(context.module.path)
            if context.method_name == "__call__" and "kernel" in context.module.variables.get(
                    "params", {}) and path not in seen:
                seen[path] = args[0]
                order.append(path)
            return next_fun(*args, **kw)

        with nn.intercept_methods(keep):
            linen_outputs(model, v, x, None, kwargs, key)
        return [(p, seen[p]) for p in order]

    layers = run_model(lambda: inputs_of(variables), x, "greedy_pretrain")
    if len(layers) < 2:
        raise ValueError("`model` has no hidden kernel layer to pre-train (only a readout).")
    for i in range(len(layers) - 1):  # the readout stays
        path, a = inputs_of(variables)[i]
        a = a.reshape(a.shape[0], -1).astype(jnp.float32)
        params = traverse_util.flatten_dict(dict(variables["params"]))
        w, b = params[(*path, "kernel")], params.get((*path, "bias"))
        if w.ndim != 2:
            raise ValueError(f"layer {'/'.join(map(str, path))}: greedy_pretrain needs Dense "
                             f"layers (2-D kernels), got a kernel of shape {w.shape}.")
        enc = {"w": w.astype(jnp.float32),
               "b": jnp.zeros(w.shape[1], jnp.float32) if b is None else b.astype(jnp.float32),
               "dw": w.astype(jnp.float32).T, "db": jnp.zeros(w.shape[0], jnp.float32)}
        tx = optimizer(lr)

        def loss(p, a=a, has_bias=b is not None):
            bias = p["b"] if has_bias else jnp.zeros_like(p["b"])
            code = phi(a @ p["w"] + bias[None, :])
            recon = code @ p["dw"] + p["db"][None, :]
            return jnp.mean(jnp.square(recon - a))

        def step(carry, _, tx=tx, loss=loss):
            p, state = carry
            g = jax.grad(loss)(p)
            updates, state = tx.update(g, state, p)
            return (optax.apply_updates(p, updates), state), None

        with jax.numpy_dtype_promotion("standard"):
            (enc, _), _ = jax.jit(lambda c, step=step: jax.lax.scan(step, c, None, length=steps)
                                  )((enc, tx.init(enc)))
        if not all(bool(jnp.all(jnp.isfinite(v))) for v in enc.values()):
            raise ValueError(f"layer {'/'.join(map(str, path))}: its autoencoder diverged (non-"
                             f"finite weights after {steps} steps at `learning_rate` {lr:g}); "
                             "lower `learning_rate`.")
        params[(*path, "kernel")] = enc["w"].astype(w.dtype)
        if b is not None:
            params[(*path, "bias")] = enc["b"].astype(b.dtype)
        variables = {**variables, "params": traverse_util.unflatten_dict(params)}
    return variables

"""GradInit (Zhu, Ni, Xu, Kong, Huang & Goldstein 2021): learn one scale per parameter tensor so
that the first optimizer step makes the most progress while the gradient stays bounded.

Every parameter tensor i of an initialized model is multiplied by a learned scalar alpha_i
(theta = alpha * theta_0, all alpha_i = 1 at the start). With g = grad L(S; theta) on a batch S,
the first step of the optimizer moves theta to theta - eta A[g] (A[g] = g for SGD, sign(g) for
Adam's first step), and GradInit solves (Sec. 3, Algorithm 1)

    min_alpha  L(S'; theta - eta A[g])   subject to   ||g||_p <= gamma,  alpha_i >= alpha_min

on a second batch S' (p = 2 for SGD, p = 1 for Adam: the first-order decrease of the loss is
eta ||g||_2^2 or eta ||g||_1). Each iteration takes a step on alpha, with Adam at `scale_lr`, on
the constraint ``||g||_p`` when it is violated and on the look-ahead loss otherwise, then clips
alpha at `min_scale`. Both objectives are differentiated through g (Hessian-vector products).
On a residual network without normalization this shrinks the residual branches, as Fixup does
by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jwinit._checks import check_choice, check_int, check_real

__all__ = ["gradinit", "GradInitResult"]

_OPTIMIZERS = ("sgd", "adam")


class GradInitResult(NamedTuple):
    """What :func:`gradinit` returns.

    Attributes:
      variables: the model's variables with every parameter tensor scaled by its alpha.
      scales: alpha, a pytree like ``variables['params']`` of floats.
      constraint_steps: iterations in which the gradient norm exceeded gamma (and was reduced).
      lookahead_loss: L(S'; theta - eta A[g]) at the first and at the last iteration.
    """

    variables: dict[str, Any]
    scales: Any
    constraint_steps: int
    lookahead_loss: tuple[float, float]


def _loss_of(y: jax.Array) -> Callable[[jax.Array, jax.Array], jax.Array]:
    if jnp.issubdtype(y.dtype, jnp.integer):
        return lambda out, t: jnp.mean(optax.softmax_cross_entropy_with_integer_labels(
            out.astype(jnp.float32), t))
    return lambda out, t: jnp.mean(jnp.square(out.astype(jnp.float32).reshape(t.shape) - t))


def gradinit(model: nn.Module, x: Any, y: Any, variables: Mapping[str, Any], *,
             learning_rate: float, gamma: float = 1.0, optimizer: str = "adam",
             steps: int = 100, batch_size: int = 64, scale_lr: float = 0.01,
             min_scale: float = 0.01, key: Any = 0,
             loss: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
             apply_kwargs: Mapping[str, Any] | None = None) -> GradInitResult:
    """Learn a scale per parameter tensor of an initialized linen model (GradInit).

    Args:
      model: a ``flax.linen.Module``.
      x, y: training inputs and targets (integer labels: softmax cross-entropy; floats: mean
        squared error), from which the batches S and S' are drawn.
      variables: from ``model.init`` (or any initialization: GradInit rescales it). Other
        collections (batch statistics) are used as they are and returned unchanged.
      learning_rate: eta, the learning rate of the training that follows (> 0).
      gamma: the bound on the gradient norm (> 0).
      optimizer: 'adam' (A[g] = sign(g), p = 1) or 'sgd' (A[g] = g, p = 2): the optimizer of
        the training that follows.
      steps: GradInit iterations (>= 1); batch_size: examples in S and in S' (>= 2).
      scale_lr: Adam's learning rate on the scales (tau, > 0); min_scale: alpha_min (>= 0).
      key: an int or a jax key for the batches.
      loss: ``loss(output, targets)``; the default follows the dtype of `y`.
      apply_kwargs: extra keyword arguments of the forward pass (e.g. ``{'train': True}``).

    Returns:
      A `GradInitResult` (variables, scales, constraint_steps, lookahead_loss).

    Examples:
      >>> model = jwinit.models.ResidualMLP(blocks=8, width=32, output_dim=3,
      ...                                   kernel_init=jwinit.he_normal())
      >>> x = jax.random.normal(jax.random.key(0), (256, 8))
      >>> y = jnp.arange(256) % 3
      >>> r = jwinit.gradinit(model, x, y, model.init(jax.random.key(1), x),
      ...                     learning_rate=1e-3, steps=20)
      >>> bool(r.lookahead_loss[1] < r.lookahead_loss[0])
      True

    References:
      Zhu et al. 2021, "GradInit: Learning to Initialize Neural Networks for Stable and
      Efficient Training" (NeurIPS 2021), Sec. 3 and Algorithm 1.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a flax.linen.Module, got {type(model).__name__}.")
    if not isinstance(variables, Mapping) or "params" not in variables:
        raise ValueError("`variables` must be the dict of `model.init(...)` with a 'params' "
                         f"collection, got {type(variables).__name__}.")
    eta = check_real(learning_rate, "learning_rate", low=0.0, low_open=True)
    gamma = check_real(gamma, "gamma", low=0.0, low_open=True)
    check_choice(optimizer, "optimizer", _OPTIMIZERS)
    steps = check_int(steps, "steps", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=2)
    tau = check_real(scale_lr, "scale_lr", low=0.0, low_open=True)
    floor = check_real(min_scale, "min_scale", low=0.0)
    x, y = jnp.asarray(x), jnp.asarray(y)
    if x.ndim < 1 or y.ndim < 1 or x.shape[0] != y.shape[0] or x.shape[0] < batch_size:
        raise ValueError(f"`x` and `y` must hold the same number of examples, at least "
                         f"`batch_size` ({batch_size}); got shapes {x.shape} and {y.shape}.")
    if jnp.issubdtype(x.dtype, jnp.inexact) and not bool(jnp.all(jnp.isfinite(x))):
        raise ValueError("`x` holds NaN or inf values.")
    loss = _loss_of(y) if loss is None else loss
    kwargs = dict(apply_kwargs or {})
    rest = {k: v for k, v in variables.items() if k != "params"}
    mutable = list(rest) or False
    theta0 = variables["params"]
    p_norm = 1 if optimizer == "adam" else 2

    def batch_loss(params, xb, yb):
        out = model.apply({"params": params, **rest}, xb, mutable=mutable, **kwargs)
        return loss(out[0] if mutable else out, yb)

    def objective(alpha, xs, ys, xl, yl):
        theta = jax.tree.map(lambda a, t: a.astype(t.dtype) * t, alpha, theta0)
        g = jax.grad(batch_loss)(theta, xs, ys)
        leaves = jax.tree.leaves(g)
        if p_norm == 1:
            norm = sum(jnp.sum(jnp.abs(v)) for v in leaves)
        else:
            norm = jnp.sqrt(sum(jnp.sum(jnp.square(v)) for v in leaves))
        step = jax.tree.map(jnp.sign, g) if optimizer == "adam" else g
        ahead = jax.tree.map(lambda t, s: t - eta * s, theta, step)
        look = batch_loss(ahead, xl, yl)
        violated = norm > gamma
        return jnp.where(violated, norm, look), (violated, look)

    opt = optax.adam(tau)

    @jax.jit
    def iteration(alpha, state, k):
        ka, kb = jax.random.split(k)
        ia = jax.random.choice(ka, x.shape[0], (batch_size,), replace=False)
        ib = jax.random.choice(kb, x.shape[0], (batch_size,), replace=False)
        grads, (violated, look) = jax.grad(objective, has_aux=True)(
            alpha, x[ia], y[ia], x[ib], y[ib])
        updates, state = opt.update(grads, state, alpha)
        alpha = jax.tree.map(lambda a: jnp.maximum(a, floor), optax.apply_updates(alpha, updates))
        return alpha, state, violated, look

    alpha = jax.tree.map(lambda t: jnp.ones((), jnp.float32), theta0)
    state = opt.init(alpha)
    k = jax.random.key(key) if isinstance(key, int | np.integer) else key
    violated_total, looks = 0, []
    for i in range(steps):
        alpha, state, violated, look = iteration(alpha, state, jax.random.fold_in(k, i))
        violated_total += int(violated)
        looks.append(float(look))
    params = jax.tree.map(lambda a, t: (a.astype(t.dtype) * t), alpha, theta0)
    return GradInitResult({**variables, "params": params},
                          jax.tree.map(float, alpha), violated_total, (looks[0], looks[-1]))

"""GradInit (Zhu, Ni, Xu, Kong, Huang & Goldstein 2021): learn one scale per parameter tensor so
that the first optimizer step makes the most progress while the gradient stays bounded.

Every parameter tensor i of an initialized model is multiplied by a learned scalar alpha_i
(theta = alpha * theta_0, all alpha_i = 1 at the start). With g = grad L(S; theta) on a batch S,
the first step of the optimizer moves theta to theta - eta A[g] (A[g] = g for SGD, sign(g) for
Adam's first step), and GradInit solves (Sec. 3, Algorithm 1)

    min_alpha  L(S'; theta - eta A[g])   subject to   ||g||_p <= gamma,  alpha_i >= alpha_min

on a second batch S' (p = 2 for SGD, p = 1 for Adam: the first-order decrease of the loss is
eta ||g||_2^2 or eta ||g||_1). Each iteration takes a step on alpha, with Adam at `scale_lr`, on
the constraint ``||g||_p`` (as log ||g||_p, the same direction for Adam, without overflow) when
it is violated and on the look-ahead loss otherwise, then clips alpha at `min_scale`; an
iteration whose gradient is not finite is skipped. Both objectives are differentiated through g
(Hessian-vector products).
On a residual network without normalization this shrinks the residual branches, as Fixup does
by hand.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jwinit._checks import check_choice, check_int, check_real, typed_key
from jwinit._layers import check_batch
from jwinit.train import loss_function

__all__ = ["gradinit", "GradInitResult"]

_OPTIMIZERS = ("sgd", "adam")


class GradInitResult(NamedTuple):
    """What :func:`gradinit` returns.

    Attributes:
      variables: the model's variables with every parameter tensor scaled by its alpha.
      scales: alpha, a pytree like ``variables['params']`` of floats.
      violated: (steps,) bool, whether the gradient norm exceeded gamma at each iteration (the
        iteration then reduced it).
      objective: (steps,) the value minimized at each iteration: log ||g||_p where violated,
        else the look-ahead loss L(S'; theta - eta A[g]).
    """

    variables: dict[str, Any]
    scales: Any
    violated: np.ndarray
    objective: np.ndarray


@functools.lru_cache(maxsize=16)
def _iteration(model: nn.Module, loss: Callable[..., Any], eta: float, gamma: float,
               optimizer: str, tau: float, floor: float, batch_size: int,
               kwargs: tuple[tuple[str, Any], ...], collections: tuple[str, ...]) -> Any:
    """One GradInit iteration, compiled once per (model, settings) and reused across calls
    (seeds): a pure function of (alpha, Adam state, key, theta_0, other collections, x, y)."""
    mutable = list(collections) or False
    p_norm = 1 if optimizer == "adam" else 2
    opt = optax.adam(tau)

    def batch_loss(params, rest, xb, yb):
        out = model.apply({"params": params, **rest}, xb, mutable=mutable, **dict(kwargs))
        return loss(out[0] if mutable else out, yb)

    def objective(alpha, theta0, rest, xs, ys, xl, yl):
        theta = jax.tree.map(lambda a, t: a.astype(t.dtype) * t, alpha, theta0)
        g = jax.grad(batch_loss)(theta, rest, xs, ys)
        leaves = jax.tree.leaves(g)
        if p_norm == 1:
            norm = sum(jnp.sum(jnp.abs(v)) for v in leaves)
        else:
            norm = jnp.sqrt(sum(jnp.sum(jnp.square(v)) for v in leaves))
        step = jax.tree.map(jnp.sign, g) if optimizer == "adam" else g

        def lookahead():
            ahead = jax.tree.map(lambda t, s: t - eta * s, theta, step)
            return batch_loss(ahead, rest, xl, yl)

        violated = ~(norm <= gamma)  # a non-finite norm counts as violated
        # lax.cond differentiates only the branch taken (jnp.where would propagate the NaN of a
        # look-ahead from exploding weights); the constraint's objective is log ||g||_p: the
        # same direction for Adam as ||g||_p, without overflow in its second derivatives when
        # the initial gradient is huge (an unnormalized deep residual network: ||g|| ~ 1e11)
        return jax.lax.cond(violated, lambda: jnp.log(norm), lookahead), violated

    @jax.jit
    def iteration(alpha, state, k, theta0, rest, x, y):
        ka, kb = jax.random.split(k)
        ia = jax.random.choice(ka, x.shape[0], (batch_size,), replace=False)
        ib = jax.random.choice(kb, x.shape[0], (batch_size,), replace=False)
        (value, violated), grads = jax.value_and_grad(objective, has_aux=True)(
            alpha, theta0, rest, x[ia], y[ia], x[ib], y[ib])
        finite = jnp.all(jnp.asarray([jnp.all(jnp.isfinite(v)) for v in jax.tree.leaves(grads)]))
        with jax.numpy_dtype_promotion("standard"):  # optax mixes Python floats and int counts
            updates, new_state = opt.update(grads, state, alpha)
        new_alpha = jax.tree.map(lambda a: jnp.maximum(a, floor),
                                 optax.apply_updates(alpha, updates))
        # an iteration whose gradient is not finite is skipped (alpha and Adam's state kept)
        keep = lambda new, old: jax.tree.map(  # noqa: E731
            lambda n, o: jnp.where(finite, n, o), new, old)
        return keep(new_alpha, alpha), keep(new_state, state), violated, value

    return iteration, opt


def _check_targets(model: nn.Module, variables: Mapping[str, Any], x: jax.Array, y: jax.Array,
                   task: str, apply_kwargs: Mapping[str, Any] | None) -> None:
    """The default loss needs labels in [0, outputs) (classification) or targets of the output's
    shape (regression)."""
    try:
        mutable = [c for c in variables if c != "params"] or False
        out = jax.eval_shape(lambda v, xb: model.apply(v, xb, **dict(apply_kwargs or {}),
                                                       rngs={"dropout": jax.random.key(0)},
                                                       mutable=mutable),
                             variables, x)
        out = out[0] if mutable else out
    except Exception as e:  # noqa: BLE001 - the model cannot take these variables or inputs
        raise ValueError(f"`variables`/`x`: the model cannot be applied to inputs of shape "
                         f"{x.shape[1:]} with these variables: {type(e).__name__}: {e}") from None
    shape = tuple(getattr(out, "shape", ()))
    if task == "classification":
        classes = shape[-1] if shape else 0
        low, high = int(jnp.min(y)), int(jnp.max(y))
        if y.ndim != 1 or low < 0 or high >= classes:
            raise ValueError(f"`y`: integer labels must be a vector in [0, {classes}) for a model "
                             f"with {classes} outputs (softmax cross-entropy), got shape "
                             f"{y.shape} with values in [{low}, {high}].")
    elif y.shape[1:] != shape[1:] and not (shape[1:] == (1,) and y.ndim == 1):
        raise ValueError(f"`y`: float targets (mean squared error) must have the model output's "
                         f"shape per example, {shape[1:]}, got {y.shape[1:]}; for "
                         f"classification pass integer labels.")


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
      A `GradInitResult` (variables, scales, violated, objective).

    Examples:
      >>> model = jwinit.models.ResidualMLP(blocks=8, width=32, output_dim=3,
      ...                                   kernel_init=jwinit.he_normal())
      >>> x = jax.random.normal(jax.random.key(0), (256, 8))
      >>> y = jnp.arange(256) % 3
      >>> r = jwinit.gradinit(model, x, y, model.init(jax.random.key(1), x),
      ...                     learning_rate=0.1, optimizer='sgd', gamma=1.0, steps=20,
      ...                     scale_lr=0.05)
      >>> bool(r.violated[0]), bool(r.violated[-1])  # the gradient norm is brought under gamma
      (True, False)

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
    key = typed_key(key, "gradinit")
    x, y = check_batch(x), jnp.asarray(y)
    if y.ndim < 1 or x.shape[0] != y.shape[0] or x.shape[0] < batch_size:
        raise ValueError(f"`x` and `y` must hold the same number of examples, at least "
                         f"`batch_size` ({batch_size}); got shapes {x.shape} and {y.shape}.")
    if loss is None:
        task = "classification" if jnp.issubdtype(y.dtype, jnp.integer) else "regression"
        _check_targets(model, variables, x[:batch_size], y, task, apply_kwargs)
        loss = loss_function(task)
    rest = {k: v for k, v in variables.items() if k != "params"}
    theta0 = variables["params"]
    kwargs = tuple(sorted((apply_kwargs or {}).items()))
    iteration, opt = _iteration(model, loss, float(eta), float(gamma), optimizer, float(tau),
                                float(floor), batch_size, kwargs, tuple(rest))
    alpha = jax.tree.map(lambda t: jnp.ones((), jnp.float32), theta0)
    state = opt.init(alpha)
    k = key
    violated, values = [], []
    for i in range(steps):  # dispatched back to back; read from the device once at the end
        alpha, state, v, value = iteration(alpha, state, jax.random.fold_in(k, i), theta0, rest,
                                           x, y)
        violated.append(v)
        values.append(value)
    params = jax.tree.map(lambda a, t: (a.astype(t.dtype) * t), alpha, theta0)
    violated, values = jax.device_get((jnp.stack(violated), jnp.stack(values)))
    return GradInitResult({**variables, "params": params}, jax.tree.map(float, alpha),
                          np.asarray(violated, bool), np.asarray(values, np.float64))

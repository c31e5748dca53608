"""Data-dependent initialization and signal reports for arbitrary Flax models (linen and nnx).

* :func:`lsuv` -- Layer-Sequential Unit-Variance initialization (Mishkin & Matas 2016, Alg. 1):
  optionally re-sample every kernel (e.g. with ``jwinit.orthogonal()``), then, layer by layer in
  the order the model calls them, rescale the kernel W_l <- W_l * sqrt(target / Var(B_l)) until the
  variance of the layer's output B_l on a data batch is within `tol` of `target`.
* :func:`weight_norm_init` -- the data-dependent initialization of weight normalization (Salimans &
  Kingma 2016, Sec. 3) on plain Dense/Conv layers: layer by layer in call order, every output unit
  is rescaled and shifted to zero mean and unit variance on a data batch.
* :func:`signal_report` -- per-layer statistics of a real model at init: the output mean, variance
  and second moment of every kernel-carrying layer (Dense, Conv, DenseGeneral, Einsum, ...) and the
  mean square of the gradient of ``<g, output>`` with respect to that layer's output, for a Gaussian
  cotangent g (the quantity `jwinit.probe` measures on MLPs, here for any architecture).

A *layer* is any submodule with a ``kernel`` parameter; layers are listed in the order the model
first calls them (not in name order: ``Dense_10`` comes after ``Dense_9``). Outputs are observed
without changing the model: linen through ``nn.intercept_methods``; nnx on a private copy made
with ``nnx.split``/``nnx.merge`` for each pass, whose kernel layers record their outputs (the
user's model object is never modified by a report). A layer called several times (weight sharing)
reports its last call.

Models with BatchNorm, Dropout or LayerNorm work: linen collections other than 'params' (e.g.
'batch_stats') are passed as mutable, so batch statistics are used as in training when
``apply_kwargs`` says so (e.g. ``{'train': True}``), and the updated statistics are discarded; a
'dropout' rng is supplied from `key` unless ``apply_kwargs`` holds ``rngs``. nnx models run as
they are set (``model.train()``/``model.eval()``); their state is left as it was.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx, traverse_util

from jwinit._checks import check_callable_init, check_int, check_real, typed_key
from jwinit._display import treescope_repr
from jwinit._layers import (
    check_batch,
    check_model,
    concrete,
    linen_kernel,
    linen_kernel_paths,
    linen_outputs,
    nnx_layers,
    nnx_outputs,
    run_model,
    scalar,
    set_linen_kernel,
)

__all__ = ["lsuv", "weight_norm_init", "signal_report", "SignalReport", "LayerSignal"]

Path = tuple[Any, ...]


# --------------------------------------------------------------------------------------------
# LSUV


def lsuv(
    model: Any,
    x: jax.Array,
    variables: Mapping[str, Any] | None = None,
    *,
    target: float = 1.0,
    tol: float = 0.05,
    max_iters: int = 10,
    reinit: Callable[..., jax.Array] | None = None,
    key: jax.Array | None = None,
    apply_kwargs: Mapping[str, Any] | None = None,
) -> Any:
    """Layer-Sequential Unit-Variance initialization (Mishkin & Matas 2016).

    For each kernel layer l in the order the model calls them: repeat
    ``W_l <- W_l * sqrt(target / Var(B_l))``, where B_l is the layer's output on the batch `x`,
    until ``|Var(B_l) - target| <= tol * target`` or `max_iters` rescalings. Biases are left as they
    are (the paper's are zero). With BatchNorm in training mode (``apply_kwargs={'train': True}``)
    the layer outputs are those of training; a layer followed by a normalization is still rescaled
    to the target, as in the paper.

    Args:
      model: a ``flax.linen.Module`` (then pass `variables`) or a ``flax.nnx.Module`` (updated in
        place and returned).
      x: a data batch (finite, at least 2 examples).
      variables: linen only, the variables from ``model.init``.
      target: the output variance to reach (1.0 in the paper).
      tol: relative tolerance on the variance, in (0, 1).
      max_iters: the most rescalings per layer.
      reinit: an initializer to re-sample every kernel with first (the paper uses orthogonal:
        ``jwinit.orthogonal()``); needs `key`.
      key: PRNG key for `reinit` (and the 'dropout' rng of linen models).
      apply_kwargs: extra keyword arguments for the forward pass (e.g. ``train=False``).

    Returns:
      The new linen variables, or the nnx model.

    Raises:
      ValueError: a bad argument, a batch or model output with NaN/inf, or a layer whose output
        variance is not finite or exactly zero (the model cannot be rescaled from there; the
        message names the layer).

    Examples:
      >>> model = flax.linen.Sequential([flax.linen.Dense(64), flax.linen.tanh,
      ...                                flax.linen.Dense(64)])
      >>> x = jax.random.normal(jax.random.key(0), (128, 32))
      >>> v = jwinit.lsuv(model, x, model.init(jax.random.key(1), x), tol=0.01)
      >>> [round(s.variance, 1) for s in jwinit.signal_report(model, x, v).layers]
      [1.0, 1.0]

    References:
      Mishkin & Matas 2016, "All you need is a good init", Algorithm 1.
    """
    kind = check_model(model, variables)
    x = check_batch(x)
    target = float(check_real(target, "target", low=0.0, low_open=True))
    tol = float(check_real(tol, "tol", low=0.0, high=1.0, low_open=True, high_open=True))
    max_iters = check_int(max_iters, "max_iters", minimum=1)
    if reinit is not None:
        check_callable_init(reinit, "reinit")
        if key is None:
            raise ValueError("`reinit` needs a `key` to sample the new kernels with.")
    key = jax.random.key(0) if key is None else typed_key(key, "lsuv")
    kwargs = dict(apply_kwargs or {})
    if kind == "linen":
        return _lsuv_linen(model, dict(variables), x, target, tol, max_iters, reinit, key, kwargs)
    return _lsuv_nnx(model, x, target, tol, max_iters, reinit, key, kwargs)


def _rescale_factor(var: float, target: float, tol: float, path: Path) -> float | None:
    """sqrt(target / var), or None when `var` is within tolerance."""
    if not math.isfinite(var):
        raise ValueError(f"layer {'/'.join(map(str, path))}: its output variance is {var} on the "
                         "batch; LSUV cannot rescale a non-finite output.")
    if var == 0:
        raise ValueError(f"layer {'/'.join(map(str, path))}: its output is exactly zero on the "
                         "batch (variance 0), so no rescaling of its kernel can reach variance "
                         f"{target:g}: its kernel is zero (e.g. a 'zeros' initializer) or its "
                         "input is; initialize it randomly (LSUV rescales an orthogonal or "
                         "Gaussian start) or pass reinit=jwinit.orthogonal() with a key.")
    if abs(var - target) <= tol * target:
        return None
    return math.sqrt(target / var)


def _lsuv_linen(module, variables, x, target, tol, max_iters, reinit, key, kwargs):
    paths = linen_kernel_paths(variables)
    if reinit is not None:
        for i, p in enumerate(paths):
            k = linen_kernel(variables, p)
            variables = set_linen_kernel(
                variables, p, reinit(jax.random.fold_in(key, i), k.shape, k.dtype))

    @jax.jit
    def variances(v):
        y, outs = linen_outputs(module, v, x, None, kwargs, key)
        return y, [jnp.var(o.astype(jnp.float32)) for _, o in outs]

    order: list[Path] = []

    def call_order(v):
        order[:] = [p for p, _ in linen_outputs(module, v, x, None, kwargs, key)[1]]
        return jnp.zeros(())

    run_model(lambda: jax.eval_shape(call_order, variables), x, "lsuv")
    _check_output(run_model(lambda: variances(variables)[0], x, "lsuv"))
    for i, p in enumerate(order):
        for _ in range(max_iters):
            factor = _rescale_factor(float(variances(variables)[1][i]), target, tol, p)
            if factor is None:
                break
            k = linen_kernel(variables, p)
            variables = set_linen_kernel(
                variables, p, (k.astype(jnp.float32) * factor).astype(k.dtype))
    return variables


def _lsuv_nnx(model, x, target, tol, max_iters, reinit, key, kwargs):
    layers = nnx_layers(model)
    if reinit is not None:
        for i, (_, mod) in enumerate(layers):
            k = mod.kernel[...]
            mod.kernel[...] = reinit(jax.random.fold_in(key, i), k.shape, k.dtype)
    y, outs = run_model(lambda: nnx_outputs(model, x, None, kwargs), x, "lsuv")
    _check_output(y)
    by_path = dict(layers)
    for i, (p, _) in enumerate(outs):
        mod = by_path[p]
        for _ in range(max_iters):
            _, outs_now = nnx_outputs(model, x, None, kwargs)
            factor = _rescale_factor(float(jnp.var(outs_now[i][1].astype(jnp.float32))), target,
                                     tol, p)
            if factor is None:
                break
            k = mod.kernel[...]
            mod.kernel[...] = (k.astype(jnp.float32) * factor).astype(k.dtype)
    return model


def weight_norm_init(
    model: Any,
    x: jax.Array,
    variables: Mapping[str, Any] | None = None,
    *,
    key: jax.Array | None = None,
    apply_kwargs: Mapping[str, Any] | None = None,
) -> Any:
    """Data-dependent initialization of weight normalization (Salimans & Kingma 2016, Sec. 3).

    Weight normalization writes a unit's pre-activation as ``t = g (v . x) / ||v|| + b`` and
    initializes, on a data batch, ``g = 1 / sigma[t0]`` and ``b = -mu[t0] / sigma[t0]``, where t0
    is the pre-activation with g = 1, b = 0: every unit then starts with zero mean and unit
    variance on the batch. On a plain layer (``y = x W + b``) the same function is reached by
    ``W[..., j] <- W[..., j] / sigma_j`` and ``b_j <- (b_j - mu_j) / sigma_j``, with mu_j and
    sigma_j the mean and standard deviation of output unit j over the batch (and every
    spatial position of a Conv). This function applies that to every kernel layer in the order
    the model calls them (each layer sees the already initialized layers before it), so that
    afterwards every layer's output units have mean 0 and variance 1 on `x`.

    Args:
      model: a ``flax.linen.Module`` (then pass `variables`) or a ``flax.nnx.Module`` (updated in
        place and returned). Layers must keep their output units on the kernel's last axis
        (Dense, Conv; not DenseGeneral with several output axes).
      x: a data batch (finite, at least 2 examples).
      variables: linen only, the variables from ``model.init``.
      key: the 'dropout' rng of linen models (default ``jax.random.key(0)``).
      apply_kwargs: extra keyword arguments for the forward pass.

    Returns:
      The new linen variables, or the nnx model.

    Examples:
      >>> model = flax.linen.Sequential([flax.linen.Dense(32), flax.linen.relu,
      ...                                flax.linen.Dense(8)])
      >>> x = 3.0 + jax.random.normal(jax.random.key(0), (256, 16))
      >>> v = jwinit.weight_norm_init(model, x, model.init(jax.random.key(1), x))
      >>> y = model.apply(v, x)
      >>> round(float(abs(y.mean(axis=0)).max()), 4), round(float(y.var(axis=0).mean()), 4)
      (0.0, 1.0)

    References:
      Salimans & Kingma 2016, "Weight Normalization: A Simple Reparameterization to Accelerate
      Training of Deep Neural Networks", Sec. 3.
    """
    kind = check_model(model, variables)
    x = check_batch(x)
    key = jax.random.key(0) if key is None else typed_key(key, "weight_norm_init")
    kwargs = dict(apply_kwargs or {})
    if kind == "linen":
        variables = dict(variables)

        @jax.jit
        def unit_stats(v):
            y, outs = linen_outputs(model, v, x, None, kwargs, key)
            return y, [_unit_moments(o) for _, o in outs]

        order: list[Path] = []

        def call_order(v):
            order[:] = [p for p, _ in linen_outputs(model, v, x, None, kwargs, key)[1]]
            return jnp.zeros(())

        run_model(lambda: jax.eval_shape(call_order, variables), x, "weight_norm_init")
        _check_output(run_model(lambda: unit_stats(variables)[0], x, "weight_norm_init"))
        for i, p in enumerate(order):
            mu, sigma = unit_stats(variables)[1][i]
            boxed = traverse_util.flatten_dict(dict(variables["params"]))
            params = {k: v.unbox() if isinstance(v, nn.meta.AxisMetadata) else v
                      for k, v in boxed.items()}
            params = _normalized_units(params, p, mu, sigma)
            params = {k: boxed[k].replace_boxed(v) if isinstance(boxed[k], nn.meta.AxisMetadata)
                      else v for k, v in params.items()}
            variables = {**variables, "params": traverse_util.unflatten_dict(params)}
        return variables
    y, outs = run_model(lambda: nnx_outputs(model, x, None, kwargs), x, "weight_norm_init")
    _check_output(y)
    by_path = dict(nnx_layers(model))
    for i, (p, _) in enumerate(outs):
        mu, sigma = _unit_moments(nnx_outputs(model, x, None, kwargs)[1][i][1])
        mod = by_path[p]
        flat = {(*p, "kernel"): mod.kernel[...]}
        if isinstance(getattr(mod, "bias", None), nnx.Param):
            flat[(*p, "bias")] = mod.bias[...]
        flat = _normalized_units(flat, p, mu, sigma)
        mod.kernel[...] = flat[(*p, "kernel")]
        if (*p, "bias") in flat:
            mod.bias[...] = flat[(*p, "bias")]
    return model


def _unit_moments(out: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean and standard deviation of each output unit (last axis) over every other axis."""
    o = out.astype(jnp.float32).reshape(-1, out.shape[-1])
    return o.mean(axis=0), o.std(axis=0)


def _normalized_units(flat: dict[Path, Any], path: Path, mu: jax.Array, sigma: jax.Array
                      ) -> dict[Path, Any]:
    """`flat` (parameters by path tuple) with layer `path`'s units shifted and scaled."""
    name = "/".join(map(str, path))
    kernel = flat[(*path, "kernel")]
    if kernel.shape[-1] != mu.shape[0]:
        raise ValueError(f"layer {name}: its output has {mu.shape[0]} units on the last axis but "
                         f"its kernel {kernel.shape} does not end with them; weight_norm_init "
                         "needs Dense or Conv layers.")
    sigma_np = np.asarray(sigma)
    if not np.all(np.isfinite(sigma_np)) or np.any(sigma_np == 0):
        dead = int(np.sum(~(sigma_np > 0)))
        raise ValueError(f"layer {name}: {dead} output unit(s) have zero or non-finite variance "
                         "on the batch (dead or overflowing); they cannot be normalized.")
    out = dict(flat)
    per_unit = sigma.reshape((1,) * (kernel.ndim - 1) + (-1,))
    out[(*path, "kernel")] = (kernel.astype(jnp.float32) / per_unit).astype(kernel.dtype)
    bias = flat.get((*path, "bias"))
    if bias is not None:
        out[(*path, "bias")] = ((bias.astype(jnp.float32) - mu) / sigma).astype(bias.dtype)
    elif not np.allclose(np.asarray(mu), 0.0, atol=1e-6 * float(np.max(sigma_np))):
        raise ValueError(f"layer {name} has no bias: its output units' means cannot be removed "
                         "(use_bias=True is needed for weight_norm_init).")
    return out


def _check_output(y: Any) -> jax.Array:
    if not isinstance(y, jax.Array):
        raise TypeError(f"the model output must be an array, got {type(y).__name__}.")
    if concrete(y) and not np.all(np.isfinite(np.asarray(y))):
        raise ValueError("the model output holds NaN or inf on `x` at this initialization; check "
                         "the weights' scale (the signal overflows) before reporting or LSUV.")
    return y


# --------------------------------------------------------------------------------------------
# signal report


@dataclasses.dataclass(frozen=True)
class LayerSignal:
    """Statistics of one kernel layer at init.

    Attributes:
      path: the layer's path in the model, e.g. ('Dense_0',) or ('blocks', 2, 'linear').
      kernel_shape: its kernel's shape.
      kernel_variance: the empirical variance of the kernel.
      mean, variance, second_moment: of the layer's output over the batch and units.
      grad_second_moment: mean square of d<g, y>/d(output) for g ~ N(0, I) on the model output y.
    """

    path: Path
    kernel_shape: tuple[int, ...]
    kernel_variance: float
    mean: float
    variance: float
    second_moment: float
    grad_second_moment: float


@dataclasses.dataclass(frozen=True)
class SignalReport:
    """Per-layer signal statistics of a Flax model (see :func:`signal_report`)."""

    layers: tuple[LayerSignal, ...]

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i: int) -> LayerSignal:
        return self.layers[i]

    @property
    def second_moments(self) -> np.ndarray:
        return np.array([s.second_moment for s in self.layers])

    @property
    def grad_second_moments(self) -> np.ndarray:
        return np.array([s.grad_second_moment for s in self.layers])

    def verdict(self, factor: float = 10.0) -> dict[str, Any]:
        """Whether the signal survives the model at init: the forward ratio E[h^2] of the last
        kernel layer over the first, the backward ratio E[g^2] of the first over the last, each
        'vanishing' below 1 / `factor`, 'exploding' above `factor` (or not finite), else
        'preserved' (the probe's factor, `jwinit.probe.REGIME_FACTOR`, over the whole model: a
        real model's layers differ, so this is the total change, not a per-layer rate); and the
        overall verdict, the worse of the two.

        Returns:
          ``{'verdict', 'forward', 'backward', 'forward_ratio', 'backward_ratio'}``.
        """
        def regime(ratio: float) -> str:
            if not math.isfinite(ratio) or ratio > factor:
                return "exploding"
            return "vanishing" if ratio < 1.0 / factor else "preserved"

        with np.errstate(divide="ignore", invalid="ignore"):
            h, g = self.second_moments, self.grad_second_moments
            fwd = float(h[-1] / h[0]) if len(h) else math.nan
            bwd = float(g[0] / g[-1]) if len(g) else math.nan
        f, b = regime(fwd), regime(bwd)
        worst = next((v for v in ("exploding", "vanishing") if v in (f, b)), "preserved")
        return {"verdict": worst, "forward": f, "backward": b, "forward_ratio": fwd,
                "backward_ratio": bwd}

    def __treescope_repr__(self, path: Any, subtree_renderer: Any) -> Any:
        """Treescope (notebooks): the verdict, the per-layer second moments, the layers."""
        return treescope_repr(self, {
            "verdict": self.verdict(), "second_moments": self.second_moments,
            "grad_second_moments": self.grad_second_moments, "layers": self.layers},
            path, subtree_renderer)

    def __str__(self) -> str:
        head = f"{'layer':<28} {'kernel':<18} {'Var(W)':>10} {'E[h^2]':>10} {'E[g^2]':>10}"
        lines = [head, "-" * len(head)]
        for s in self.layers:
            name = "/".join(str(p) for p in s.path) or "<root>"
            lines.append(
                f"{name:<28} {str(s.kernel_shape):<18} {s.kernel_variance:>10.4g} "
                f"{s.second_moment:>10.4g} {s.grad_second_moment:>10.4g}"
            )
        if self.layers:
            v = self.verdict()
            lines.append(f"verdict: {v['verdict']} (forward E[h^2] last/first "
                         f"{v['forward_ratio']:.3g}: {v['forward']}; backward E[g^2] first/last "
                         f"{v['backward_ratio']:.3g}: {v['backward']})")
        return "\n".join(lines)


jax.tree_util.register_dataclass(
    LayerSignal, data_fields=["kernel_variance", "mean", "variance", "second_moment",
                              "grad_second_moment"], meta_fields=["path", "kernel_shape"])
jax.tree_util.register_dataclass(SignalReport, data_fields=["layers"], meta_fields=[])


def signal_report(
    model: Any,
    x: jax.Array,
    variables: Mapping[str, Any] | None = None,
    *,
    key: jax.Array | None = None,
    apply_kwargs: Mapping[str, Any] | None = None,
) -> SignalReport:
    """Forward and backward signal statistics of every kernel layer of a Flax model.

    Args:
      model: a linen Module (with `variables`) or an nnx Module.
      x: an input batch (finite, at least 2 examples).
      variables: linen only, from ``model.init``.
      key: PRNG key for the Gaussian output cotangent (default ``jax.random.key(0)``).
      apply_kwargs: extra keyword arguments for the forward pass (e.g. ``{'train': True}``).

    Returns:
      A `SignalReport`, one `LayerSignal` per kernel layer in the order the model calls them.
      Under ``jax.jit`` (a function of the variables or the batch) the report is a pytree of
      arrays, returned from the jitted function like any other; the NaN/inf checks of the batch
      and the output, which need values, are then skipped.

    Raises:
      ValueError, TypeError: a bad argument, or a batch or model output with NaN/inf.

    Examples:
      >>> model = flax.linen.Sequential([flax.linen.Dense(256, kernel_init=jwinit.he_normal()),
      ...                                flax.linen.relu, flax.linen.Dense(256)])
      >>> x = jax.random.normal(jax.random.key(0), (512, 256))
      >>> r = jwinit.signal_report(model, x, model.init(jax.random.key(1), x))
      >>> [s.path for s in r.layers]
      [('layers_0',), ('layers_2',)]
    """
    kind = check_model(model, variables)
    x = check_batch(x)
    kwargs = dict(apply_kwargs or {})
    key = jax.random.key(0) if key is None else typed_key(key, "signal_report")

    if kind == "linen":
        def run(deltas):
            return linen_outputs(model, variables, x, deltas, kwargs, key)

        kernels = {p: linen_kernel(variables, p) for p in linen_kernel_paths(variables)}
    else:
        def run(deltas):
            return nnx_outputs(model, x, deltas, kwargs)

        kernels = {p: m.kernel[...] for p, m in nnx_layers(model)}

    y, outs = run_model(lambda: run(None), x, "signal_report")
    _check_output(y)
    g = jax.random.normal(key, y.shape, jnp.float32).astype(y.dtype)
    zeros = {p: jnp.zeros_like(o) for p, o in outs}

    def pairing(deltas):
        out, _ = run(deltas)
        return jnp.sum((out * g).astype(jnp.float32))

    grads = jax.grad(pairing)(zeros)
    layers = []
    for p, o in outs:
        o32 = o.astype(jnp.float32)
        k = kernels[p]
        layers.append(LayerSignal(
            path=p,
            kernel_shape=tuple(k.shape),
            kernel_variance=scalar(jnp.var(k.astype(jnp.float32))),
            mean=scalar(jnp.mean(o32)),
            variance=scalar(jnp.var(o32)),
            second_moment=scalar(jnp.mean(o32 * o32)),
            grad_second_moment=scalar(jnp.mean(grads[p].astype(jnp.float32) ** 2)),
        ))
    return SignalReport(tuple(layers))

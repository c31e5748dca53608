"""Recipes for deep feedforward networks: random-walk init, self-normalizing (SNN) init and the
ReLU bias (Sussillo & Abbott 2014; Klambauer et al. 2017)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp

from jwinit._builders import (
    DISTRIBUTIONS,
    derived,
    fan_scaled,
    named_constant,
)
from jwinit._checks import check_choice, check_real
from jwinit._sampling import flat, sample_normal
from jwinit._types import DTypeLike, Initializer, compute_dtype, make_initializer
from jwinit.activations import SELU_ALPHA, SELU_LAMBDA
from jwinit.fans import fan_spec
from jwinit.registry import register

Axes = int | Sequence[int]

__all__ = ["random_walk", "snn", "relu_bias"]


# --------------------------------------------------------------------------------------------
# random walk (Sussillo & Abbott 2014)

_RW_ACTIVATIONS = ("linear", "identity", "relu")


def _random_walk_gain(activation: str, n: int) -> float:
    if activation == "relu":
        return math.sqrt(2.0) * math.exp(1.2 / (max(n, 6) - 2.4))
    return math.exp(1.0 / (2 * n))


@register(
    distribution="normal", variance="g(N)^2 / N, N = fan_in", fan_mode="fan_in",
    paper="Sussillo & Abbott 2014", kind="matrix", min_ndim=2, example={"activation": "relu"},
)
def random_walk(
    activation: str = "linear",
    in_axis: Axes = -2,
    out_axis: Axes = -1,
    batch_axis: Axes = (),
    dtype: DTypeLike = None,
    *,
    layout: str | None = None,
) -> Initializer:
    """Random-walk initialization (Sussillo & Abbott 2014): W ~ g * N(0, 1 / N), N = fan_in.

    The gain makes the log of the back-propagated gradient norm an unbiased random walk, so it
    neither grows nor shrinks with depth on average:

    * linear: g = exp(1 / (2N));
    * ReLU:   g = sqrt(2) * exp(1.2 / (max(N, 6) - 2.4)).

    Var(W) = g^2 / N (plain normal, not truncated). Fans as in `jwinit.compute_fans`.

    Args:
      activation: ``'linear'`` (alias ``'identity'``) or ``'relu'``.
      in_axis, out_axis, batch_axis: weight axes (see `jwinit.compute_fans`).
      dtype: default dtype.
      layout: ``'flax'`` (default), ``'torch'`` or ``'equinox'`` instead of the axes.

    Returns:
      ``init(key, shape, dtype=dtype, out_sharding=None)``.

    Examples:
      >>> w = jwinit.random_walk('relu')(jax.random.key(0), (512, 512))   # std 0.0627

    References:
      Sussillo & Abbott 2014, "Random Walk Initialization for Training Very Deep Feedforward
      Networks".
    """
    check_choice(activation, "activation", _RW_ACTIVATIONS, name="random_walk")
    spec = fan_spec(in_axis, out_axis, batch_axis, layout=layout)
    act = "relu" if activation == "relu" else "linear"

    def stddev(shape):
        n = max(spec.fans(shape)[0], 1)
        return _random_walk_gain(act, n) / math.sqrt(n)

    def sample(key, shape, dtype):
        cd = compute_dtype(dtype)
        return flat(sample_normal, key, shape, cd) * jnp.array(stddev(shape), cd)

    def describe(shape, dtype):
        fan_in, fan_out = spec.fans(shape)
        s = stddev(shape)
        return {"fan_in": fan_in, "fan_out": fan_out, "mode": "fan_in", "distribution": "normal",
                "mean": 0.0, "variance": s * s, "bounds": (-math.inf, math.inf),
                "gain": _random_walk_gain(act, max(fan_in, 1)), "activation": act}

    return make_initializer(
        sample, name="random_walk", dtype=dtype, describe=describe, check_shape=spec.fans,
        params={"activation": activation},
    )




@register(
    distribution="truncated normal (or normal)", variance="1 / fan_in", fan_mode="fan_in",
    paper="Klambauer et al. 2017", kind="matrix", min_ndim=2,
)
def snn(
    in_axis: Axes = -2,
    out_axis: Axes = -1,
    batch_axis: Axes = (),
    dtype: DTypeLike = None,
    *,
    distribution: str = "truncated_normal",
    layout: str | None = None,
) -> Initializer:
    """Self-normalizing networks (Klambauer et al. 2017): LeCun normal, Var(W) = 1 / fan_in.

    With SELU, selu(x) = lambda * (x if x > 0 else alpha * (exp(x) - 1)) with
    alpha = `jwinit.SELU_ALPHA` = 1.6732632423543772 and lambda = `jwinit.SELU_LAMBDA` =
    1.0507009873554805 (eq. 14 of the paper: the fixed point mean 0, variance 1), and weights with
    E[W] = 0, Var(W) = 1 / fan_in, activations converge to zero mean and unit variance. Both
    constants are also in ``jwinit.describe(init, shape).extra``.

    The default ``distribution='truncated_normal'`` gives the same values as `jwinit.lecun_normal`
    (and ``jax.nn.initializers.lecun_normal``): a truncated normal rescaled to Var = 1 / fan_in.
    ``'normal'`` draws the plain Gaussian of the paper's analysis.

    Args:
      in_axis, out_axis, batch_axis: weight axes (see `jwinit.compute_fans`).
      dtype: default dtype.
      distribution: ``'truncated_normal'``, ``'normal'`` or ``'uniform'``.
      layout: ``'flax'`` (default), ``'torch'`` or ``'equinox'``.

    Returns:
      ``init(key, shape, dtype=dtype, out_sharding=None)``.

    Examples:
      >>> layer = flax.linen.Dense(256, kernel_init=jwinit.snn())   # then jax.nn.selu

    References:
      Klambauer, Unterthiner, Mayr & Hochreiter 2017, "Self-Normalizing Neural Networks".
    """
    check_choice(distribution, "distribution", DISTRIBUTIONS, name="snn")
    base = fan_scaled(1.0, "fan_in", distribution, dtype, layout, "lecun_normal", in_axis,
                      out_axis, batch_axis)
    return derived(base, name="snn", dtype=dtype,
                    extra={"selu_alpha": SELU_ALPHA, "selu_lambda": SELU_LAMBDA},
                    params={"distribution": distribution})


@register(distribution="constant", variance="0", paper="common practice for ReLU networks "
          "(e.g. Krizhevsky et al. 2012 used 1)", kind="bias", example={"value": 0.1})
def relu_bias(value: Any = 0.1, dtype: DTypeLike = None) -> Initializer:
    """A small positive constant bias, b = `value`, so ReLU units start in their active region.

    Var(b) = 0. A positive bias keeps units whose pre-activation is centred at 0 from starting
    (or, after a few updates, ending up) dead; 0.1 is a common choice, 0.01 and 1 are also used.

    Args:
      value: the bias value (a finite real; positive for the purpose).
      dtype: default dtype.

    Returns:
      ``init(key, shape, dtype=dtype, out_sharding=None)``, any shape.

    Examples:
      >>> layer = flax.linen.Dense(256, bias_init=jwinit.relu_bias())
    """
    check_real(value, "value")
    return named_constant(value, dtype, "relu_bias")

"""Lasagne-style Glorot and He with a gain (a number or an activation name)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jwinit._builders import (
    DISTRIBUTIONS,
    derived,
    fan_scaled,
)
from jwinit._checks import check_choice, check_real
from jwinit._types import DTypeLike, Initializer
from jwinit.gains import GAIN_NONLINEARITIES, calculate_gain
from jwinit.gains import gain as activation_gain
from jwinit.registry import register

Axes = int | Sequence[int]

__all__ = ["glorot", "he", "resolve_gain"]


# --------------------------------------------------------------------------------------------
# Lasagne-style glorot / he with a gain


def resolve_gain(gain: Any) -> float:
    """A gain as a float: a positive number, or an activation name or callable.

    Names in PyTorch's table (``'linear'``, ``'conv2d'``, ``'sigmoid'``, ``'tanh'``, ``'relu'``,
    ``'leaky_relu'``, ``'leaky_relu:0.2'``, ``'selu'``, ...) resolve with
    `jwinit.calculate_gain` (so ``'tanh'`` is 5/3 and ``'selu'`` 3/4, PyTorch's conventions); any
    other registered activation name (``'gelu'``, ``'silu'``, ``'elu'``, ...) or a callable
    resolves with `jwinit.gain`, the variance-preserving 1 / sqrt(E[phi(z)^2]) by quadrature.

    Args:
      gain: a positive number, a name (``'relu'``, ``'leaky_relu:0.2'``, ``'gelu'``) or an
        elementwise callable.

    Returns:
      The gain as a Python float.

    Examples:
      >>> jwinit.resolve_gain('tanh')     # PyTorch's 5/3
      1.6666666666666667
      >>> round(jwinit.resolve_gain('gelu'), 4)     # by quadrature: 1 / sqrt(E[gelu(z)^2])
      1.5335
    """
    if isinstance(gain, str):
        name, _, arg = gain.strip().partition(":")
        if name in GAIN_NONLINEARITIES:
            if arg and name != "leaky_relu":
                raise ValueError(f"gain {gain!r}: {name!r} takes no parameter.")
            try:
                param = float(arg) if arg else None
            except ValueError:
                raise ValueError(f"gain {gain!r}: the slope {arg!r} is not a number.") from None
            return calculate_gain(name, param)
        return float(activation_gain(gain))
    if callable(gain):
        return float(activation_gain(gain))
    check_real(gain, "gain", low=0, low_open=True)
    return float(gain)


def _lasagne(
    name: str, mode: str, gain: Any, distribution: str, in_axis, out_axis, batch_axis, dtype,
    layout,
) -> Initializer:
    check_choice(distribution, "distribution", DISTRIBUTIONS, name=name)
    g = resolve_gain(gain)
    base = fan_scaled(g * g, mode, distribution, dtype, layout, name, in_axis, out_axis, batch_axis)
    return derived(base, name=name, dtype=dtype, extra={"gain": g},
                    params={"gain": gain, "distribution": distribution})


@register(
    distribution="uniform / normal / truncated normal", variance="gain^2 * 2 / (fan_in + fan_out)",
    fan_mode="fan_avg", paper="Glorot & Bengio 2010; Lasagne init.Glorot", kind="matrix",
    min_ndim=2, example={"gain": "relu"},
)
def glorot(
    gain: Any = 1.0,
    distribution: str = "uniform",
    in_axis: Axes = -2,
    out_axis: Axes = -1,
    batch_axis: Axes = (),
    dtype: DTypeLike = None,
    *,
    layout: str | None = None,
) -> Initializer:
    """Lasagne-style Glorot with a gain: Var(W) = gain^2 * 2 / (fan_in + fan_out).

    As Lasagne's ``GlorotUniform(gain)`` / ``GlorotNormal(gain)``: uniform on
    +-gain * sqrt(6 / (fan_in + fan_out)), or normal with std gain * sqrt(2 / (fan_in + fan_out))
    (``'truncated_normal'`` is rescaled to the same variance). `gain` is a number or an activation
    name resolved by :func:`resolve_gain`: names in PyTorch's table with `jwinit.calculate_gain`
    (``'relu'`` -> sqrt(2), ``'tanh'`` -> 5/3), other names with `jwinit.gain` (quadrature).

    Args:
      gain: positive number, activation name (``'relu'``, ``'leaky_relu:0.2'``, ``'gelu'``) or
        callable.
      distribution: ``'uniform'`` (default), ``'normal'`` or ``'truncated_normal'``.
      in_axis, out_axis, batch_axis: weight axes (see `jwinit.compute_fans`).
      dtype: default dtype.
      layout: ``'flax'`` (default), ``'torch'`` or ``'equinox'``.

    Returns:
      ``init(key, shape, dtype=dtype, out_sharding=None)``.

    Examples:
      >>> init = jwinit.glorot(gain='relu')     # Lasagne GlorotUniform(gain='relu')
      >>> jwinit.describe(init, (256, 256)).variance   # 2 * 2 / (256 + 256)
      0.007812500000000002

    References:
      Glorot & Bengio 2010, "Understanding the difficulty of training deep feedforward neural
      networks"; Lasagne ``lasagne.init.Glorot``.
    """
    return _lasagne("glorot", "fan_avg", gain, distribution, in_axis, out_axis, batch_axis, dtype,
                    layout)


@register(
    distribution="normal / uniform / truncated normal", variance="gain^2 / fan_in",
    fan_mode="fan_in", paper="He et al. 2015; Lasagne init.He", kind="matrix", min_ndim=2,
    example={"gain": "relu"},
)
def he(
    gain: Any = 1.0,
    distribution: str = "normal",
    in_axis: Axes = -2,
    out_axis: Axes = -1,
    batch_axis: Axes = (),
    dtype: DTypeLike = None,
    *,
    layout: str | None = None,
) -> Initializer:
    """Lasagne-style He with a gain: Var(W) = gain^2 / fan_in.

    As Lasagne's ``HeNormal(gain)`` / ``HeUniform(gain)`` (default gain 1, so pass
    ``gain='relu'`` for He et al.'s sqrt(2)): normal with std gain / sqrt(fan_in), or uniform on
    +-gain * sqrt(3 / fan_in). `gain` is a number or an activation name resolved by
    :func:`resolve_gain` (PyTorch's table via `jwinit.calculate_gain`, other names via
    `jwinit.gain`).

    Args:
      gain: positive number, activation name or callable.
      distribution: ``'normal'`` (default), ``'uniform'`` or ``'truncated_normal'``.
      in_axis, out_axis, batch_axis: weight axes (see `jwinit.compute_fans`).
      dtype: default dtype.
      layout: ``'flax'`` (default), ``'torch'`` or ``'equinox'``.

    Returns:
      ``init(key, shape, dtype=dtype, out_sharding=None)``.

    Examples:
      >>> jwinit.describe(jwinit.he(gain='relu'), (256, 256)).variance   # 2 / fan_in
      0.007812500000000002
      >>> jwinit.describe(jwinit.he(), (256, 256)).variance   # gain 1: LeCun's 1 / fan_in
      0.00390625
      >>> round(jwinit.describe(jwinit.he(gain='gelu'), (256, 256)).extra['gain'], 4)
      1.5335

    References:
      He, Zhang, Ren & Sun 2015, "Delving Deep into Rectifiers"; Lasagne ``lasagne.init.He``.
    """
    return _lasagne("he", "fan_in", gain, distribution, in_axis, out_axis, batch_axis, dtype,
                    layout)

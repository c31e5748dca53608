"""Activation gains: PyTorch's `calculate_gain` table, and the variance-preserving gain of any phi.

Two different numbers are called "the gain of tanh" in the literature, and jwinit keeps them apart:

* :func:`calculate_gain` reproduces ``torch.nn.init.calculate_gain`` exactly (a table of
  conventions: tanh 5/3, selu 3/4, ...), for porting.
* :func:`gain` is the gain that preserves the second moment through ``phi`` for unit Gaussian
  inputs, g = 1 / sqrt(E[phi(z)^2]), z ~ N(0, 1) (He et al. 2015 generalized; Klambauer et al.
  2017): for ReLU sqrt(2), for leaky ReLU(a) sqrt(2 / (1 + a^2)), for tanh 1.5925...

A third use of the word is the ``gain=`` argument of the Lasagne-style factories `jwinit.glorot`
and `jwinit.he` (and `jwinit.orthogonal`'s ``scale``): Var(W) = gain^2 x (the base variance). There
a number is used as given, and a name is resolved by `jwinit.resolve_gain`: PyTorch's table where it
has the name (``'tanh'`` -> 5/3, as Lasagne and PyTorch users expect), :func:`gain` otherwise.
Like Lasagne's ``init.He``, ``jwinit.he()`` defaults to gain 1, i.e. Var(W) = 1 / fan_in (LeCun's
variance); ``jwinit.he(gain='relu')`` and `jwinit.he_normal` give He's 2 / fan_in.

Examples:
  >>> jwinit.calculate_gain('tanh')     # PyTorch's convention
  1.6666666666666667
  >>> round(float(jwinit.gain('tanh')), 4)   # preserves E[h^2] through tanh for unit inputs
  1.5925
  >>> jwinit.resolve_gain('tanh')       # gain= of glorot()/he(): the table first
  1.6666666666666667
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jwinit._quadrature import gaussian_expectation, hermite_rule, panel_rule
from jwinit.activations import Activation, get_activation

__all__ = ["calculate_gain", "gain", "GAIN_NONLINEARITIES"]

_UNIT = (
    "linear", "conv1d", "conv2d", "conv3d",
    "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "sigmoid",
)
GAIN_NONLINEARITIES = (*_UNIT, "tanh", "relu", "leaky_relu", "selu")


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """PyTorch's recommended gain (``torch.nn.init.calculate_gain``), value for value.

    =================  ==========================
    nonlinearity       gain
    =================  ==========================
    linear, conv*, sigmoid   1
    tanh               5 / 3
    relu               sqrt(2)
    leaky_relu         sqrt(2 / (1 + slope^2)), slope = `param` (default 0.01)
    selu               3 / 4
    =================  ==========================

    Raises:
      ValueError: unknown `nonlinearity` (listing the legal names) or a bad `param`.
    """
    if nonlinearity in _UNIT:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, numbers.Real) and not isinstance(param, bool):
            slope = float(param)
        else:
            raise ValueError(f"`param`={param!r} is not a valid negative slope (a number).")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(
        f"unsupported `nonlinearity` {nonlinearity!r}; legal: {', '.join(GAIN_NONLINEARITIES)}."
    )


def second_moment_unit(act: Activation, degree: int | None = None) -> Any:
    """E[phi(z)^2], z ~ N(0, 1): closed form for the ReLU family, quadrature otherwise."""
    if act.closed_form == "leaky":
        return 0.5 * (1.0 + act.slope**2)
    if degree is not None:
        rule = hermite_rule(degree)
    elif act.smooth:
        rule = hermite_rule(96)
    else:
        rule = panel_rule()
    return gaussian_expectation(lambda z: act(z) ** 2, rule)


def gain(activation: str | Callable[..., Any], *, degree: int | None = None) -> Any:
    """The variance-preserving gain g = 1 / sqrt(E[phi(z)^2]), z ~ N(0, 1).

    With Var(W) = g^2 / fan_in, a layer phi(W x) of unit-variance Gaussian pre-activations keeps
    E[h^2] = 1 (He et al. 2015 for ReLU, g = sqrt(2); Klambauer et al. 2017 for SELU, g = 1).

    Args:
      activation: a registered name ('relu', 'leaky_relu:0.2', 'tanh', ...) or an elementwise
        callable.
      degree: Gauss-Hermite degree; by default closed forms for linear/abs/relu/leaky_relu,
        Gauss-Hermite of degree 96 for smooth activations, and a kink-safe panel rule otherwise.

    Returns:
      A Python float for closed forms, else a scalar array (usable under ``jit``).
    """
    act = get_activation(activation)
    m2 = second_moment_unit(act, degree)
    if isinstance(m2, float):
        return 1.0 / math.sqrt(m2)
    return jax.lax.rsqrt(jnp.asarray(m2))

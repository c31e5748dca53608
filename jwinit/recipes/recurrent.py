"""Recipes for recurrent networks: IRNN (Le, Jaitly & Hinton 2015)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jwinit._builders import (
    named_identity,
)
from jwinit._types import DTypeLike, Initializer
from jwinit.registry import register

Axes = int | Sequence[int]

__all__ = ["irnn"]


@register(
    distribution="deterministic: gain * I", variance="gain^2 / n - mean^2 (over entries, square)",
    paper="Le, Jaitly & Hinton 2015", kind="matrix", min_ndim=2, example={"gain": 1.0},
)
def irnn(gain: Any = 1.0, dtype: DTypeLike = None) -> Initializer:
    """IRNN recurrent kernel (Le, Jaitly & Hinton 2015): W_hh = gain * I.

    A ReLU RNN whose recurrent matrix is the identity (biases 0) copies its state forward
    unchanged, so gradients neither vanish nor explode at initialization. The paper uses gain 1
    (and a scaled identity, e.g. 0.01, in some tasks). Use for the recurrent kernel only; input
    kernels keep a random init and biases `jwinit.zeros()`. Same values as
    ``jwinit.identity(gain)``; over the entries of an n x n kernel, E[W] = gain / n and
    Var(W) = gain^2 / n - (gain / n)^2.

    Args:
      gain: the diagonal value.
      dtype: default dtype.

    Returns:
      ``init(key, shape, dtype=dtype, out_sharding=None)`` for shapes of rank >= 2.

    Examples:
      >>> cell = flax.linen.SimpleCell(128, activation_fn=jax.nn.relu,
      ...                              recurrent_kernel_init=jwinit.irnn())

    References:
      Le, Jaitly & Hinton 2015, "A Simple Way to Initialize Recurrent Networks of Rectified
      Linear Units".
    """
    return named_identity(gain, dtype, "irnn")

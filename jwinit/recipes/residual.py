"""Fixup: residual networks trained without normalization (Zhang, Dauphin & Ma 2019)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from jwinit._builders import (
    derived,
    named_constant,
)
from jwinit._checks import check_int, renamed
from jwinit._types import DTypeLike, Initializer
from jwinit.registry import register
from jwinit.variance import he_normal

Axes = int | Sequence[int]

__all__ = ["fixup", "fixup_scale", "fixup_branch_output", "fixup_classifier", "fixup_rules"]


# --------------------------------------------------------------------------------------------
# Fixup (Zhang, Dauphin & Ma 2019)


@renamed(num_branches="blocks", layers_per_branch="branch_layers")
def fixup_scale(blocks: int, branch_layers: int) -> float:
    """The Fixup factor L^(-1 / (2m - 2)) for L residual branches of m layers each (m >= 2).

    Args:
      blocks: L (>= 1).
      branch_layers: m (>= 2).

    Returns:
      The multiplier of the base initializer's standard deviation (see :func:`fixup`).

    Examples:
      >>> jwinit.fixup_scale(16, 2)
      0.25
    """
    big_l = check_int(blocks, "blocks", minimum=1)
    m = check_int(branch_layers, "branch_layers", minimum=2)
    return float(big_l ** (-1.0 / (2 * m - 2)))


@register(
    distribution="base scaled by L^(-1/(2m-2))", variance="Var(base) L^(-1/(m-1))",
    fan_mode="base's", paper="Zhang, Dauphin & Ma 2019 (Fixup)", kind="matrix", min_ndim=2,
    example={"blocks": 16, "branch_layers": 2},
)
@renamed(num_branches="blocks", layers_per_branch="branch_layers")
def fixup(
    blocks: int,
    branch_layers: int,
    base: Initializer | None = None,
    dtype: DTypeLike = None,
) -> Initializer:
    """Fixup (Zhang, Dauphin & Ma 2019): the base init scaled by L^(-1 / (2m - 2)).

    For a residual network with L residual branches of m layers each, Fixup initializes every
    weight layer inside a branch except the last with `base` (He normal by default) times
    L^(-1 / (2m - 2)), and the **last layer of each branch and the classifier with zeros**
    (:func:`fixup_branch_output`, :func:`fixup_classifier`); the scalar multipliers start at 1
    and the scalar biases at 0 (`jwinit.ones`, `jwinit.zeros`). Then

        Var(W) = Var(base) * L^(-1 / (m - 1)),

    each branch's contribution to the output after the first SGD step is O(1/L), and the network
    trains at full depth without normalization. m = 2 (basic blocks) gives L^(-1/2); m = 3
    (bottlenecks) L^(-1/4).

    Args:
      blocks: L, the number of residual branches (>= 1).
      branch_layers: m, weight layers per branch (>= 2).
      base: the initializer to scale (default `jwinit.he_normal()`); its fans apply.
      dtype: default dtype.

    Returns:
      ``init(key, shape, dtype=dtype, out_sharding=None)``.

    Examples:
      >>> scaled = jwinit.fixup(16, 2)                         # first conv of each basic block
      >>> last = jwinit.fixup_branch_output()                  # second conv: zeros
      >>> stack = jwinit.fixup(64, 2, jwinit.he_normal(batch_axis=0))   # (64, n, n) for scan

    References:
      Zhang, Dauphin & Ma 2019, "Fixup Initialization: Residual Learning Without
      Normalization".
    """
    factor = fixup_scale(blocks, branch_layers)
    base = he_normal() if base is None else base
    return derived(base, name="fixup", factor=factor, dtype=dtype,
                    extra={"blocks": blocks,
                           "branch_layers": branch_layers},
                    params={"blocks": blocks,
                            "branch_layers": branch_layers})


@register(distribution="constant 0", variance="0", paper="Zhang, Dauphin & Ma 2019 (Fixup)",
          kind="kernel", min_ndim=0)
def fixup_branch_output(dtype: DTypeLike = None) -> Initializer:
    """Fixup's last layer of each residual branch: W = 0 (Var(W) = 0).

    With the last layer zero every residual branch starts as the zero map, so the network is the
    identity (plus the shortcut projections) at initialization; see :func:`fixup`.

    Args:
      dtype: default dtype.

    Returns:
      ``init(key, shape, dtype=dtype, out_sharding=None)``, any shape.

    Examples:
      >>> conv2 = flax.linen.Conv(64, (3, 3), kernel_init=jwinit.fixup_branch_output())
    """
    return named_constant(0, dtype, "fixup_branch_output")


@register(distribution="constant 0", variance="0", paper="Zhang, Dauphin & Ma 2019 (Fixup)",
          kind="kernel", min_ndim=0)
def fixup_classifier(dtype: DTypeLike = None) -> Initializer:
    """Fixup's classification layer (and its bias): W = 0 (Var(W) = 0); see :func:`fixup`.

    Args:
      dtype: default dtype.

    Returns:
      ``init(key, shape, dtype=dtype, out_sharding=None)``, any shape.

    Examples:
      >>> head = flax.linen.Dense(10, kernel_init=jwinit.fixup_classifier())
    """
    return named_constant(0, dtype, "fixup_classifier")


# --------------------------------------------------------------------------------------------
# whole-model rules (for jwinit.init_params)


@renamed(num_blocks="blocks", layers_per_branch="branch_layers")
def fixup_rules(blocks: int, branch_layers: int, *, block: str = r"block_\d+",
                branch_last: str | None = None, classifier: str = "head",
                base: Callable[..., Any] | None = None) -> dict[str, Callable[..., Any]]:
    """Fixup (Zhang, Dauphin & Ma 2019, Sec. 3) as rules for :func:`init_params`.

    For a residual network of L = `blocks` branches of m = `branch_layers` layers without
    normalization: the last layer of every branch and the classifier start at zero, the other
    branch layers are `base` (He normal by default) scaled by L^(-1/(2m-2)); biases zero. Other
    parameters (the stem) keep the model's own initialization. At init every residual branch adds
    zero, so the residual stream keeps the stem's variance at any depth.

    Args:
      blocks, branch_layers: L and m (m >= 2).
      block: regular expression of a block's name (``jwinit.models.ResidualMLP``: 'block_<i>').
      branch_last: regular expression of the last branch layer inside a block (default: the
        m-th Dense, ``f'Dense_{m-1}'``).
      classifier: regular expression of the classifier layer.
      base: the branch layers' initializer before scaling (default ``jwinit.he_normal()``).

    Examples:
      >>> model = jwinit.models.ResidualMLP(blocks=4, width=16, output_dim=3)
      >>> v = jwinit.init_params(model, jax.random.key(0), jnp.ones((2, 5)),
      ...                        jwinit.fixup_rules(4, 2))
      >>> float(abs(v['params']['block_3']['Dense_1']['kernel']).max())
      0.0
    """
    from jwinit.distributions import zeros

    big_l = check_int(blocks, "blocks", minimum=1)
    m = check_int(branch_layers, "branch_layers", minimum=2)
    for value, name in ((block, "block"), (classifier, "classifier")):
        if not isinstance(value, str):
            raise TypeError(f"`{name}` must be a regular expression string, got {value!r}.")
    last = f"Dense_{m - 1}" if branch_last is None else branch_last
    return {
        rf"(^|/){block}/{last}/kernel$": zeros(),
        rf"(^|/){classifier}/kernel$": zeros(),
        rf"(^|/){block}/.*kernel$": fixup(big_l, m, base=base),
        rf"(^|/)({block}|{classifier})/.*bias$": zeros(),
    }

"""The maximal-update parametrization (muP) by role (Yang & Hu 2021; Yang et al. 2022)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import jax
import optax

from jwinit._builders import (
    DISTRIBUTIONS,
    derived,
    fan_scaled,
    named_constant,
)
from jwinit._checks import check_choice, check_int, check_pattern, check_real
from jwinit._types import DTypeLike, Initializer
from jwinit.registry import register

Axes = int | Sequence[int]

__all__ = ["mup", "mup_lr_scales", "mup_rules", "mup_roles", "mup_optimizer"]


# --------------------------------------------------------------------------------------------
# muP (Yang & Hu 2021; Yang et al. 2022, Tensor Programs V)

_MUP_OPTIMIZERS = ("adam", "sgd")


def _width_mult(base_width: Any, width: Any) -> float:
    b = check_int(base_width, "base_width", minimum=1)
    w = check_int(width, "width", minimum=1)
    return w / b


@register(
    distribution="variance scaling by role", variance="sigma^2 / fan_in (input, hidden); "
    "sigma^2 / fan_in * base_width / width (output)", fan_mode="fan_in",
    paper="Yang & Hu 2021; Yang et al. 2022 (Tensor Programs V, Table 3)", kind="role",
    example={"base_width": 128, "width": 512},
)
def mup(
    base_width: int,
    width: int,
    *,
    sigma: Any = 1.0,
    distribution: str = "normal",
    zero_readout: bool = False,
    dtype: DTypeLike = None,
    layout: str | None = None,
) -> dict[str, Initializer]:
    """Maximal-update parametrization (muP) initializers by parameter role.

    The parametrization is Table 3 of Tensor Programs V (Yang et al. 2022; the abc-parametrization
    of Yang & Hu 2021 with no multipliers), normalized so that at ``width == base_width`` it
    coincides with standard (fan-in) parametrization, the form in which hyperparameters tuned on
    the base model transfer:

    ==========  =====================================================  ===================
    role        Var(W)                                                 scales with width
    ==========  =====================================================  ===================
    'input'     sigma^2 / fan_in (fan_in = data dim, fixed)            1
    'hidden'    sigma^2 / fan_in (fan_in = width)                      1 / width
    'output'    sigma^2 / fan_in * base_width / width                  1 / width^2
    'bias'      0                                                      -
    ==========  =====================================================  ===================

    The output layer's 1 / fan_in^2 is the muP readout (``zero_readout=True`` sets it to zero,
    which Tensor Programs V recommends and which is also muP). muP also scales learning rates by
    role, which is not an initialization: see :func:`mup_lr_scales`. The `mup` package's
    equivalent form (standard init plus an output multiplier 1 / width_mult in the forward pass,
    TP V Table 8) needs a model change and is not what this function returns.

    Args:
      base_width: the width at which hyperparameters were tuned.
      width: the width of the model being initialized.
      sigma: the base standard deviation multiplier (tuned at base width).
      distribution: ``'normal'`` (default), ``'truncated_normal'`` or ``'uniform'``.
      zero_readout: initialize the output layer to zero.
      dtype: default dtype.
      layout: kernel layout, ``'flax'`` (default), ``'torch'`` or ``'equinox'``.

    Returns:
      ``dict`` with roles ``'input'``, ``'hidden'``, ``'output'``, ``'bias'``.

    Examples:
      >>> inits = jwinit.mup(base_width=256, width=4096)
      >>> readout = flax.linen.Dense(10, kernel_init=inits['output'])

    References:
      Yang & Hu 2021, "Feature Learning in Infinite-Width Neural Networks" (Tensor Programs IV);
      Yang, Hu, Babuschkin, Sidor, Liu, Farhi, Ryder, Pachocki, Chen & Gao 2022, "Tensor
      Programs V: Tuning Large Neural Networks via Zero-Shot Hyperparameter Transfer".
    """
    mult = _width_mult(base_width, width)
    check_real(sigma, "sigma", low=0, low_open=True)
    check_choice(distribution, "distribution", DISTRIBUTIONS, name="mup")
    if not isinstance(zero_readout, bool):
        raise TypeError(f"`zero_readout` must be a bool, got {zero_readout!r}.")
    s2 = float(sigma) ** 2
    facts = {"base_width": base_width, "width": width, "width_mult": mult}

    def role(name, scale):
        base = fan_scaled(scale, "fan_in", distribution, dtype, layout, "variance_scaling")
        return derived(base, name=f"mup.{name}", dtype=dtype, extra=dict(facts, role=name))

    output = (named_constant(0, dtype, "mup.output") if zero_readout else role("output", s2 / mult))
    return {
        "input": role("input", s2),
        "hidden": role("hidden", s2),
        "output": output,
        "bias": named_constant(0, dtype, "mup.bias"),
    }


def mup_lr_scales(base_width: int, width: int, optimizer: str = "adam") -> dict[str, float]:
    """muP learning-rate multipliers by role (Tensor Programs V, Table 3, relative to base width).

    ======  =======================  ======================
    role    Adam                     SGD
    ======  =======================  ======================
    input   1                        width / base_width
    hidden  base_width / width       1
    output  base_width / width       base_width / width
    bias    1                        width / base_width
    ======  =======================  ======================

    Use with :func:`mup`; `jwinit.mup_optimizer` builds the ``optax.multi_transform`` with one
    learning rate per role, and `jwinit.mup_rules` applies :func:`mup` to a whole model.

    Args:
      base_width: the width at which the learning rate was tuned.
      width: the model's width.
      optimizer: ``'adam'`` (Adam-like, also AdamW, Adafactor-like) or ``'sgd'``.

    Returns:
      ``dict`` role -> multiplier of the base learning rate.

    Examples:
      >>> jwinit.mup_lr_scales(256, 1024)['hidden']
      0.25
    """
    mult = _width_mult(base_width, width)
    check_choice(optimizer, "optimizer", _MUP_OPTIMIZERS, name="mup_lr_scales")
    if optimizer == "adam":
        return {"input": 1.0, "hidden": 1 / mult, "output": 1 / mult, "bias": 1.0}
    return {"input": mult, "hidden": 1.0, "output": 1 / mult, "bias": mult}


# --------------------------------------------------------------------------------------------
# whole-model rules and optimizer


def mup_rules(base_width: int, width: int, *, output: str, input: str = r"^Dense_0/",  # noqa: A002
              sigma: float = 1.0, zero_readout: bool = False) -> dict[str, Callable[..., Any]]:
    """muP initialization (Tensor Programs V, Table 3; see `jwinit.mup`) as rules for
    :func:`init_params`: the kernels under `output` get the readout's variance
    ``sigma^2 / fan_in * base_width / width``, those under `input` and every other kernel
    ``sigma^2 / fan_in``, biases zero.

    Args:
      base_width, width: the width the hyperparameters were tuned at, and the model's width.
      output: regular expression of the readout layer's path (e.g. ``r'^Dense_3/'``).
      input: regular expression of the input layer's path.
      sigma, zero_readout: as in `jwinit.mup`.

    Examples:
      >>> model = jwinit.models.MLP(depth=2, width=256, output_dim=10)
      >>> v = jwinit.init_params(model, jax.random.key(0), jnp.ones((2, 8)),
      ...                        jwinit.mup_rules(64, 256, output=r'^Dense_2/'))
      >>> round(float(jnp.var(v['params']['Dense_2']['kernel'])) * 256 * 4, 1)  # 1/fan_in^2 * 64
      1.0
    """
    check_pattern(output, "output")
    check_pattern(input, "input")
    inits = mup(base_width, width, sigma=sigma, zero_readout=zero_readout)
    return {rf"(?:{output}).*kernel$": inits["output"], rf"(?:{input}).*kernel$": inits["input"],
            r"kernel$": inits["hidden"], r"bias$": inits["bias"]}


def mup_roles(params: Any, *, output: str, input: str = r"^Dense_0/") -> Any:  # noqa: A002
    """The muP role of every parameter, as a tree of strings shaped like `params`: 'output' and
    'input' for the kernels under those patterns, 'hidden' for the other kernels, 'bias' for every
    other parameter (biases, normalization scales: vector-like, scaled like biases)."""
    check_pattern(output, "output")
    check_pattern(input, "input")

    def role(path, _):
        name = "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)
        if not name.endswith("kernel"):
            return "bias"
        if re.search(output, name):
            return "output"
        return "input" if re.search(input, name) else "hidden"

    return jax.tree_util.tree_map_with_path(role, params)


def mup_optimizer(optimizer: Callable[..., Any], learning_rate: float, base_width: int,
                  width: int, *, output: str, input: str = r"^Dense_0/",  # noqa: A002
                  kind: str = "adam") -> Any:
    """muP's per-role learning rates as one optax optimizer: ``optax.multi_transform`` of
    ``optimizer(learning_rate * scale)`` per role, with the scales of `jwinit.mup_lr_scales`
    (Tensor Programs V, Table 3; for Adam: hidden and output ``base_width / width``).

    Args:
      optimizer: an optax factory taking the learning rate (``optax.adam``, ``optax.sgd``, ...).
      learning_rate: the base learning rate, tuned at `base_width`.
      base_width, width: as in :func:`mup_rules`.
      output, input: regular expressions of the readout and input layers' paths.
      kind: 'adam' (Adam-like optimizers) or 'sgd': which column of the table applies.

    Examples:
      >>> tx = jwinit.mup_optimizer(optax.sgd, 0.1, 64, 256, output=r'^Dense_2/', kind='sgd')
      >>> params = {'Dense_0': {'kernel': jnp.ones((8, 4))},
      ...           'Dense_1': {'kernel': jnp.ones((4, 4))},
      ...           'Dense_2': {'kernel': jnp.ones((4, 2))}}
      >>> grads = jax.tree.map(jnp.ones_like, params)
      >>> updates, _ = tx.update(grads, tx.init(params))
      >>> {k: round(-float(v['kernel'][0, 0]), 4) for k, v in updates.items()}  # 0.1 x (4, 1, 1/4)
      {'Dense_0': 0.4, 'Dense_1': 0.1, 'Dense_2': 0.025}
    """
    if not callable(optimizer):
        raise TypeError(f"`optimizer` must be an optax factory such as optax.adam, got "
                        f"{optimizer!r}.")
    lr = float(check_real(learning_rate, "learning_rate", low=0.0, low_open=True))
    scales = mup_lr_scales(base_width, width, kind)
    check_pattern(output, "output")
    check_pattern(input, "input")
    return optax.multi_transform(
        {role: optimizer(lr * scale) for role, scale in scales.items()},
        lambda params: mup_roles(params, output=output, input=input))

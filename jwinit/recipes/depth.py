"""Depth-aware parametrizations of a pre-norm residual network: depth-muP and CompleteP.

A block's branch is added to the residual stream with a forward multiplier (L / L0)^-alpha
(`jwinit.models.Decoder(branch_multiplier=...)`), L the number of blocks and L0 the base depth
the hyperparameters were tuned at; alpha = 0 is the standard parametrization (SP), 1/2 depth-muP
(Yang, Yu, Zhu & Hayou 2024, "Tensor Programs VI: Feature Learning in Infinite-Depth Neural
Networks"; Bordelon et al. 2024), 1 CompleteP (Dey et al. 2025, "Don't be lazy: CompleteP
enables compute-efficient deep transformers", Table 1). With Adam(W) the block ("hidden")
parameters then need, with m = L / L0:

==========================  ====================  =========================================
hidden parameter group      learning rate         Adam epsilon     weight decay
==========================  ====================  =========================================
weights (kernels)           eta m^(alpha - 1)     eps m^-alpha     wd (unchanged)
norm gains, biases          eta m^(alpha - 1)     eps m^-alpha     0
==========================  ====================  =========================================

and the embedding, the head and the final norm keep eta and eps (norms without weight decay).
Under SP (alpha = 0) nothing depends on the depth (every multiplier is 1).
Initialization variances do not depend on depth (`depth_rules`: N(0, 1/fan_in) kernels): at init
the residual stream's second moment is E[h_0^2] + m^(1 - 2 alpha) (L0 c) for per-block
increments c, so its RMS is flat in L under depth-muP, tends to E[h_0^2] under CompleteP and
grows like sqrt(L) under SP.

Source of the optimizer rules: EleutherAI/nanoGPT-mup, branch ``completep``, README and
``model.py`` ``configure_optimizers`` (``depth_lr_scaling = depth_multiplier ** (alpha - 1)``;
``hidden_adam_eps = adam_eps * depth_multiplier ** -alpha``; norms and biases without weight
decay; residual ``x + residual_scaling * block(x)`` with ``depth_multiplier ** -alpha``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import optax

from jwinit._checks import check_choice, check_int, check_pattern, check_real
from jwinit.distributions import normal
from jwinit.recipes._paths import role_paths
from jwinit.recipes.transformer import DECODER_PATHS
from jwinit.rules import RoleRules, path_name
from jwinit.variance import lecun_normal

__all__ = ["DEPTH_ALPHAS", "DepthMultipliers", "depth_multipliers", "depth_rules",
           "depth_optimizer", "depth_roles"]

#: alpha of each parametrization: the branch multiplier is (L / L0)^-alpha
DEPTH_ALPHAS = {"sp": 0.0, "depth_mup": 0.5, "completep": 1.0}

#: the hidden (block) parameters of `jwinit.models.Decoder`: every path under a block
_HIDDEN = r"^layer_\d+/"
_NORM = r"(^|/)\w*norm/(scale|bias)$|(^|/)bias$"


class DepthMultipliers(NamedTuple):
    """What a depth parametrization changes at depth L (base depth L0), m = L / L0.

    Attributes:
      branch: the forward multiplier of every residual branch, m^-alpha.
      hidden_lr: the learning-rate factor of the blocks' parameters, m^(alpha - 1).
      hidden_eps: the Adam-epsilon factor of the blocks' parameters, m^-alpha.
      hidden_weight_decay: the weight-decay factor of the blocks' kernels (1).
    """

    branch: float
    hidden_lr: float
    hidden_eps: float
    hidden_weight_decay: float


def depth_multipliers(parametrization: str, num_layers: int | None, *,
                      base_layers: int = 1) -> DepthMultipliers:
    """The multipliers of a depth parametrization ('sp', 'depth_mup', 'completep') at
    `num_layers` blocks, hyperparameters tuned at `base_layers`.

    Examples:
      >>> jwinit.recipes.depth_multipliers('completep', 16, base_layers=4)
      DepthMultipliers(branch=0.25, hidden_lr=1.0, hidden_eps=0.25, hidden_weight_decay=1.0)
      >>> jwinit.recipes.depth_multipliers('depth_mup', 16, base_layers=4).hidden_lr
      0.5
    """
    parametrization = check_choice(parametrization, "parametrization", tuple(DEPTH_ALPHAS))
    if num_layers is None:
        raise TypeError(f"a depth multiplier needs the depth: `num_layers` (the number of "
                        f"residual blocks) is None for {parametrization!r}.")
    n = check_int(num_layers, "num_layers", minimum=1)
    n0 = check_int(base_layers, "base_layers", minimum=1)
    alpha = DEPTH_ALPHAS[parametrization]
    m = n / n0
    if alpha == 0.0:  # the standard parametrization: nothing depends on the depth
        return DepthMultipliers(branch=1.0, hidden_lr=1.0, hidden_eps=1.0,
                                hidden_weight_decay=1.0)
    return DepthMultipliers(branch=m**-alpha, hidden_lr=m ** (alpha - 1), hidden_eps=m**-alpha,
                            hidden_weight_decay=1.0)


def depth_rules(*, embedding_std: float = 1.0, paths: Mapping[str, str] | None = None
                ) -> RoleRules:
    """The initialization of the depth parametrizations: variances independent of depth.

    Every kernel N(0, 1/fan_in) (`jwinit.lecun_normal`, truncated at 2 sigma as jax's is), the
    embedding N(0, embedding_std^2). Depth enters through the branch multiplier
    (`depth_multipliers(...).branch`, given to ``Decoder(branch_multiplier=...)``), not through
    the weights. Roles as in `jwinit.recipes.DECODER_PATHS` ('embedding', 'kernel' for every
    kernel), `paths` overriding them.
    """
    s = float(check_real(embedding_std, "embedding_std", low=0.0, low_open=True))
    where = role_paths(paths, {**DECODER_PATHS, "kernel": r"kernel$"})
    rules = {where["embedding"]: normal(s), where["kernel"]: lecun_normal()}
    return RoleRules(rules, recipe="depth_rules",
                     roles={where["embedding"]: "embedding", where["kernel"]: "kernel"},
                     formulas={"embedding": f"N(0, {s:g}^2)", "kernel": "N(0, 1/fan_in)"},
                     source="Dey et al. 2025, Table 1; Yang et al. 2024 (depth-muP)")


def depth_roles(params: Any, *, hidden: str = _HIDDEN, norm: str = _NORM) -> Any:
    """The optimizer group of every parameter: 'hidden' (a block's kernel), 'hidden_norm' (a
    block's norm gain or bias), 'norm' (a norm or bias outside the blocks) or 'outer' (the
    embedding, the head). `hidden` and `norm` are regular expressions on the paths."""
    hid, nrm = re.compile(hidden), re.compile(norm)

    def role(keypath: Any, _: Any) -> str:
        p = path_name(keypath)
        inside, is_norm = bool(hid.search(p)), bool(nrm.search(p))
        if inside:
            return "hidden_norm" if is_norm else "hidden"
        return "norm" if is_norm else "outer"

    return jax.tree_util.tree_map_with_path(role, params)


def depth_optimizer(parametrization: str, learning_rate: float, num_layers: int | None, *,
                    base_layers: int = 1, eps: float = 1e-8, weight_decay: float = 0.0,
                    b1: float = 0.9, b2: float = 0.95, hidden: str = _HIDDEN,
                    norm: str = _NORM) -> optax.GradientTransformation:
    """AdamW with a depth parametrization's per-group learning rates, epsilons and weight
    decays (the table in this module's docstring), as one ``optax.multi_transform``. The
    hyperparameters are in the optimizer state (``optax.inject_hyperparams``), so a compiled
    update step serves every parametrization and depth multiplier of the same model.

    Args:
      parametrization: 'sp', 'depth_mup' or 'completep'.
      learning_rate, eps, weight_decay, b1, b2: AdamW's, as tuned at `base_layers`.
      num_layers, base_layers: the depth L and the base depth L0.
      hidden, norm: regular expressions of the block parameters' paths and of the norm gains and
        biases (defaults: `jwinit.models.Decoder`'s names).

    Examples:
      >>> tx = jwinit.recipes.depth_optimizer('depth_mup', 1e-3, 16, base_layers=4)
      >>> params = {'embed': {'embedding': jnp.ones((8, 4))},
      ...           'layer_0': {'up': {'kernel': jnp.ones((4, 4))}}}
      >>> grads = jax.tree.map(jnp.ones_like, params)
      >>> with jax.numpy_dtype_promotion('standard'):  # optax mixes floats and int counts
      ...     updates, _ = tx.update(grads, tx.init(params), params)
      >>> [round(-float(u.ravel()[0]), 6) for u in jax.tree.leaves(updates)]  # eta, eta/2
      [0.001, 0.0005]
    """
    mult = depth_multipliers(parametrization, num_layers, base_layers=base_layers)
    lr = float(check_real(learning_rate, "learning_rate", low=0.0, low_open=True))
    e = float(check_real(eps, "eps", low=0.0))
    wd = float(check_real(weight_decay, "weight_decay", low=0.0))
    check_pattern(hidden, "hidden")
    check_pattern(norm, "norm")

    def adamw(rate: float, epsilon: float, decay: float) -> optax.GradientTransformation:
        # the hyperparameters live in the state: one compiled update serves every depth rule
        return optax.inject_hyperparams(optax.adamw)(learning_rate=rate, b1=b1, b2=b2,
                                                     eps=epsilon, weight_decay=decay)

    groups: dict[str, optax.GradientTransformation] = {
        "hidden": adamw(lr * mult.hidden_lr, e * mult.hidden_eps, wd * mult.hidden_weight_decay),
        "hidden_norm": adamw(lr * mult.hidden_lr, e * mult.hidden_eps, 0.0),
        "outer": adamw(lr, e, wd),
        "norm": adamw(lr, e, 0.0),
    }
    label: Callable[[Any], Any] = lambda params: depth_roles(params, hidden=hidden, norm=norm)  # noqa: E731
    return optax.multi_transform(groups, label)

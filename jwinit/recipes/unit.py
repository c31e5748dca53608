"""u-muP (Blake, Eichenberg, Dean, Balles, Prince, Deiseroth, Cruz-Salinas, Luschi, Weinbach &
Orr 2025, "u-muP: The Unit-Scaled Maximal Update Parametrization"): muP's width rules with Unit
Scaling's ops, so that activations, weights and gradients start at RMS about 1 and the default
hyperparameters are near their optimum at every width.

The model side is ``jwinit.models.Decoder(unit_scaled=True)`` (the ops, `jwinit._unit_scaling`);
this module gives its initialization (every weight N(0, 1): `umup_rules`) and its Adam learning
rates (`umup_lr_scales`, `umup_optimizer`). With eta the global learning rate, L the number of
blocks and fan_in a kernel's input width (Flax layout (fan_in, fan_out); the embedding's is its
width, the reference's convention):

==================================  =====================================
parameter                           Adam learning rate
==================================  =====================================
a block's kernel                    eta fan_in^-1/2 L^-1/2
a block's norm gain                 eta L^-1/2
the embedding                       eta dim^-1/2
the head (readout, forward / fan_in)  eta
the final norm gain                 eta
==================================  =====================================

Weight decay, if any, is independent of the learning rate (w <- w - wd w each step), as the
reference's default ``independent_weight_decay=True``.

Source: Graphcore's ``unit-scaling`` library, ``unit_scaling/optim.py`` (``lr_scale_func_adam``,
``lr_scale_for_depth``, ``_get_fan_in``, ``scaled_parameters``) and ``unit_scaling/_modules.py``
(``Linear``, ``LinearReadout``, ``Embedding``, ``RMSNorm`` and their ``mup_type``).
"""

from __future__ import annotations

import math
import re
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jwinit._checks import check_int, check_pattern, check_real
from jwinit.distributions import normal
from jwinit.recipes._paths import role_paths
from jwinit.recipes.transformer import DECODER_PATHS
from jwinit.rules import RoleRules, path_name

__all__ = ["umup_rules", "umup_lr_scales", "umup_optimizer"]

_HIDDEN = r"^layer_\d+/"


def umup_rules(*, paths: dict[str, str] | None = None) -> RoleRules:
    """u-muP's initialization: every kernel and the embedding N(0, 1) (norm gains stay 1).
    The scale a layer needs is in its op (``Decoder(unit_scaled=True)``), not in its weights.
    Roles as in `jwinit.recipes.DECODER_PATHS` ('embedding', 'kernel' for every kernel), `paths`
    overriding them.

    Examples:
      >>> model = jwinit.models.Decoder(vocab_size=64, dim=32, layers=2, heads=4, mlp_dim=64,
      ...                               unit_scaled=True)
      >>> tokens = jnp.zeros((2, 8), jnp.int32)
      >>> v = jwinit.init_params(model, jax.random.key(0), tokens, jwinit.recipes.umup_rules())
      >>> round(float(jnp.std(v['params']['layer_0']['up']['kernel'].value)), 1)
      1.0
    """
    where = role_paths(paths, {**DECODER_PATHS, "kernel": r"kernel$"})
    rules = {where["embedding"]: normal(1.0), where["kernel"]: normal(1.0)}
    return RoleRules(rules, recipe="umup_rules",
                     roles={where["embedding"]: "embedding", where["kernel"]: "kernel"},
                     formulas={"embedding": "N(0, 1)", "kernel": "N(0, 1)"},
                     source="Blake et al. 2025 (u-muP), unit-scaling unit_scaling/_modules.py")


class _Roles(NamedTuple):
    hidden: re.Pattern[str]
    norm: re.Pattern[str]
    embedding: re.Pattern[str]
    head: re.Pattern[str]


def _roles(hidden: str, norm: str, embedding: str, head: str) -> _Roles:
    for value, name in ((hidden, "hidden"), (norm, "norm"), (embedding, "embedding"),
                        (head, "head")):
        check_pattern(value, name)
    return _Roles(re.compile(hidden), re.compile(norm), re.compile(embedding), re.compile(head))


def umup_lr_scales(params: Any, num_layers: int | None, *, hidden: str = _HIDDEN,
                   norm: str = DECODER_PATHS["norm"], embedding: str = DECODER_PATHS["embedding"],
                   head: str = DECODER_PATHS["head"]) -> Any:
    """The factor of the global learning rate for every parameter of `params` (a tree of arrays
    or shapes), the table of this module's docstring: a tree of floats.

    Examples:
      >>> params = {'embed': {'embedding': jnp.ones((64, 256))},
      ...           'layer_0': {'down': {'kernel': jnp.ones((1024, 256))}},
      ...           'head': {'kernel': jnp.ones((256, 64))}}
      >>> s = jwinit.recipes.umup_lr_scales(params, num_layers=4)
      >>> s['embed']['embedding'], s['layer_0']['down']['kernel'], s['head']['kernel']
      (0.0625, 0.015625, 1.0)
    """
    if num_layers is None:
        raise TypeError("u-muP's learning rates depend on the depth: `num_layers` (the number "
                        "of residual blocks) is None.")
    n = check_int(num_layers, "num_layers", minimum=1)
    roles = _roles(hidden, norm, embedding, head)

    def scale(keypath: Any, leaf: Any) -> float:
        p = path_name(keypath)
        shape = tuple(getattr(leaf, "shape", leaf))
        depth = n ** -0.5 if roles.hidden.search(p) else 1.0
        if roles.head.search(p):
            return 1.0
        if roles.embedding.search(p):
            return shape[-1] ** -0.5
        if roles.norm.search(p) or len(shape) < 2:
            return depth
        return depth * math.prod(shape[:-1]) ** -0.5

    return jax.tree_util.tree_map_with_path(scale, params)


def umup_optimizer(learning_rate: float, num_layers: int | None, *, b1: float = 0.9,
                   b2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0,
                   hidden: str = _HIDDEN, norm: str = DECODER_PATHS["norm"],
                   embedding: str = DECODER_PATHS["embedding"],
                   head: str = DECODER_PATHS["head"]) -> optax.GradientTransformation:
    """Adam with u-muP's per-parameter learning rates (`umup_lr_scales`) and
    learning-rate-independent weight decay: u = -eta s Adam(g) - wd w.

    Args:
      learning_rate: eta, the global learning rate (u-muP's default 2^-... is tuned per task).
      num_layers: L, the number of residual blocks.
      b1, b2, eps: Adam's.
      weight_decay: wd (>= 0), applied to every parameter, not scaled by the learning rate.
      hidden, norm, embedding, head: regular expressions of the block parameters' paths, the
        norm gains, the embedding and the readout (defaults: `jwinit.models.Decoder`'s names).

    Examples:
      >>> tx = jwinit.recipes.umup_optimizer(0.5, num_layers=4)
      >>> params = {'layer_0': {'up': {'kernel': jnp.ones((256, 1024))}},
      ...           'head': {'kernel': jnp.ones((256, 64))}}
      >>> with jax.numpy_dtype_promotion('standard'):  # optax mixes floats and int counts
      ...     updates, _ = tx.update(jax.tree.map(jnp.ones_like, params), tx.init(params), params)
      >>> [round(-float(u.ravel()[0]), 4) for u in jax.tree.leaves(updates)]  # eta, eta/16/2
      [0.5, 0.0156]
    """
    lr = float(check_real(learning_rate, "learning_rate", low=0.0, low_open=True))
    wd = float(check_real(weight_decay, "weight_decay", low=0.0))
    check_real(eps, "eps", low=0.0)
    if num_layers is None:
        raise TypeError("u-muP's learning rates depend on the depth: `num_layers` (the number "
                        "of residual blocks) is None.")
    check_int(num_layers, "num_layers", minimum=1)
    _roles(hidden, norm, embedding, head)

    def init(params: Any) -> optax.EmptyState:
        return optax.EmptyState()

    def update(updates: Any, state: Any, params: Any = None) -> tuple[Any, Any]:
        scales = umup_lr_scales(updates, num_layers, hidden=hidden, norm=norm,
                                embedding=embedding, head=head)
        out = jax.tree.map(lambda u, s: u * jnp.asarray(-lr * s, u.dtype), updates, scales)
        if wd:
            if params is None:
                raise ValueError("umup_optimizer with weight_decay needs `params` in update().")
            out = jax.tree.map(lambda u, w: u - jnp.asarray(wd, u.dtype) * w, out, params)
        return out, state

    return optax.chain(optax.scale_by_adam(b1=b1, b2=b2, eps=eps),
                       optax.GradientTransformation(init, update))

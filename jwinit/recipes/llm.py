"""The initializations of open LLM codebases, as rules for `jwinit.models.Decoder` (and, with
``paths=``, for a user's own names).

Each recipe returns `jwinit.rules.RoleRules`: a dict ``{pattern: initializer}`` for
`jwinit.init_params` and `jwinit.audit`, that knows the role of each pattern, the formula of each
role and where it comes from (``rules.describe()``); a role its pattern does not find in a model
is an error naming it. Roles (``DECODER_PATHS``): 'embedding', 'query', 'key', 'value',
'attention_output', 'mlp_gate', 'mlp_up', 'mlp_output', 'head'; ``'layer'`` is the prefix of
block i (a format string with ``{i}``), for the recipes whose scale depends on the block.

Truncation is always relative: "truncated at 3 sigma" draws N(0, sigma^2) restricted to
[-3 sigma, 3 sigma] (``torch.nn.init.trunc_normal_(w, std=s, a=-3 s, b=3 s)``), whose standard
deviation is 0.986578 sigma.

Sources (file and function; formulas, not code, carried over):

* OLMo, ``olmo/initialization.py`` ``init_weights`` and ``olmo/model.py``
  ``OLMoSequentialBlock.reset_parameters``: 'mitchell' and 'full_megatron';
* OLMo-core, ``src/olmo_core/nn/transformer/init.py`` ``InitMethod`` (``init_embeddings``,
  ``init_attention``, ``init_feed_forward``, ``init_final_w_out``): 'normal', 'llama',
  'llama_depth', 'normalized' (nGPT);
* GPT-NeoX, ``megatron/model/init_functions.py`` ``small_init_init_method`` and
  ``wang_init_method``;
* the small embedding of BlinkDL's RWKV-LM ("SmallInitEmb": U(-1e-4, 1e-4), then a LayerNorm);
* Gemma, ``gemma/modules.py`` ``Embedder`` (N(0, 0.01^2) table, scaled by sqrt(d) when read).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from jwinit._checks import check_choice, check_int, check_pattern, check_real
from jwinit.distributions import normal, truncated_normal, uniform
from jwinit.recipes._paths import role_paths
from jwinit.recipes.transformer import DECODER_PATHS
from jwinit.rules import RoleRules

__all__ = ["olmo_mitchell_rules", "megatron_rules", "olmo_core_rules", "OLMO_CORE_METHODS",
           "neox_rules", "small_embedding_rules", "gemma_embedding_rules", "TRUNCATED_STD_3"]

#: the standard deviation of N(0, 1) truncated at +-3: sqrt(1 - 6 phi(3) / (2 Phi(3) - 1))
TRUNCATED_STD_3 = math.sqrt(1 - 6 * math.exp(-4.5) / math.sqrt(2 * math.pi)
                            / math.erf(3 / math.sqrt(2)))

OLMO_CORE_METHODS = ("normal", "llama", "llama_depth", "normalized")


def _where(paths: Mapping[str, str] | None, layered: bool) -> dict[str, str]:
    """`DECODER_PATHS` updated by `paths` (as every recipe reads them); a recipe whose scale
    depends on the block (`layered`) needs 'layer', a pattern with '{i}'."""
    where = role_paths(paths, DECODER_PATHS)
    layer = where.get("layer")
    if layered and (not isinstance(layer, str) or "{i}" not in layer):
        raise ValueError("`paths['layer']` must be a pattern with '{i}' for the block index, "
                         f"e.g. r'^layer_{{i}}/', got {layer!r}.")
    if layered:
        check_pattern(layer.format(i=0), "paths['layer']")
    return where


def _at_layer(where: Mapping[str, str], role: str, i: int) -> str:
    """A pattern for `role` inside block `i` (both patterns must match the path)."""
    return f"(?={where['layer'].format(i=i)})(?=.*{where[role]})"


class _Builder:
    """Collects (pattern, init, role, formula) in order; first match wins, so per-layer rules
    come before the role's general rule."""

    def __init__(self, recipe: str, source: str, where: Mapping[str, str]):
        self.recipe, self.source, self.where = recipe, source, where
        self.rules: dict[str, Callable[..., Any]] = {}
        self.roles: dict[str, str] = {}
        self.formulas: dict[str, str] = {}

    def add(self, role: str, init: Callable[..., Any], formula: str,
            layer: int | None = None) -> None:
        pattern = self.where[role] if layer is None else _at_layer(self.where, role, layer)
        self.rules[pattern] = init
        self.roles[pattern] = role if layer is None else f"{role} (block {layer})"
        self.formulas.setdefault(role, formula)

    def build(self) -> RoleRules:
        return RoleRules(self.rules, recipe=self.recipe, roles=self.roles,
                         formulas=self.formulas, source=self.source)


def _trunc(std: float, cutoff: float = 3.0) -> Callable[..., Any]:
    return truncated_normal(std, lower=-cutoff, upper=cutoff)


def olmo_mitchell_rules(num_layers: int, dim: int, mlp_dim: int, *,
                        paths: Mapping[str, str] | None = None) -> RoleRules:
    """OLMo's 'mitchell' init: every weight N(0, 1/d_in) truncated at 3 sigma, the output
    projections of block i further divided by sqrt(2 (i + 1)).

    Roles: query, key, value, mlp_gate, mlp_up, embedding, head: std 1/sqrt(dim);
    attention_output of block i: 1/sqrt(2 dim (i + 1)); mlp_output of block i:
    1/sqrt(2 mlp_dim (i + 1)). All truncated at +-3 std.

    Source: allenai/OLMo, ``olmo/initialization.py`` ``init_weights`` (``InitFnType.mitchell``:
    ``std = std_factor / sqrt(d)``, with a layer id ``std / sqrt(2 (layer_id + 1))``,
    ``trunc_normal_(a=-3 std, b=3 std)``) and ``olmo/model.py``
    ``OLMoSequentialBlock.reset_parameters`` (``attn_out``: ``1 / sqrt(2 d_model (layer_id +
    1))``; ``ff_out``: ``1 / sqrt(2 ff_out.in_features (layer_id + 1))``).

    Examples:
      >>> print(jwinit.recipes.olmo_mitchell_rules(2, 64, 128).describe())  # doctest: +ELLIPSIS
      olmo_mitchell_rules: allenai/OLMo olmo/initialization.py init_weights (mitchell); ...
        embedding          truncated N(0, 1/dim) at 3 sigma
        query              truncated N(0, 1/dim) at 3 sigma
        key                truncated N(0, 1/dim) at 3 sigma
        value              truncated N(0, 1/dim) at 3 sigma
        attention_output   truncated N(0, 1/(2 dim (i+1))) at 3 sigma, block i
        mlp_gate           truncated N(0, 1/dim) at 3 sigma
        mlp_up             truncated N(0, 1/dim) at 3 sigma
        mlp_output         truncated N(0, 1/(2 mlp_dim (i+1))) at 3 sigma, block i
        head               truncated N(0, 1/dim) at 3 sigma
    """
    n = check_int(num_layers, "num_layers", minimum=1)
    d = check_int(dim, "dim", minimum=1)
    f = check_int(mlp_dim, "mlp_dim", minimum=1)
    b = _Builder("olmo_mitchell_rules", "allenai/OLMo olmo/initialization.py init_weights "
                 "(mitchell); olmo/model.py OLMoSequentialBlock.reset_parameters",
                 _where(paths, layered=True))
    for i in range(n):
        b.add("attention_output", _trunc(1 / math.sqrt(2 * d * (i + 1))),
              "truncated N(0, 1/(2 dim (i+1))) at 3 sigma, block i", i)
        b.add("mlp_output", _trunc(1 / math.sqrt(2 * f * (i + 1))),
              "truncated N(0, 1/(2 mlp_dim (i+1))) at 3 sigma, block i", i)
    for role in ("query", "key", "value", "mlp_gate", "mlp_up", "embedding", "head"):
        b.add(role, _trunc(1 / math.sqrt(d)), "truncated N(0, 1/dim) at 3 sigma")
    return b.build()


def megatron_rules(num_layers: int, dim: int, *, std: float = 0.02, cutoff: float = 3.0,
                   paths: Mapping[str, str] | None = None) -> RoleRules:
    """OLMo's 'full_megatron' (the Llama-2 / Megatron-LM init): N(0, std^2) for the input
    projections and the embedding, std/sqrt(2L) for the output projections, dim^-1/2 for the
    final projection, every draw truncated at `cutoff` sigma.

    Source: allenai/OLMo, ``olmo/initialization.py`` ``init_weights``
    (``InitFnType.full_megatron``: in_module ``init_std``, out_module
    ``init_std / sqrt(2 n_layers)``, emb ``init_std``, final_out ``d_model ** -0.5``, cutoff
    factor 3 by default).
    """
    n = check_int(num_layers, "num_layers", minimum=1)
    d = check_int(dim, "dim", minimum=1)
    s = float(check_real(std, "std", low=0.0, low_open=True))
    c = float(check_real(cutoff, "cutoff", low=0.0, low_open=True))
    b = _Builder("megatron_rules", "allenai/OLMo olmo/initialization.py init_weights "
                 "(full_megatron)", _where(paths, layered=False))
    cut = f"truncated at {c:g} sigma"
    for role in ("attention_output", "mlp_output"):
        b.add(role, _trunc(s / math.sqrt(2 * n), c), f"N(0, (std/sqrt(2L))^2), {cut}")
    for role in ("query", "key", "value", "mlp_gate", "mlp_up", "embedding"):
        b.add(role, _trunc(s, c), f"N(0, std^2), {cut}")
    b.add("head", _trunc(1 / math.sqrt(d), c), f"N(0, 1/dim), {cut}")
    return b.build()


def olmo_core_rules(method: str, num_layers: int, dim: int, *, std: float = 0.02,
                    paths: Mapping[str, str] | None = None) -> RoleRules:
    """OLMo-core's ``InitMethod``: 'normal', 'llama', 'llama_depth' or 'normalized' (nGPT).

    Every linear layer is truncated at 3 sigma; embeddings are not truncated under 'llama',
    'llama_depth' and 'normalized'. L blocks; i the block index; s = `std`:

    ============  =========  ============  ==============  ============  ==================
    method        embedding  q, k, v, gate  attn out, up   mlp_output    head
    ============  =========  ============  ==============  ============  ==================
    normal        s (trunc)  s             s               s             s
    llama         1          s             s/sqrt(2L)      s/sqrt(2L)    dim^-1/2
    llama_depth   1          s             s/sqrt(2(i+1))  s/sqrt(2(i+1)) dim^-1/2
    normalized    dim^-1/2   dim^-1/2      dim^-1/2/sqrt(2L) on attn out and mlp_output only
    ============  =========  ============  ==============  ============  ==================

    (Under 'normalized' the up projection is dim^-1/2 like the gate.) Note that 'llama' and
    'llama_depth' scale the SwiGLU *up* projection (``w3``) as well as the output (``w2``): the
    code does, so the rules do.

    Source: allenai/OLMo-core, ``src/olmo_core/nn/transformer/init.py``, ``InitMethod``:
    ``init_embeddings``, ``init_attention``, ``init_feed_forward``, ``init_final_w_out``.
    """
    method = check_choice(method, "method", OLMO_CORE_METHODS)
    n = check_int(num_layers, "num_layers", minimum=1)
    d = check_int(dim, "dim", minimum=1)
    s = float(check_real(std, "std", low=0.0, low_open=True))
    b = _Builder(f"olmo_core_rules({method!r})", "allenai/OLMo-core "
                 "src/olmo_core/nn/transformer/init.py InitMethod",
                 _where(paths, layered=method == "llama_depth"))
    t = "truncated at 3 sigma"
    inv = 1 / math.sqrt(d)
    if method == "normal":
        for role in ("attention_output", "mlp_output", "query", "key", "value", "mlp_gate",
                     "mlp_up", "embedding", "head"):
            b.add(role, _trunc(s), f"N(0, std^2), {t}")
    elif method in ("llama", "llama_depth"):
        if method == "llama_depth":
            for i in range(n):
                for role in ("attention_output", "mlp_up", "mlp_output"):
                    b.add(role, _trunc(s / math.sqrt(2 * (i + 1))),
                          f"N(0, std^2/(2(i+1))), {t}, block i", i)
        else:
            for role in ("attention_output", "mlp_up", "mlp_output"):
                b.add(role, _trunc(s / math.sqrt(2 * n)), f"N(0, std^2/(2L)), {t}")
        for role in ("query", "key", "value", "mlp_gate"):
            b.add(role, _trunc(s), f"N(0, std^2), {t}")
        b.add("embedding", normal(1.0), "N(0, 1), not truncated")
        b.add("head", _trunc(inv), f"N(0, 1/dim), {t}")
    else:  # normalized (nGPT)
        for role in ("attention_output", "mlp_output"):
            b.add(role, _trunc(inv / math.sqrt(2 * n)), f"N(0, 1/(2 L dim)), {t}")
        for role in ("query", "key", "value", "mlp_gate", "mlp_up", "head"):
            b.add(role, _trunc(inv), f"N(0, 1/dim), {t}")
        b.add("embedding", normal(inv), "N(0, 1/dim), not truncated")
    return b.build()


def neox_rules(num_layers: int, dim: int, *, paths: Mapping[str, str] | None = None
               ) -> RoleRules:
    """GPT-NeoX's default: 'small_init' N(0, 2/(5 dim)) (Nguyen & Salazar 2019) for the
    embedding, query, key, value, gate, up and head, and 'wang_init' N(0, (2/(L sqrt(dim)))^2)
    for the attention output and the MLP output. Not truncated.

    Source: EleutherAI/gpt-neox, ``megatron/model/init_functions.py``:
    ``small_init_init_method(dim)`` (``std = sqrt(2 / (5 dim))``) and
    ``wang_init_method(n_layers, dim)`` (``std = 2 / n_layers / sqrt(dim)``).
    """
    n = check_int(num_layers, "num_layers", minimum=1)
    d = check_int(dim, "dim", minimum=1)
    b = _Builder("neox_rules", "EleutherAI/gpt-neox megatron/model/init_functions.py "
                 "small_init_init_method, wang_init_method", _where(paths, layered=False))
    for role in ("attention_output", "mlp_output"):
        b.add(role, normal(2 / n / math.sqrt(d)), "wang_init: N(0, (2/(L sqrt(dim)))^2)")
    for role in ("query", "key", "value", "mlp_gate", "mlp_up", "embedding", "head"):
        b.add(role, normal(math.sqrt(2 / (5 * d))), "small_init: N(0, 2/(5 dim))")
    return b.build()


def small_embedding_rules(scale: float = 1e-4, *, paths: Mapping[str, str] | None = None
                          ) -> RoleRules:
    """The small embedding: U(-scale, scale) (1e-4), meant to be followed by a LayerNorm
    (``jwinit.models.Decoder(embed_norm=True)``). The table moves quickly away from its start
    in training while the LayerNorm fixes the stream's scale. At init the LayerNorm's epsilon
    dominates: a row of variance v = scale^2/3 comes out with mean square v / (v + eps)
    (0.0033 with flax's eps 1e-6). Merge it in front of another recipe:
    ``{**small_embedding_rules(), **megatron_rules(L, d)}``.

    Source: BlinkDL/RWKV-LM, "SmallInitEmb" (``nn.init.uniform_(emb.weight, a=-1e-4, b=1e-4)``
    followed by ``ln0``).
    """
    a = float(check_real(scale, "scale", low=0.0, low_open=True))
    b = _Builder("small_embedding_rules", "BlinkDL/RWKV-LM SmallInitEmb",
                 _where(paths, layered=False))
    b.add("embedding", uniform(low=-a, high=a), f"U(-{a:g}, {a:g}), then a LayerNorm")
    return b.build()


def gemma_embedding_rules(stddev: float = 0.01, *, paths: Mapping[str, str] | None = None
                          ) -> RoleRules:
    """Gemma's embedding: the table N(0, 0.01^2), read multiplied by sqrt(dim)
    (``jwinit.models.Decoder(embed_multiplier=dim ** 0.5)``), so the stream starts at
    std 0.01 sqrt(dim) (0.45 at dim 2048) whatever the table's scale in training.

    Source: google-deepmind/gemma, ``gemma/modules.py`` ``Embedder`` (``nn.initializers.normal()``
    for ``input_embedding``; ``encode`` multiplies by ``sqrt(embed_dim)``).
    """
    s = float(check_real(stddev, "stddev", low=0.0, low_open=True))
    b = _Builder("gemma_embedding_rules", "google-deepmind/gemma gemma/modules.py Embedder",
                 _where(paths, layered=False))
    b.add("embedding", normal(s), f"N(0, {s:g}^2), read times sqrt(dim)")
    return b.build()

"""Transformer recipes by parameter role: GPT-2 residual projections, T-Fixup and DeepNet
(Radford et al. 2019; Huang et al. 2020; Wang et al. 2022)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from jwinit._builders import (
    derived,
    fan_scaled,
    named_constant,
)
from jwinit._checks import check_choice, check_int, check_pattern, check_real
from jwinit._types import DTypeLike, Initializer
from jwinit.distributions import normal, truncated_normal, zeros
from jwinit.recipes._paths import role_paths
from jwinit.registry import register
from jwinit.rules import RoleRules

Axes = int | Sequence[int]

__all__ = ["gpt2_residual", "t_fixup", "deepnet", "deepnorm_constants", "DeepNormConstants",
           "TRANSFORMER_PATHS", "DECODER_PATHS", "transformer_rules", "t_fixup_rules",
           "deepnet_rules", "gpt2_rules"]


@register(
    distribution="normal", variance="stddev^2 / (2 num_layers)",
    paper="Radford et al. 2019 (GPT-2)", kind="kernel", min_ndim=0,
    example={"num_layers": 12},
)
def gpt2_residual(num_layers: int, stddev: Any = 0.02, dtype: DTypeLike = None) -> Initializer:
    """GPT-2 residual projections: W ~ N(0, stddev^2 / (2 num_layers)).

    GPT-2 initializes all weights with N(0, 0.02^2) and scales the weights of the layers that
    write into the residual stream (the attention output projection and the second MLP layer) by
    1 / sqrt(N), N = 2 * num_layers the number of residual branches, so the residual stream's
    variance grows by O(1) over the whole depth: Var(W) = stddev^2 / (2 num_layers). Plain normal;
    no fans.

    Args:
      num_layers: number of transformer blocks (each has two residual branches).
      stddev: the un-scaled standard deviation (0.02 in GPT-2).
      dtype: default dtype.

    Returns:
      ``init(key, shape, dtype=dtype, out_sharding=None)``, any shape.

    Examples:
      >>> proj = flax.linen.Dense(768, kernel_init=jwinit.gpt2_residual(12))   # std 0.00408
      >>> other = flax.linen.Dense(768, kernel_init=jwinit.normal(0.02))

    References:
      Radford, Wu, Child, Luan, Amodei & Sutskever 2019, "Language Models are Unsupervised
      Multitask Learners" (Section 2.3).
    """
    n = check_int(num_layers, "num_layers", minimum=1)
    check_real(stddev, "stddev", low=0, low_open=True)
    s = float(stddev) / math.sqrt(2 * n)
    return derived(normal(s, dtype), name="gpt2_residual", dtype=dtype,
                    extra={"stddev": s, "num_layers": n},
                    params={"num_layers": n, "stddev": stddev})


# --------------------------------------------------------------------------------------------
# T-Fixup (Huang, Perez, Ba & Volkovs 2020)

_STACKS = ("encoder", "decoder")


@register(
    distribution="Xavier uniform, scaled per role; embeddings normal",
    variance="(0.67^2 N^(-1/2) | (9N)^(-1/2)) * 2 / (fan_in + fan_out)", fan_mode="fan_avg",
    paper="Huang, Perez, Ba & Volkovs 2020 (T-Fixup)", kind="role",
    example={"num_layers": 6, "embed_dim": 512},
)
def t_fixup(
    num_layers: int,
    embed_dim: int,
    *,
    stack: str = "encoder",
    num_decoder_layers: int | None = None,
    dtype: DTypeLike = None,
    layout: str | None = None,
) -> dict[str, Initializer]:
    """T-Fixup initializers for a Post-LN-free transformer stack, by parameter role.

    Algorithm (Huang et al. 2020, Section 3.3): Xavier (Glorot uniform) init for every projection,
    N(0, d^(-1/2) ...) for the input embeddings, then

    * encoder: scale the value projection (v), the attention output projection (w) and the MLP
      weights by ``0.67 * N^(-1/4)``;
    * decoder: scale v, w (self- and cross-attention) and the MLP weights by ``(9N)^(-1/4)``;
    * input embeddings (of encoder and decoder): scale by ``(9N)^(-1/4)``, N the decoder depth.

    Query and key projections keep plain Xavier. Returned roles (Var(W) with F = 2 / (fan_in +
    fan_out), s the stack's scale):

    =====================  =================================================================
    ``'query'``, ``'key'`` Xavier uniform, Var = F
    ``'value'``            s * Xavier uniform, Var = s^2 F
    ``'attention_output'`` s * Xavier uniform, Var = s^2 F
    ``'mlp'``              s * Xavier uniform, Var = s^2 F (both MLP layers)
    ``'embedding'``        N(0, 1/d) * (9 N_dec)^(-1/4), Var = (9 N_dec)^(-1/2) / d
    ``'bias'``             zeros
    =====================  =================================================================

    The embedding std is d^(-1/2) as in the authors' code (``normal_(std=embed_dim ** -0.5)``);
    the paper's N(0, d^(-1/2)) is read as the std. The authors' fairseq code multiplies v by an
    extra sqrt(2) because fairseq initializes q/k/v with Xavier gain 1/sqrt(2); both then give v
    the variance s^2 F used here.

    Args:
      num_layers: N, the number of layers of this stack.
      embed_dim: d, the embedding width (for the embedding std d^(-1/2)).
      stack: ``'encoder'`` or ``'decoder'``.
      num_decoder_layers: the N of the embedding scale (9N)^(-1/4): the decoder depth of an
        encoder-decoder model (the paper scales both input embeddings by it). Defaults to
        `num_layers`.
      dtype: default dtype.
      layout: kernel layout, ``'flax'`` (default), ``'torch'`` or ``'equinox'``.

    Returns:
      ``dict`` role -> initializer.

    Examples:
      >>> enc = jwinit.t_fixup(6, 512, stack='encoder')
      >>> dec = jwinit.t_fixup(6, 512, stack='decoder')
      >>> mlp = flax.linen.Dense(2048, kernel_init=enc['mlp'], bias_init=enc['bias'])

    References:
      Huang, Perez, Ba & Volkovs 2020, "Improving Transformer Optimization Through Better
      Initialization" (ICML).
    """
    n = check_int(num_layers, "num_layers", minimum=1)
    d = check_int(embed_dim, "embed_dim", minimum=1)
    check_choice(stack, "stack", _STACKS, name="t_fixup")
    n_dec = n if num_decoder_layers is None else check_int(
        num_decoder_layers, "num_decoder_layers", minimum=1)
    s = 0.67 * n ** -0.25 if stack == "encoder" else (9 * n) ** -0.25
    emb = (9 * n_dec) ** -0.25
    facts = {"stack": stack, "num_layers": n}

    def xavier(role, factor):
        base = fan_scaled(1.0, "fan_avg", "uniform", dtype, layout, "glorot_uniform")
        return derived(base, name=f"t_fixup.{role}", factor=factor, dtype=dtype,
                        extra=dict(facts, role=role))

    roles = _transformer_roles(xavier, s, dtype, "t_fixup")
    roles["embedding"] = derived(normal(d ** -0.5, dtype), name="t_fixup.embedding", factor=emb,
                                  dtype=dtype, extra=dict(facts, role="embedding"))
    return roles


def _transformer_roles(make: Any, factor: float, dtype: Any, prefix: str) -> dict[str, Any]:
    """q and k unscaled; v, attention output and MLP scaled by `factor`; zero biases."""
    roles = {role: make(role, 1.0) for role in ("query", "key")}
    roles.update({role: make(role, factor) for role in ("value", "attention_output", "mlp")})
    roles["bias"] = named_constant(0, dtype, f"{prefix}.bias")
    return roles




# --------------------------------------------------------------------------------------------
# DeepNet / DeepNorm (Wang et al. 2022)


class DeepNormConstants(NamedTuple):
    """DeepNorm residual multiplier alpha, x_{l+1} = LN(alpha x_l + G(x_l)), and init gain beta."""

    alpha: float
    beta: float


def deepnorm_constants(
    num_encoder_layers: int = 0, num_decoder_layers: int = 0
) -> dict[str, DeepNormConstants]:
    """DeepNorm alpha and beta (Wang et al. 2022, Figure 2) for N encoder and M decoder layers.

    =================  ==========================  ==========================
    architecture       alpha                       beta
    =================  ==========================  ==========================
    encoder-only       (2N)^(1/4)                  (8N)^(-1/4)
    decoder-only       (2M)^(1/4)                  (8M)^(-1/4)
    encoder-decoder    enc: 0.81 (N^4 M)^(1/16)    enc: 0.87 (N^4 M)^(-1/16)
                       dec: (3M)^(1/4)             dec: (12M)^(-1/4)
    =================  ==========================  ==========================

    The architecture is read off which counts are non-zero. The reference implementation
    (microsoft/torchscale) uses the same alphas and divides by ``init_scale = 1 / beta``, with
    the encoder-decoder encoder's ``(N^4 M)^(1/16) / 1.15``, i.e. beta = 0.8696 (N^4 M)^(-1/16)
    rather than the table's rounded 0.87.

    Args:
      num_encoder_layers: N (0 for a decoder-only model).
      num_decoder_layers: M (0 for an encoder-only model).

    Returns:
      ``{'encoder': DeepNormConstants, 'decoder': DeepNormConstants}`` with the stacks present.

    Examples:
      >>> alpha, beta = jwinit.deepnorm_constants(0, 1000)['decoder']
      >>> round(alpha, 3), round(beta, 4)      # (2M)^(1/4), (8M)^(-1/4)
      (6.687, 0.1057)
    """
    n = check_int(num_encoder_layers, "num_encoder_layers", minimum=0)
    m = check_int(num_decoder_layers, "num_decoder_layers", minimum=0)
    if n == 0 and m == 0:
        raise ValueError(
            "`num_encoder_layers` and `num_decoder_layers` are both 0; give N > 0 for an "
            "encoder, M > 0 for a decoder, or both for an encoder-decoder."
        )
    if m == 0:
        return {"encoder": DeepNormConstants((2 * n) ** 0.25, (8 * n) ** -0.25)}
    if n == 0:
        return {"decoder": DeepNormConstants((2 * m) ** 0.25, (8 * m) ** -0.25)}
    return {
        "encoder": DeepNormConstants(0.81 * (n**4 * m) ** (1 / 16), 0.87 * (n**4 * m) ** (-1 / 16)),
        "decoder": DeepNormConstants((3 * m) ** 0.25, (12 * m) ** -0.25),
    }


@register(
    distribution="Xavier normal with gain beta (v, out, ffn) or 1 (q, k)",
    variance="beta^2 * 2 / (fan_in + fan_out)", fan_mode="fan_avg",
    paper="Wang et al. 2022 (DeepNet)", kind="role",
    example={"num_encoder_layers": 6, "num_decoder_layers": 6, "stack": "decoder"},
)
def deepnet(
    num_encoder_layers: int = 0,
    num_decoder_layers: int = 0,
    *,
    stack: str | None = None,
    dtype: DTypeLike = None,
    layout: str | None = None,
) -> dict[str, Initializer]:
    """DeepNet (Wang et al. 2022) initializers for one stack, by parameter role.

    DeepNorm replaces Post-LN's x + G(x) by LN(alpha x + G(x)) and initializes (Figure 2 of the
    paper) with ``xavier_normal_(w, gain=beta)`` the feed-forward weights, the value and the
    output projections, and with ``xavier_normal_(w, gain=1)`` the query and key projections:

        Var(W) = beta^2 * 2 / (fan_in + fan_out)   ('value', 'attention_output', 'mlp')
        Var(W) =          2 / (fan_in + fan_out)   ('query', 'key')

    plus ``'bias'`` (zeros). alpha and beta per architecture are in :func:`deepnorm_constants`
    (also in ``jwinit.describe(init, shape).extra``); alpha is a forward-pass multiplier, not an
    initializer.

    Where the reference code differs: microsoft/torchscale starts from fairseq's
    ``xavier_uniform_`` (uniform, not normal) with gain 1/sqrt(2) for q, k and v, then divides
    fc1, fc2, out_proj and v_proj by 1 / beta. So its v has gain beta / sqrt(2) and its q, k gain
    1 / sqrt(2), where the paper has beta and 1; and its encoder-decoder encoder beta is
    (N^4 M)^(-1/16) / 1.15. This function follows the paper.

    Args:
      num_encoder_layers: N (0 for a decoder-only model).
      num_decoder_layers: M (0 for an encoder-only model).
      stack: ``'encoder'`` or ``'decoder'``; may be omitted when only one stack exists.
      dtype: default dtype.
      layout: kernel layout, ``'flax'`` (default), ``'torch'`` or ``'equinox'``.

    Returns:
      ``dict`` role -> initializer with roles ``'query'``, ``'key'``, ``'value'``,
      ``'attention_output'``, ``'mlp'``, ``'bias'``.

    Examples:
      >>> dec = jwinit.deepnet(num_decoder_layers=200)              # decoder-only
      >>> alpha = jwinit.deepnorm_constants(0, 200)['decoder'].alpha
      >>> enc = jwinit.deepnet(18, 18, stack='encoder')             # encoder-decoder

    References:
      Wang, Ma, Dong, Huang, Zhang & Wei 2022, "DeepNet: Scaling Transformers to 1,000 Layers".
    """
    constants = deepnorm_constants(num_encoder_layers, num_decoder_layers)
    if stack is None:
        if len(constants) != 1:
            raise ValueError(
                "an encoder-decoder DeepNet has two stacks: pass `stack='encoder'` or "
                "`stack='decoder'`."
            )
        stack = next(iter(constants))
    check_choice(stack, "stack", _STACKS, name="deepnet")
    if stack not in constants:
        raise ValueError(
            f"`stack`={stack!r} but the model has no {stack} (num_encoder_layers="
            f"{num_encoder_layers}, num_decoder_layers={num_decoder_layers}); legal: "
            f"{tuple(constants)}."
        )
    alpha, beta = constants[stack]
    facts = {"stack": stack, "alpha": alpha, "beta": beta}

    def xavier_normal(role, factor):
        base = fan_scaled(1.0, "fan_avg", "normal", dtype, layout, "xavier_normal")
        return derived(base, name=f"deepnet.{role}", factor=factor, dtype=dtype,
                        extra=dict(facts, role=role))

    return _transformer_roles(xavier_normal, beta, dtype, "deepnet")


# --------------------------------------------------------------------------------------------
# whole-model rules (for jwinit.init_params)


#: where each Transformer role lives in `jwinit.models.Transformer` (and any model that names its
#: layers the same way): regular expressions on parameter paths
TRANSFORMER_PATHS = {
    "query": r"(^|/)attn/query/kernel$",
    "key": r"(^|/)attn/key/kernel$",
    "value": r"(^|/)attn/value/kernel$",
    "attention_output": r"(^|/)attn/out/kernel$",
    "mlp": r"(^|/)mlp_(in|out)/kernel$",
    "mlp_output": r"(^|/)mlp_out/kernel$",
    "embedding": r"(^|/)embed/embedding$",
    "bias": r"(^|/)(attn/\w+|mlp_(in|out))/bias$",
}


#: where each role lives in `jwinit.models.Decoder` (Llama-style names; no biases): regular
#: expressions on parameter paths. ``layer`` is block i's prefix, a format string with ``{i}``.
DECODER_PATHS = {
    "embedding": r"^embed/embedding$",
    "query": r"(^|/)query/kernel$",
    "key": r"(^|/)key/kernel$",
    "value": r"(^|/)value/kernel$",
    "attention_output": r"(^|/)out/kernel$",
    "mlp_input": r"(^|/)(gate|up)/kernel$",
    "mlp_gate": r"(^|/)gate/kernel$",
    "mlp_up": r"(^|/)up/kernel$",
    "mlp_output": r"(^|/)down/kernel$",
    "head": r"^head/kernel$",
    "norm": r"(^|/)\w*norm/scale$",
    "layer": r"^layer_{i}/",
}


def transformer_rules(roles: Mapping[str, Callable[..., Any]],
                      paths: Mapping[str, str] | None = None) -> dict[str, Callable[..., Any]]:
    """Rules for :func:`init_params` from a dict of role initializers (`jwinit.t_fixup`,
    `jwinit.deepnet`, ...) and where each role lives (`paths`, default ``TRANSFORMER_PATHS``: the
    names of `jwinit.models.Transformer`). Roles the dict does not have are skipped; parameters
    no rule matches (positional table, LayerNorms, head) keep the model's initialization."""
    where = dict(TRANSFORMER_PATHS if paths is None else paths)
    unknown = sorted(set(roles) - set(where))
    if unknown:
        raise ValueError(f"`roles` {unknown} have no path in `paths` ({sorted(where)}).")
    return {check_pattern(where[r], f"paths[{r!r}]"): init for r, init in roles.items()}


def t_fixup_rules(num_layers: int, embed_dim: int) -> dict[str, Callable[..., Any]]:
    """T-Fixup (Huang et al. 2020, Sec. 3.3) for an encoder without LayerNorm as rules: Xavier
    query/key, value/output/MLP scaled by 0.67 N^(-1/4), embeddings N(0, 1/d) scaled by
    (9N)^(-1/4), biases zero (see `jwinit.t_fixup`).

    Examples:
      >>> model = jwinit.models.Transformer(vocab_size=8, length=4, layers=2, dim=16, heads=2,
      ...                                   mlp_dim=32, output_dim=3, norm=None)
      >>> v = jwinit.init_params(model, jax.random.key(0), jnp.zeros((2, 4), jnp.int32),
      ...                        jwinit.t_fixup_rules(2, 16))
      >>> sorted(v['params']['block_0']['attn'])
      ['key', 'out', 'query', 'value']
    """
    return transformer_rules(t_fixup(num_layers, embed_dim))


def deepnet_rules(num_layers: int) -> dict[str, Callable[..., Any]]:
    """DeepNet (Wang et al. 2022) for a Post-LN encoder of `num_layers` blocks as rules: Xavier
    normal query/key, value/output/MLP with gain beta = (8N)^(-1/4), biases zero. The model must
    also use DeepNorm's residual scale alpha = (2N)^(1/4) (``Transformer(norm='post',
    alpha=jwinit.deepnorm_constants(N)['encoder'].alpha)``)."""
    return transformer_rules(deepnet(num_layers, 0, stack="encoder"))


def gpt2_rules(num_layers: int, stddev: float = 0.02, *, truncate: float | None = None,
               paths: Mapping[str, str] | None = None) -> RoleRules:
    """GPT-2 (Radford et al. 2019, Sec. 2.3) as rules: N(0, stddev^2) for every kernel and the
    embeddings, the residual projections (attention output, second MLP layer) scaled by
    1/sqrt(2 num_layers), biases zero.

    Args:
      num_layers: the number of blocks L (2L residual branches).
      stddev: 0.02 in GPT-2.
      truncate: None (GPT-2's plain normals) or a cutoff c in standard deviations: every draw
        is a normal truncated at +-c sigma of its own sigma (Megatron and OLMo use c = 3), never
        at absolute bounds.
      paths: where the roles live, ``{role: regular expression}``, over the default
        `TRANSFORMER_PATHS` (the names of `jwinit.models.Transformer`): roles
        'attention_output', 'mlp_output', 'embedding', 'kernel' (every other kernel, default
        r'kernel$') and 'bias'. For `jwinit.models.Decoder` pass ``paths=DECODER_PATHS``.

    Returns:
      `jwinit.rules.RoleRules` (a dict of rules): a role its pattern does not find in a model
      is an error naming it.

    Examples:
      >>> model = jwinit.models.Decoder(**jwinit.models.DECODER_SIZES['tiny'])
      >>> rules = jwinit.gpt2_rules(2, paths=jwinit.recipes.DECODER_PATHS)
      >>> v = jwinit.init_params(model, jax.random.key(0), jnp.zeros((1, 8), jnp.int32), rules)
      >>> round(float(v['params']['layer_1']['down']['kernel'].value.std()), 3)  # 0.02 / 2
      0.01
    """
    n = check_int(num_layers, "num_layers", minimum=1)
    check_real(stddev, "stddev", low=0, low_open=True)
    if truncate is not None:
        check_real(truncate, "truncate", low=0, low_open=True)
    where = role_paths(paths, {**TRANSFORMER_PATHS, "kernel": r"kernel$"})

    def draw(std: float) -> Callable[..., Any]:
        if truncate is None:
            return normal(std)
        return truncated_normal(std, lower=-float(truncate), upper=float(truncate))

    residual = gpt2_residual(n, stddev) if truncate is None else draw(
        float(stddev) / math.sqrt(2 * n))
    roles = {"attention_output": residual, "mlp_output": residual, "embedding": draw(stddev),
             "kernel": draw(stddev)}
    if paths is None or "bias" in paths:
        roles["bias"] = zeros()
    rules = {where[role]: init for role, init in roles.items()}
    cut = "" if truncate is None else f", truncated at {float(truncate):g} sigma"
    formulas = {"attention_output": f"N(0, std^2/(2L)){cut}",
                "mlp_output": f"N(0, std^2/(2L)){cut}",
                "embedding": f"N(0, std^2){cut}", "kernel": f"N(0, std^2){cut}",
                "bias": "zeros"}
    return RoleRules(rules, recipe="gpt2_rules", roles={where[r]: r for r in roles},
                     formulas={r: formulas[r] for r in roles},
                     source="Radford et al. 2019 (GPT-2), Sec. 2.3; openai/gpt-2 src/model.py")

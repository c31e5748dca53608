"""The LLM recipes (jwinit.recipes.*_rules) on jwinit.models.Decoder: every role's std is the
source's formula within 4 standard errors, truncated roles stop at their cutoff, the residual
stream's second moment at init follows each recipe's analytic sum over the blocks, and the
errors name the role a model lacks."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

import jwinit
from jwinit import recipes
from jwinit.models import Decoder
from jwinit.recipes import DECODER_PATHS

L, D, F, V, HEADS = 4, 128, 256, 1024, 4
T3 = recipes.TRUNCATED_STD_3  # std of N(0, 1) truncated at +-3
assert T3 == pytest.approx(__import__("scipy.stats").stats.truncnorm.std(-3, 3), rel=1e-12)


def expected(recipe, path):
    """(std, cutoff in stds or None) of the parameter at `path`, written from the sources'
    formulas (not from jwinit's)."""
    role = path.split("/")[-2] if path.startswith("layer_") else path.split("/")[0]
    i = int(path.split("/")[0][6:]) if path.startswith("layer_") else None
    out = {"out": "o", "down": "o"}.get(role, "i")
    s = 0.02
    if recipe == "gpt2":
        return (s / math.sqrt(2 * L) if out == "o" else s), None
    if recipe == "mitchell":
        if role == "out":
            return 1 / math.sqrt(2 * D * (i + 1)) * T3, 3
        if role == "down":
            return 1 / math.sqrt(2 * F * (i + 1)) * T3, 3
        return 1 / math.sqrt(D) * T3, 3
    if recipe == "megatron":
        if role == "head":
            return D**-0.5 * T3, 3
        return (s / math.sqrt(2 * L) if out == "o" else s) * T3, 3
    if recipe == "neox":
        return (2 / L / math.sqrt(D) if out == "o" else math.sqrt(2 / (5 * D))), None
    if recipe in ("llama", "llama_depth"):
        if role == "embed":
            return 1.0, None
        if role == "head":
            return D**-0.5 * T3, 3
        if role in ("out", "up", "down"):
            k = 2 * L if recipe == "llama" else 2 * (i + 1)
            return s / math.sqrt(k) * T3, 3
        return s * T3, 3
    if recipe == "normalized":
        if role == "embed":
            return D**-0.5, None
        if role in ("out", "down"):
            return D**-0.5 / math.sqrt(2 * L) * T3, 3
        return D**-0.5 * T3, 3
    if recipe == "normal":
        return s * T3, 3
    raise AssertionError(recipe)


RECIPES = {
    "gpt2": lambda: jwinit.gpt2_rules(L, paths=DECODER_PATHS),
    "mitchell": lambda: recipes.olmo_mitchell_rules(L, D, F),
    "megatron": lambda: recipes.megatron_rules(L, D),
    "neox": lambda: recipes.neox_rules(L, D),
    **{m: (lambda m=m: recipes.olmo_core_rules(m, L, D)) for m in recipes.OLMO_CORE_METHODS},
}
MODEL = Decoder(vocab_size=V, dim=D, layers=L, heads=HEADS, mlp_dim=F)
TOKENS = jnp.zeros((1, 1), jnp.int32)


def params(model, rules, seed):
    v = jwinit.init_params(model, jax.random.key(seed), TOKENS, rules)
    flat = traverse_util.flatten_dict(dict(v["params"]))
    return v, {"/".join(k): np.asarray(x.unbox(), np.float64) for k, x in flat.items()}


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_every_role_has_the_sources_std_and_stops_at_its_cutoff(recipe):
    _, flat = params(MODEL, RECIPES[recipe](), 0)
    checked = 0
    for path, w in flat.items():
        if path.endswith("/scale"):
            continue  # the norms keep the model's ones (no recipe covers them)
        std, cutoff = expected(recipe, path)
        n = w.size
        c = w - w.mean()
        var, m4 = (c**2).mean(), (c**4).mean()
        z = (var - std**2) / math.sqrt((m4 - var**2) / n)
        assert abs(z) <= 4, (recipe, path, math.sqrt(var), std, z)
        if cutoff is not None:
            pre = std / T3  # the untruncated normal's sigma: the cutoff is in its units
            assert np.abs(w).max() <= cutoff * pre * (1 + 1e-6), (recipe, path)
            # 2.7 sigma is passed by a truncated draw with probability 0.0042 per entry
            assert np.abs(w).max() >= 2.7 * pre, (recipe, path, np.abs(w).max() / pre)
        checked += 1
    assert checked == 2 + 7 * L


def _silu_second_moment(s):
    """E[silu(g)^2], g ~ N(0, s^2), by Gauss-Hermite quadrature (200 nodes)."""
    x, w = np.polynomial.hermite_e.hermegauss(200)
    g = s * x
    return float(np.sum(w * (g / (1 + np.exp(-g))) ** 2) / math.sqrt(2 * math.pi))


def _stream(model, variables, tokens):
    """The residual stream after every block, (tokens, 1, dim)."""
    from jwinit.models import DecoderBlock

    _, state = model.apply(variables, tokens,
                           capture_intermediates=lambda m, _: isinstance(m, DecoderBlock))
    inter = state["intermediates"]
    return [np.asarray(inter[f"layer_{i}"]["__call__"][0], np.float64) for i in range(L)]


@pytest.mark.parametrize("recipe, model_kw, extra", [
    ("gpt2", {}, None), ("mitchell", {}, None), ("megatron", {}, None), ("neox", {}, None),
    ("llama", {}, None), ("llama_depth", {}, None), ("normalized", {}, None),
    ("megatron", {"embed_norm": True}, "small"),
    ("megatron", {"embed_multiplier": math.sqrt(D)}, "gemma"),
])
def test_the_residual_stream_at_init_follows_each_recipes_analytic_sum(recipe, model_kw, extra):
    """Tokens of length 1 (attention is then its value path), pre-norm blocks: block l adds
    dim^2 s_o^2 s_v^2 rho (attention) + mlp_dim s_down^2 E[silu(g)^2] dim s_up^2 rho (MLP), with
    g ~ N(0, dim s_gate^2 rho) and rho = m / (m + eps) the RMSNorm's exact output scale at the
    block's input; E[h_0^2] is the embedding's second moment (times the multiplier^2; after a
    LayerNorm v / (v + eps)). The mean over 8 seeds of the measured E[h_l^2] is the sum within 4
    standard errors of the seeds, at every depth."""
    model = Decoder(vocab_size=V, dim=D, layers=L, heads=HEADS, mlp_dim=F, **model_kw)
    rules = RECIPES[recipe]()
    if extra == "small":
        rules = {**recipes.small_embedding_rules(), **rules}
    elif extra == "gemma":
        rules = {**recipes.gemma_embedding_rules(), **rules}
    tokens = jnp.arange(V, dtype=jnp.int32)[:, None]  # every token once, length 1
    measured, predicted = [], []
    for seed in range(8):
        v, flat = params(model, rules, seed)
        emb = flat["embed/embedding"]
        if extra == "small":
            var = emb.var(axis=1)
            h0 = float(np.mean(var / (var + 1e-6)))
        else:
            h0 = float(np.mean(emb**2)) * model_kw.get("embed_multiplier", 1.0) ** 2
        outs = _stream(model, v, tokens)
        stream = [h0] + [float(np.mean(h**2)) for h in outs]
        inputs = [None] + outs[:-1]
        pred = [h0]
        for i in range(L):
            if i == 0:
                e = emb * model_kw.get("embed_multiplier", 1.0)
                if extra == "small":
                    e = (e - e.mean(1, keepdims=True)) / np.sqrt(e.var(1, keepdims=True) + 1e-6)
                m = np.mean(e**2, axis=1)
            else:
                m = np.mean(inputs[i] ** 2, axis=(1, 2))
            rho = float(np.mean(m / (m + 1e-6)))

            def s(name, i=i):
                return expected(recipe, f"layer_{i}/{name}/kernel")[0]

            attn = D * s("out") ** 2 * D * s("value") ** 2 * rho
            mlp = (F * s("down") ** 2 * _silu_second_moment(math.sqrt(D * rho) * s("gate"))
                   * D * s("up") ** 2 * rho)
            pred.append(pred[-1] + attn + mlp)
        measured.append(stream)
        predicted.append(pred)
    diff = np.asarray(measured) - np.asarray(predicted)
    se = diff.std(axis=0, ddof=1) / math.sqrt(len(diff))
    mean_pred = np.mean(predicted, axis=0)
    assert np.all(np.abs(diff.mean(axis=0)) <= 4 * se + 1e-6 * mean_pred), (
        recipe, diff.mean(axis=0), se, mean_pred)
    assert mean_pred[-1] > mean_pred[0]  # the blocks add to the stream


def test_a_role_the_model_lacks_is_named_with_the_paths_seen():
    renamed = {"attention_output": r"(^|/)attn_out/kernel$"}  # a user's name, not the Decoder's
    with pytest.raises(ValueError) as e:
        jwinit.init_params(MODEL, jax.random.key(0), TOKENS,
                           recipes.megatron_rules(L, D, paths=renamed))
    msg = str(e.value)
    assert "megatron_rules cannot find the role 'attention_output'" in msg
    assert "layer_0/out/kernel" in msg and "paths=" in msg
    with pytest.raises(ValueError, match="'{i}'"):
        recipes.olmo_mitchell_rules(L, D, F, paths={"layer": r"^block_\d+/"})
    with pytest.raises(ValueError, match="`method`"):
        recipes.olmo_core_rules("mitchell", L, D)


def test_a_users_own_names_by_paths():
    """A model that names its blocks 'blocks_<i>' and its output projection 'o_proj': the same
    values as the Decoder's names give, moved by the paths mapping."""
    import flax.linen as nn

    class Mine(nn.Module):
        @nn.compact
        def __call__(self, x):
            for i in range(2):
                x = x + nn.Dense(D, use_bias=False, name=f"blocks_{i}_o_proj")(x)
            return x

    paths = {"layer": r"^blocks_{i}_", "attention_output": r"o_proj/kernel$"}
    rules = recipes.olmo_mitchell_rules(2, D, F, paths=paths)
    rules = {k: v for k, v in rules.items() if rules.roles[k].startswith("attention_output")}
    v = jwinit.init_params(Mine(), jax.random.key(0), jnp.ones((1, D)), rules)
    for i in range(2):
        w = np.asarray(v["params"][f"blocks_{i}_o_proj"]["kernel"])
        assert w.std() == pytest.approx(1 / math.sqrt(2 * D * (i + 1)) * T3, rel=0.05)

"""Initializing whole models by parameter role (`jwinit.init_params`, `jwinit.fixup_rules`) and
LSUV on models whose layer names do not sort in call order, or with BatchNorm."""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import jwinit
from jwinit.models import ResidualMLP

X = jax.random.normal(jax.random.key(42), (64, 12))


def _flat(tree):
    return {jax.tree_util.keystr(p): v for p, v in jax.tree_util.tree_flatten_with_path(tree)[0]}


def test_nested_rules_first_match_wins_and_the_rest_is_model_init():
    model = ResidualMLP(blocks=3, width=32, output_dim=5)
    key = jax.random.key(0)
    rules = {r"block_1/Dense_0/kernel$": jwinit.zeros(),
             r"block_\d+/Dense_0/kernel$": jwinit.orthogonal(),
             r"head/bias$": jwinit.constant(0.5)}
    v = jwinit.init_params(model, key, X, rules)
    ref = jax.jit(model.init)(key, X)
    got, want = _flat(v), _flat(ref)
    assert got.keys() == want.keys()
    changed = {k for k in got if not np.array_equal(got[k], want[k])}
    assert changed == {"['params']['block_0']['Dense_0']['kernel']",
                       "['params']['block_1']['Dense_0']['kernel']",
                       "['params']['block_2']['Dense_0']['kernel']",
                       "['params']['head']['bias']"}
    assert not np.any(v["params"]["block_1"]["Dense_0"]["kernel"])  # the first rule won
    for b in (0, 2):
        k = v["params"][f"block_{b}"]["Dense_0"]["kernel"]
        np.testing.assert_allclose(k.T @ k, np.eye(32), atol=2e-6)
    np.testing.assert_array_equal(v["params"]["head"]["bias"], np.full(5, 0.5, np.float32))


def test_a_draw_depends_on_the_key_and_path_only():
    model = ResidualMLP(blocks=2, width=16, output_dim=3)
    key = jax.random.key(1)
    a = jwinit.init_params(model, key, X, {r"block_0/Dense_1/kernel$": jwinit.he_normal()})
    b = jwinit.init_params(model, key, X, {r"head/kernel$": jwinit.zeros(),
                                           r"Dense_1/kernel$": jwinit.he_normal()})
    np.testing.assert_array_equal(a["params"]["block_0"]["Dense_1"]["kernel"],
                                  b["params"]["block_0"]["Dense_1"]["kernel"])
    c = jwinit.init_params(model, jax.random.key(2), X,
                           {r"block_0/Dense_1/kernel$": jwinit.he_normal()})
    assert not np.array_equal(a["params"]["block_0"]["Dense_1"]["kernel"],
                              c["params"]["block_0"]["Dense_1"]["kernel"])


def test_a_loop_over_seeds_compiles_once_and_draws_what_a_fresh_program_draws():
    traced = []
    he = jwinit.he_normal()

    def counting(key, shape, dtype=jnp.float32, out_sharding=None):
        traced.append(shape)  # runs once per trace, not per call
        return he(key, shape, dtype)

    model = ResidualMLP(blocks=2, width=16, output_dim=3)
    rules = {r"Dense_1/kernel$": counting}
    got = [jwinit.init_params(model, jax.random.key(s), X, rules) for s in range(3)]
    # the two matched kernels (one initializer, one shape) are one draw vmapped over their
    # keys: traced once, for the three seeds
    assert traced == [(16, 16)]
    for s, v in enumerate(got):
        jwinit.rules._PROGRAMS.clear()
        fresh = jwinit.init_params(model, jax.random.key(s), X, rules)
        assert jax.tree.all(jax.tree.map(np.array_equal, v, fresh))
    assert len(traced) == 1 + 3
    # the vmapped draw is each kernel's own: the initializer at the kernel's key by path
    for path in ("block_0/Dense_1/kernel", "block_1/Dense_1/kernel"):
        block, dense, _ = path.split("/")
        np.testing.assert_array_equal(
            got[1]["params"][block][dense]["kernel"],
            he(jwinit.rules.path_key(jax.random.key(1), path), (16, 16)))
    # another model or other rules are another program: no stale reuse
    wider = jwinit.init_params(ResidualMLP(blocks=2, width=32, output_dim=3), jax.random.key(0),
                               X, rules)
    assert wider["params"]["block_0"]["Dense_1"]["kernel"].shape == (32, 32)
    zeros = jwinit.init_params(model, jax.random.key(0), X, {r"Dense_1/kernel$": jwinit.zeros()})
    assert not np.any(zeros["params"]["block_0"]["Dense_1"]["kernel"])


def test_subset_reinit_of_given_variables_leaves_every_other_leaf_bit_identical():
    model = ResidualMLP(blocks=2, width=16, output_dim=4, norm="batch")
    pretrained = model.init(jax.random.key(3), X)
    pretrained = jax.tree.map(lambda a: a + 0.25, pretrained)  # not what model.init gives
    new = jwinit.init_params(model, jax.random.key(4), X, {r"^head/": jwinit.zeros()},
                             variables=pretrained)
    before, after = _flat(pretrained), _flat(new)
    assert before.keys() == after.keys()
    for k in before:
        if k.startswith("['params']['head']"):
            assert not np.any(after[k])
        else:
            assert after[k] is before[k] or np.array_equal(after[k], before[k]), k
    assert "batch_stats" in new


def test_nnx_model_is_updated_in_place():
    model = nnx.Sequential(nnx.Linear(12, 16, rngs=nnx.Rngs(0)), nnx.relu,
                           nnx.Linear(16, 3, rngs=nnx.Rngs(1)))
    kept = np.asarray(model.layers[0].kernel[...])
    out = jwinit.init_params(model, jax.random.key(5), None, {r"layers/2/kernel$": jwinit.zeros()})
    assert out is model
    assert not np.any(model.layers[2].kernel[...])
    np.testing.assert_array_equal(model.layers[0].kernel[...], kept)
    assert jwinit.param_paths(model) == ["layers/0/bias", "layers/0/kernel", "layers/2/bias",
                                         "layers/2/kernel"]


@pytest.mark.parametrize("rules, variables, error, words", [
    ({r"block_9/": jwinit.zeros()}, None, ValueError, ["block_9/", "matches no parameter"]),
    ({r"head/(": jwinit.zeros()}, None, ValueError, ["head/(", "regular expression"]),
    ({r"head/": jwinit.he_normal}, None, TypeError, ["jwinit.he_normal()", "head/"]),
    ({r"head/": "zeros"}, None, TypeError, ["head/", "initializer"]),
    ({}, None, TypeError, ["`rules`", "non-empty"]),
    ({r"head/": jwinit.zeros()}, "other", ValueError, ["`variables`", "not this model"]),
    ({r"head/": jwinit.zeros()}, {"batch_stats": {}}, ValueError, ["'params'"]),
])
def test_bad_rules_and_variables_fail_early(rules, variables, error, words):
    model = ResidualMLP(blocks=1, width=8, output_dim=2)
    if variables == "other":
        variables = ResidualMLP(blocks=2, width=8, output_dim=2).init(jax.random.key(0), X)
    with pytest.raises(error) as e:
        jwinit.init_params(model, jax.random.key(0), X, rules, variables=variables)
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def test_bad_batch_and_model_without_parameters():
    with pytest.raises(ValueError, match=r"`model.init` failed on `x` of shape \(\)"):
        jwinit.init_params(ResidualMLP(blocks=1, width=8, output_dim=2), jax.random.key(0),
                           jnp.float32(1.0), {"head": jwinit.zeros()})

    class NoParams(nn.Module):
        @nn.compact
        def __call__(self, x):
            return x

    with pytest.raises(ValueError, match="has no parameters"):
        jwinit.init_params(NoParams(), jax.random.key(0), X, {"kernel": jwinit.zeros()})
    with pytest.raises(TypeError, match="`model`"):
        jwinit.init_params("resnet", jax.random.key(0), X, {"kernel": jwinit.zeros()})


def _head_input(model, v, x):
    """What the head receives: phi(h_L), the residual stream after the last block."""
    seen = {}

    def keep(next_fun, args, kwargs, context):
        if context.method_name == "__call__" and context.module.name == "head":
            seen["head"] = args[0]
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(keep):
        model.apply(v, x)
    return seen["head"]


@pytest.mark.parametrize("blocks", [4, 16, 64])
def test_fixup_keeps_the_residual_stream_of_any_depth_at_the_stem(blocks):
    """Fixup's zero branch outputs: h_L = h_0 exactly, so E[h_L^2] is the stem's at any depth;
    He-initialized branches double E[h^2] per block (E[h + F(h)]^2 = 2 E[h^2] for ReLU)."""
    x = jax.random.normal(jax.random.key(7), (256, 12))
    model = ResidualMLP(blocks=blocks, width=128, output_dim=10, kernel_init=jwinit.he_normal())
    fix = jwinit.init_params(model, jax.random.key(8), x, jwinit.fixup_rules(blocks, 2))
    head_in = _head_input(model, fix, x)
    h0 = x @ fix["params"]["stem"]["kernel"] + fix["params"]["stem"]["bias"][None, :]
    np.testing.assert_array_equal(head_in, jax.nn.relu(h0))  # every branch adds exactly zero
    assert not np.any(model.apply(fix, x))                   # and the classifier starts at zero
    scale = jwinit.fixup_scale(blocks, 2)
    k = fix["params"]["block_0"]["Dense_0"]["kernel"]
    # the first branch layer is He normal scaled by L^(-1/2): its variance, to 4 standard errors
    var = float(jnp.var(k))
    want = 2.0 / 128 * scale**2
    assert abs(var - want) < 4 * want * math.sqrt(2 / k.size)
    if blocks == 4:
        # He: E[h_{l+1}^2] = E[h_l^2] + E[F(h_l)^2] = 2 E[h_l^2] over the weights, so
        # E[relu(h_L)^2] / E[relu(h_0)^2] = 2^L (relu halves both: the h's are symmetric). The
        # ratio of the means over 32 seeds, within 4 standard errors (delta method).
        a, b = [], []
        for seed in range(32):
            he = model.init(jax.random.key(100 + seed), x)
            h0 = x @ he["params"]["stem"]["kernel"] + he["params"]["stem"]["bias"][None, :]
            a.append(float(jnp.mean(_head_input(model, he, x) ** 2)))
            b.append(float(jnp.mean(jax.nn.relu(h0) ** 2)))
        a, b = np.asarray(a), np.asarray(b)
        ratio = a.mean() / b.mean()
        se = ratio * math.sqrt(np.var(a / a.mean() - b / b.mean(), ddof=1) / len(a))
        assert abs(ratio - 2.0**blocks) < 4 * se, (ratio, se)


def test_lsuv_follows_call_order_with_names_that_do_not_sort():
    """14 layers named so that sorted order is not call order: every layer reaches unit
    variance (a jitted dict comes back sorted; LSUV must still rescale in call order)."""
    names = [f"layer_{c}" for c in "nmlkjihgfedcba"]  # called n, m, ..., a: reverse sorted

    class Deep(nn.Module):
        @nn.compact
        def __call__(self, x):
            for i, name in enumerate(names):
                x = nn.Dense(32, name=name, kernel_init=jwinit.normal(0.01))(x)
                if i < len(names) - 1:
                    x = nn.relu(x)
            return x

    model = Deep()
    x = jax.random.normal(jax.random.key(0), (256, 32))
    v = jwinit.lsuv(model, x, model.init(jax.random.key(1), x), tol=0.02)
    report = jwinit.signal_report(model, x, v)
    assert [layer.path for layer in report.layers] == [(n,) for n in names]
    for layer in report.layers:
        assert abs(layer.variance - 1.0) <= 0.02 + 1e-6, (layer.path, layer.variance)


def test_lsuv_on_a_cnn_with_batchnorm_in_training_mode():
    class CNN(nn.Module):
        @nn.compact
        def __call__(self, x, train: bool = False):
            for _ in range(3):
                x = nn.Conv(16, (3, 3), kernel_init=jwinit.normal(0.01))(x)
                x = nn.BatchNorm(use_running_average=not train)(x)
                x = nn.relu(x)
            return nn.Dense(10, kernel_init=jwinit.normal(0.01))(x.mean(axis=(1, 2)))

    model = CNN()
    x = jax.random.normal(jax.random.key(0), (32, 8, 8, 3))
    v0 = model.init(jax.random.key(1), x)
    v = jwinit.lsuv(model, x, v0, tol=0.02, apply_kwargs={"train": True})
    for a, b in zip(jax.tree.leaves(v0["batch_stats"]), jax.tree.leaves(v["batch_stats"]),
                    strict=True):
        np.testing.assert_array_equal(a, b)  # running statistics not corrupted
    report = jwinit.signal_report(model, x, v, apply_kwargs={"train": True})
    assert len(report.layers) == 4
    for layer in report.layers:
        assert abs(layer.variance - 1.0) <= 0.02 + 1e-6, (layer.path, layer.variance)


def test_mup_rules_variances_by_role():
    """Readout Var = base / (width fan_in); input and hidden 1 / fan_in; biases zero. Each
    empirical variance within 4 standard errors (Var of a sample variance: 2 sigma^4 / n)."""
    model = jwinit.models.MLP(depth=2, width=512, output_dim=64)
    v = jwinit.init_params(model, jax.random.key(0), X,
                           jwinit.mup_rules(64, 512, output=r"^Dense_2/"))
    want = {"Dense_0": 1 / 12, "Dense_1": 1 / 512, "Dense_2": 64 / 512 / 512}
    for name, var in want.items():
        k = v["params"][name]["kernel"]
        assert abs(float(jnp.var(k)) - var) < 4 * var * math.sqrt(2 / k.size), name
        assert not np.any(v["params"][name]["bias"])
    assert jwinit.mup_roles(v["params"], output=r"^Dense_2/") == {
        "Dense_0": {"bias": "bias", "kernel": "input"},
        "Dense_1": {"bias": "bias", "kernel": "hidden"},
        "Dense_2": {"bias": "bias", "kernel": "output"}}


@pytest.mark.parametrize("kind, scales", [("sgd", {"input": 4.0, "hidden": 1.0, "output": 0.25,
                                                   "bias": 4.0}),
                                          ("adam", {"input": 1.0, "hidden": 0.25,
                                                    "output": 0.25, "bias": 1.0})])
def test_mup_optimizer_scales_each_role_learning_rate(kind, scales):
    """One step: SGD moves each parameter by lr * scale * g exactly; Adam's first step is
    lr * scale * g / (|g| + eps), i.e. lr * scale per coordinate."""
    import optax

    model = jwinit.models.MLP(depth=2, width=256, output_dim=3)
    params = model.init(jax.random.key(0), X)["params"]
    grads = jax.tree.map(lambda p: jnp.full_like(p, 0.5), params)
    factory = optax.sgd if kind == "sgd" else optax.adam
    tx = jwinit.mup_optimizer(factory, 0.1, 64, 256, output=r"^Dense_2/", kind=kind)
    with jax.numpy_dtype_promotion("standard"):  # optax's Adam mixes int32 counts and floats
        updates, _ = tx.update(grads, tx.init(params), params)
    roles = jwinit.mup_roles(params, output=r"^Dense_2/")
    for (path, u), role in zip(jax.tree_util.tree_flatten_with_path(updates)[0],
                               jax.tree.leaves(roles), strict=True):
        want = 0.1 * scales[role] * (0.5 if kind == "sgd" else 1.0)
        np.testing.assert_allclose(-np.asarray(u), want, rtol=1e-5, err_msg=str(path))


@pytest.mark.parametrize("call, error, words", [
    (lambda: jwinit.mup_rules(64, 256, output="Dense_2/("), ValueError, ["`output`", "Dense_2/("]),
    (lambda: jwinit.mup_rules(64, 256, output=3), TypeError, ["`output`", "3"]),
    (lambda: jwinit.mup_optimizer("adam", 0.1, 64, 256, output="x"), TypeError,
     ["`optimizer`", "optax"]),
    (lambda: jwinit.mup_optimizer(__import__("optax").adam, 0.1, 64, 256, output="x",
                                  kind="rmsprop"), ValueError, ["rmsprop", "adam", "sgd"]),
    (lambda: jwinit.mup_optimizer(__import__("optax").adam, -1.0, 64, 256, output="x"),
     ValueError, ["`learning_rate`", "-1.0"]),
])
def test_mup_bad_inputs(call, error, words):
    with pytest.raises(error) as e:
        call()
    for w in words:
        assert w in str(e.value), (w, str(e.value))


TOKENS = jax.random.randint(jax.random.key(9), (16, 8), 0, 32)


def _var_ok(a, want):
    """Empirical variance within 4 standard errors (Var of a sample variance ~ 2 sigma^4 / n)."""
    a = np.asarray(a, np.float64)
    return abs(a.var() - want) < 4 * want * math.sqrt(2 / a.size)


def _transformer(norm, alpha=1.0, layers=4):
    return jwinit.models.Transformer(vocab_size=32, length=8, layers=layers, dim=128, heads=4,
                                     mlp_dim=256, output_dim=5, norm=norm, alpha=alpha)


def test_t_fixup_rules_scale_each_role():
    n, d = 4, 128
    model = _transformer(None, layers=n)
    v = jwinit.init_params(model, jax.random.key(0), TOKENS, jwinit.t_fixup_rules(n, d))
    s2 = (0.67 * n ** -0.25) ** 2
    for b in range(n):
        block = v["params"][f"block_{b}"]
        for name, want in (("query", 1 / d), ("key", 1 / d), ("value", s2 / d), ("out", s2 / d)):
            assert _var_ok(block["attn"][name]["kernel"], want), (b, name)
            assert not np.any(block["attn"][name]["bias"])
        assert _var_ok(block["mlp_in"]["kernel"], s2 * 2 / (d + 256))
        assert _var_ok(block["mlp_out"]["kernel"], s2 * 2 / (d + 256))
    assert _var_ok(v["params"]["embed"]["embedding"], (9 * n) ** -0.5 / d)
    ref = jax.jit(model.init)(jax.random.key(0), TOKENS)["params"]
    np.testing.assert_array_equal(v["params"]["head"]["kernel"], ref["head"]["kernel"])
    np.testing.assert_array_equal(v["params"]["pos_embed"], ref["pos_embed"])


def test_deepnet_and_gpt2_rules():
    n, d = 4, 128
    alpha = jwinit.deepnorm_constants(n)["encoder"].alpha
    model = _transformer("post", alpha=alpha, layers=n)
    v = jwinit.init_params(model, jax.random.key(1), TOKENS, jwinit.deepnet_rules(n))
    beta2 = (8 * n) ** -0.5
    attn = v["params"]["block_2"]["attn"]
    assert _var_ok(attn["value"]["kernel"], beta2 / d) and _var_ok(attn["out"]["kernel"], beta2 / d)
    assert _var_ok(attn["query"]["kernel"], 1 / d)
    g = jwinit.init_params(_transformer("pre", layers=n), jax.random.key(2), TOKENS,
                           jwinit.gpt2_rules(n))["params"]
    assert _var_ok(g["block_1"]["attn"]["out"]["kernel"], 0.02**2 / (2 * n))
    assert _var_ok(g["block_1"]["mlp_out"]["kernel"], 0.02**2 / (2 * n))
    assert _var_ok(g["block_1"]["mlp_in"]["kernel"], 0.02**2)
    assert _var_ok(g["embed"]["embedding"], 0.02**2)


def test_signal_report_on_a_transformer_a_resnet_and_nnx_under_jit():
    """Every kernel layer reported, in call order, with finite statistics; the report is the same
    computed eagerly and inside jax.jit (as a pure function of the variables)."""
    model = _transformer(None)
    v = jwinit.init_params(model, jax.random.key(0), TOKENS, jwinit.t_fixup_rules(4, 128))
    report = jwinit.signal_report(model, TOKENS, v)
    names = ["/".join(map(str, layer.path)) for layer in report.layers]
    assert names[:6] == ["block_0/attn/query", "block_0/attn/key", "block_0/attn/value",
                         "block_0/attn/out", "block_0/mlp_in", "block_0/mlp_out"]
    assert names[-1] == "head" and len(names) == 4 * 6 + 1
    assert np.all(np.isfinite(report.second_moments)) and np.all(report.second_moments > 0)

    resnet = ResidualMLP(blocks=3, width=32, output_dim=4, norm="batch")
    rv = resnet.init(jax.random.key(0), X)
    eager = jwinit.signal_report(resnet, X, rv, apply_kwargs={"train": True})
    jitted = jax.jit(lambda v: jwinit.signal_report(resnet, X, v, apply_kwargs={"train": True}))
    traced = jitted(rv)
    assert [layer.path for layer in traced.layers] == [layer.path for layer in eager.layers]
    np.testing.assert_allclose(traced.second_moments, eager.second_moments, rtol=1e-5)
    np.testing.assert_allclose(traced.grad_second_moments, eager.grad_second_moments, rtol=1e-5)
    assert len(eager.layers) == 1 + 3 * 2 + 1

    net = nnx.Sequential(nnx.Linear(12, 32, rngs=nnx.Rngs(0)), nnx.LayerNorm(32, rngs=nnx.Rngs(1)),
                         nnx.relu, nnx.Linear(32, 4, rngs=nnx.Rngs(2)))
    r = jwinit.signal_report(net, X)
    assert [layer.path for layer in r.layers] == [("layers", 0), ("layers", 3)]


def _unit_stats(out):
    o = np.asarray(out, np.float64).reshape(-1, out.shape[-1])
    return o.mean(axis=0), o.var(axis=0)


def test_weight_norm_init_gives_every_unit_zero_mean_unit_variance_in_call_order():
    """An exact identity: after the init, every layer's output units have mean 0 and variance 1
    on the batch (float32 rounding), for a deep MLP with names out of sorted order and a CNN."""
    names = [f"layer_{c}" for c in "fedcba"]

    class Deep(nn.Module):
        @nn.compact
        def __call__(self, x):
            for i, name in enumerate(names):
                x = nn.Dense(48, name=name, kernel_init=jwinit.normal(0.3))(x)
                x = nn.relu(x) if i < len(names) - 1 else x
            return x

    x = 2.0 + jax.random.normal(jax.random.key(0), (512, 12))
    model = Deep()
    v = jwinit.weight_norm_init(model, x, model.init(jax.random.key(1), x))
    for layer in jwinit.signal_report(model, x, v).layers:
        assert abs(layer.mean) < 1e-4 and abs(layer.variance - 1) < 1e-3, layer
    mean, var = _unit_stats(model.apply(v, x))
    np.testing.assert_allclose(mean, 0, atol=1e-4)
    np.testing.assert_allclose(var, 1, atol=1e-3)

    cnn = nn.Sequential([nn.Conv(8, (3, 3)), nn.relu, nn.Conv(4, (3, 3))])
    xi = jax.random.normal(jax.random.key(2), (16, 8, 8, 3))
    vc = jwinit.weight_norm_init(cnn, xi, cnn.init(jax.random.key(3), xi))
    mean, var = _unit_stats(cnn.apply(vc, xi))
    np.testing.assert_allclose(mean, 0, atol=1e-4)
    np.testing.assert_allclose(var, 1, atol=1e-3)


def test_weight_norm_init_nnx_and_errors():
    net = nnx.Sequential(nnx.Linear(12, 32, rngs=nnx.Rngs(0)), nnx.relu,
                         nnx.Linear(32, 4, rngs=nnx.Rngs(1)))
    assert jwinit.weight_norm_init(net, X) is net
    mean, var = _unit_stats(net(X))
    np.testing.assert_allclose(mean, 0, atol=1e-4)
    np.testing.assert_allclose(var, 1, atol=1e-3)

    dead = nn.Sequential([nn.Dense(8, kernel_init=jwinit.zeros()), nn.relu, nn.Dense(3)])
    with pytest.raises(ValueError, match="zero or non-finite variance"):
        jwinit.weight_norm_init(dead, X, dead.init(jax.random.key(0), X))
    nobias = nn.Sequential([nn.Dense(8, use_bias=False)])
    with pytest.raises(ValueError, match="no bias"):
        jwinit.weight_norm_init(nobias, X + 5.0, nobias.init(jax.random.key(0), X))


def _linear_reconstruction_error(code, a):
    """min over (D, d) of mean ||code D + d - a||^2 / mean ||a - mean a||^2 (least squares)."""
    c = np.concatenate([np.asarray(code, np.float64), np.ones((code.shape[0], 1))], axis=1)
    a = np.asarray(a, np.float64)
    coef, *_ = np.linalg.lstsq(c, a, rcond=None)
    return float(np.mean((c @ coef - a) ** 2) / np.mean((a - a.mean(axis=0)) ** 2))


def test_greedy_pretraining_learns_codes_that_keep_the_input():
    """A 16-unit sigmoid layer on the 64-pixel digits: the best linear reconstruction of the
    input from its codes comes close to the principal-subspace optimum after pre-training (the
    autoencoder finds a principal subspace), not from the random init; the readout is
    untouched."""
    data = jwinit.data.digits()
    x = jnp.asarray(data.x_train[:1024])
    model = jwinit.models.MLP(depth=2, width=16, output_dim=10, activation="sigmoid")
    v0 = model.init(jax.random.key(0), x)
    v = jwinit.greedy_pretrain(model, x, v0, activation="sigmoid", steps=400)

    def code(params):
        return jax.nn.sigmoid(x @ params["Dense_0"]["kernel"] + params["Dense_0"]["bias"][None])

    before = _linear_reconstruction_error(code(v0["params"]), x)
    after = _linear_reconstruction_error(code(v["params"]), x)
    # the baseline: the best that 16 linear codes can do is the top-16 principal subspace
    a = np.asarray(x, np.float64) - np.asarray(x, np.float64).mean(axis=0)
    s2 = np.linalg.svd(a, compute_uv=False) ** 2
    pca = 1.0 - s2[:16].sum() / s2.sum()
    # pre-training closes most of the gap between the random codes and that optimum (measured:
    # 0.51 -> 0.28 against 0.25); more than half is asserted
    assert after < (before + pca) / 2, (before, after, pca)
    np.testing.assert_array_equal(v["params"]["Dense_2"]["kernel"],
                                  v0["params"]["Dense_2"]["kernel"])
    assert not np.array_equal(v["params"]["Dense_1"]["kernel"], v0["params"]["Dense_1"]["kernel"])
    with pytest.raises(TypeError, match="linen"):
        jwinit.greedy_pretrain(nnx.Linear(4, 4, rngs=nnx.Rngs(0)), x, None, activation="relu")
    with pytest.raises(ValueError, match="`steps`"):
        jwinit.greedy_pretrain(model, x, v0, activation="sigmoid", steps=0)
    # plain SGD at a learning rate of 1e6 blows the first autoencoder up: an error naming the
    # layer, not NaN kernels returned
    with pytest.raises(ValueError, match=r"layer Dense_0: its autoencoder diverged.*1e\+06"):
        jwinit.greedy_pretrain(model, x, v0, activation="sigmoid", steps=50, learning_rate=1e6,
                               optimizer=optax.sgd)

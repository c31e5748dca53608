"""Depth-aware parametrizations (jwinit.recipes.depth_*): the residual stream at init against
depth (flat under depth-muP and CompleteP, growing like sqrt(L) under SP, at the analytic value),
the optimizer's per-group learning rates, epsilons and weight decays, and bad inputs."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jwinit
from jwinit import recipes
from jwinit.models import Decoder, DecoderBlock

D, F, V = 64, 128, 512
DEPTHS = (2, 8, 32)
LECUN = 0.8796256610342398  # std of N(0, 1) truncated at +-2: jax's lecun_normal keeps 1/fan_in


def _silu_second_moment(s):
    x, w = np.polynomial.hermite_e.hermegauss(200)
    g = s * x
    return float(np.sum(w * (g / (1 + np.exp(-g))) ** 2) / math.sqrt(2 * math.pi))


@functools.cache
def _stream_program(layers):
    """E[h_L^2] after the last block, one compiled program per depth (the branch multiplier
    is an argument)."""
    def last(v, tokens, b):
        model = Decoder(vocab_size=V, dim=D, layers=layers, heads=4, mlp_dim=F,
                        branch_multiplier=b)
        _, state = model.apply(v, tokens, capture_intermediates=lambda m, _: isinstance(
            m, DecoderBlock))
        h = state["intermediates"][f"layer_{layers - 1}"]["__call__"][0]
        return jnp.mean(h.astype(jnp.float32) ** 2)

    return jax.jit(last)


def test_the_residual_stream_at_init_is_flat_in_depth_under_depth_mup_and_completep():
    """E[h_L^2] = E[h_0^2] + L b^2 c, b the branch multiplier and c = 1 + E[silu(g)^2]
    (g ~ N(0, 1)) the per-block increment of N(0, 1/fan_in) weights after an RMSNorm: measured
    at L = 2, 8 and 32 within 4 standard errors of 4 seeds; the RMS's log-log slope against L is
    about 1/2 (SP), 0 (depth-muP) and below 0 (CompleteP)."""
    # lecun_normal is variance-exact (its truncation is compensated): increments are exact
    c = 1.0 + _silu_second_moment(1.0)
    tokens = jnp.arange(V, dtype=jnp.int32)[:, None]
    rules = recipes.depth_rules()
    inits = {L: [jwinit.init_params(Decoder(vocab_size=V, dim=D, layers=L, heads=4, mlp_dim=F),
                                    jax.random.key(seed), tokens[:1], rules) for seed in range(4)]
             for L in DEPTHS}
    slopes = {}
    for name in ("sp", "depth_mup", "completep"):
        rms = []
        for L in DEPTHS:
            b = recipes.depth_multipliers(name, L).branch
            got, want = [], []
            for v in inits[L]:  # the weights do not depend on the multiplier
                emb = np.asarray(v["params"]["embed"]["embedding"].unbox(), np.float64)
                got.append(float(_stream_program(L)(v, tokens, jnp.float32(b))))
                want.append(float(np.mean(emb**2)) + L * b**2 * c)
            diff = np.subtract(got, want)
            se = diff.std(ddof=1) / 2
            assert abs(diff.mean()) <= 4 * se + 1e-9, (name, L, np.mean(got), np.mean(want), se)
            rms.append(math.sqrt(np.mean(got)))
        slopes[name] = np.polyfit(np.log(DEPTHS), np.log(rms), 1)[0]
    assert slopes["sp"] > 0.35, slopes               # 1 + 1.36 L: sqrt(L) asymptotically
    assert abs(slopes["depth_mup"]) < 0.02, slopes    # 1 + 1.36: flat
    assert -0.15 < slopes["completep"] < 0, slopes    # 1 + 1.36 / L: down to the embedding's


@pytest.mark.parametrize("name, lr_factor, eps_factor", [
    ("sp", 1.0, 1.0), ("depth_mup", 0.5, 0.5), ("completep", 1.0, 0.25)])
def test_the_optimizer_scales_each_groups_learning_rate_and_epsilon(name, lr_factor, eps_factor):
    """At L = 16 from L0 = 4 (m = 4): Adam's first step is lr * g / (|g| + eps). A large gradient
    moves each parameter by its group's learning rate; a tiny one (1e-12, far below eps) by
    lr * g / eps, which shows the group's epsilon."""
    params = {"embed": {"embedding": jnp.ones((8, 4))},
              "layer_3": {"up": {"kernel": jnp.ones((4, 4))},
                          "mlp_norm": {"scale": jnp.ones((4,))}},
              "final_norm": {"scale": jnp.ones((4,))}, "head": {"kernel": jnp.ones((4, 8))}}
    assert recipes.depth_roles(params) == {
        "embed": {"embedding": "outer"},
        "layer_3": {"up": {"kernel": "hidden"}, "mlp_norm": {"scale": "hidden_norm"}},
        "final_norm": {"scale": "norm"}, "head": {"kernel": "outer"}}
    lr, eps = 1e-3, 1e-8
    tx = recipes.depth_optimizer(name, lr, 16, base_layers=4, eps=eps, weight_decay=0.1)
    for g, expect in ((1.0, lambda f, e: lr * f), (1e-12, lambda f, e: lr * f * 1e-12 /
                                                     (1e-12 + eps * e))):
        grads = jax.tree.map(lambda p, g=g: jnp.full(p.shape, g, p.dtype), params)
        with jax.numpy_dtype_promotion("standard"):  # optax mixes Python floats and int counts
            updates, _ = tx.update(grads, tx.init(params), params)
        steps = jax.tree.map(lambda u: float(-u.ravel()[0]), updates)
        decay = lr * 0.1  # AdamW's decoupled decay of a weight of 1 (kernels and the embedding)
        hidden_decay = lr * lr_factor * 0.1
        np.testing.assert_allclose(steps["layer_3"]["up"]["kernel"],
                                   expect(lr_factor, eps_factor) + hidden_decay, rtol=1e-5)
        np.testing.assert_allclose(steps["layer_3"]["mlp_norm"]["scale"],
                                   expect(lr_factor, eps_factor), rtol=1e-5)  # no decay
        np.testing.assert_allclose(steps["embed"]["embedding"], expect(1.0, 1.0) + decay,
                                   rtol=1e-5)
        np.testing.assert_allclose(steps["final_norm"]["scale"], expect(1.0, 1.0), rtol=1e-5)


def test_a_depth_multiplier_needs_a_depth_and_a_known_parametrization():
    with pytest.raises(TypeError, match="`num_layers`.*'completep'"):
        recipes.depth_multipliers("completep", None)
    with pytest.raises(TypeError, match="`num_layers`"):
        recipes.depth_optimizer("depth_mup", 1e-3, None)
    with pytest.raises(ValueError, match="`parametrization`.*'mup'"):
        recipes.depth_multipliers("mup", 8)
    m = recipes.depth_multipliers("completep", 32, base_layers=2)
    assert m == recipes.DepthMultipliers(branch=1 / 16, hidden_lr=1.0, hidden_eps=1 / 16,
                                         hidden_weight_decay=1.0)
    assert recipes.depth_multipliers("depth_mup", 32, base_layers=2).branch == 0.25
    _ = optax  # the optimizer is optax's multi_transform (used above)


def test_the_markov_token_task_follows_its_chain_and_bad_configs_are_refused():
    from jwinit.experiments import depth_coord_check as dcc
    from jwinit.experiments.runner import apply_override, load_config
    from jwinit.experiments.runner import validate as validate_config

    a = dcc.markov_tokens(16, 40, 2000, seed=3)
    assert a.shape == (2000, 40) and a.dtype == np.int32 and a.min() >= 0 and a.max() < 16
    np.testing.assert_array_equal(a, dcc.markov_tokens(16, 40, 2000, seed=3))
    # the chain's row for token 0, as the generator draws it, against the observed successors
    rng = np.random.default_rng(3)
    row = rng.dirichlet(np.full(16, 0.1), size=16)[0]
    prev, nxt = a[:, :-1].ravel(), a[:, 1:].ravel()
    after = nxt[prev == 0]
    freq = np.bincount(after, minlength=16) / after.size
    se = np.sqrt(row * (1 - row) / after.size)
    assert np.all(np.abs(freq - row) <= 5 * se + 1e-12), (freq, row)
    config = load_config("depth_coordcheck:smoke")[0]
    validate_config(config)
    apply_override(config, "depths", "(2, 2, 4)")
    with pytest.raises(ValueError, match="at least 3 different depths"):
        validate_config(config)
    config = load_config("depth_coordcheck:smoke")[0]
    apply_override(config, "parametrizations", "('sp', 'mup')")
    with pytest.raises(ValueError, match="`config.parametrizations`"):
        validate_config(config)


@pytest.mark.smoke  # the full run checks these claims at full size (tests/test_full_configs.py)
def test_depth_coordcheck_smoke_reproduces_and_resumes(tmp_path, capsys):
    from jwinit import cli

    workdir = tmp_path / "dc"
    args = ["run", "--config=depth_coordcheck:smoke", f"--workdir={workdir}"]
    assert cli.main(args) == 0
    report = (workdir / "report.md").read_text()
    assert "**Reproduced: 6 of 6 checks.**" in report
    assert (workdir / "plots" / "depth_coord_check.png").stat().st_size > 0
    capsys.readouterr()
    assert cli.main(args) == 0
    assert "18 read back" in capsys.readouterr().err  # nothing computed again

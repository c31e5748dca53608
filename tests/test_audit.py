"""jwinit.audit: a correctly initialized model raises no flag over many seeds; each injected bug is
flagged at its paths and nowhere else; nnx, Equinox, sharded, jitted; the CLI; bad inputs."""

import functools

import equinox as eqx
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx, traverse_util

import jwinit
from jwinit import cli
from jwinit.recipes import DECODER_PATHS

L = 2
MODEL = jwinit.models.Decoder(**jwinit.models.DECODER_SIZES["tiny"])
TOKENS = jnp.zeros((1, 8), jnp.int32)
RULES = jwinit.gpt2_rules(L, paths=DECODER_PATHS)
TRUNCATED = jwinit.gpt2_rules(L, truncate=3.0, paths=DECODER_PATHS)
RESIDUAL = [f"layer_{i}/{n}/kernel" for i in range(L) for n in ("out", "down")]


def init(seed, rules=RULES):
    return jwinit.init_params(MODEL, jax.random.key(seed), TOKENS, rules)


def replaced(variables, values):
    """`variables` with the parameters at the given paths set to the given values (in their
    partitioning boxes)."""
    flat = traverse_util.flatten_dict(dict(variables["params"]))
    for path, value in values.items():
        key = tuple(path.split("/"))
        flat[key] = flat[key].replace_boxed(value)
    return {**variables, "params": traverse_util.unflatten_dict(flat)}


def value(variables, path):
    return traverse_util.flatten_dict(dict(variables["params"]))[tuple(path.split("/"))].unbox()


def flagged_paths(report):
    return {p for p, _ in report.flags}


def test_a_correct_decoder_raises_no_flag_over_20_seeds():
    """gpt2_rules (plain and truncated at 3 sigma) on the Decoder: 20 seeds each, no flag; the
    norms' scales are the only parameters no rule covers."""
    for rules in (RULES, TRUNCATED):
        for seed in range(20):
            report = jwinit.audit(MODEL, init(seed, rules), rules,
                                  x=TOKENS if seed == 0 else None)
            assert report.flags == [], (seed, report.flags)
    assert report.unmatched == ["final_norm/scale"] + [
        f"layer_{i}/{n}/scale" for i in range(L) for n in ("attn_norm", "mlp_norm")]
    rows = {r.path: r for r in report.rows}
    assert rows["layer_1/down/kernel"].expected_std == pytest.approx(
        0.02 / np.sqrt(2 * L) * 0.986578, rel=1e-6)  # truncation at 3 sigma keeps 0.986578
    assert rows["layer_1/down/kernel"].bound_over_std == pytest.approx(3 / 0.986578, rel=1e-6)
    assert rows["embed/embedding"].pattern == DECODER_PATHS["embedding"]


@functools.cache
def _bugs():
    v = init(7)
    key = jax.random.key(99)
    bugs = {}
    # 1. the residual scaling skipped (a name check that never matched): N(0, 0.02^2)
    bugs["residual scaling skipped"] = (RULES, replaced(v, {
        p: 0.02 * jax.random.normal(jax.random.fold_in(key, i), value(v, p).shape)
        for i, p in enumerate(RESIDUAL)}), set(RESIDUAL))
    # 2. truncation bounds in absolute units (a=-3, b=3 at std 0.02): nothing is truncated
    t = init(7, TRUNCATED)
    shape = value(t, "embed/embedding").shape
    bugs["absolute truncation bounds"] = (TRUNCATED, replaced(t, {
        "embed/embedding": 0.02 * jax.random.truncated_normal(key, -3 / 0.02, 3 / 0.02, shape)}),
        {"embed/embedding"})
    # 3. one block a copy of another
    flat = traverse_util.flatten_dict(dict(v["params"]))
    copied = {"/".join(k): flat[("layer_0", *k[1:])].unbox() for k in flat if k[0] == "layer_1"}
    bugs["block copied"] = (RULES, replaced(v, copied), {
        f"layer_{i}/{n}/kernel" for i in range(L)
        for n in ("query", "key", "value", "out", "gate", "up", "down")})
    # 4. one embedding at half its declared std
    bugs["embedding at half std"] = (RULES, replaced(v, {
        "embed/embedding": 0.5 * value(v, "embed/embedding")}), {"embed/embedding"})
    # 5. one leaf in bfloat16
    bugs["a leaf in bfloat16"] = (RULES, replaced(v, {
        "layer_1/up/kernel": value(v, "layer_1/up/kernel").astype(jnp.bfloat16)}),
        {"layer_1/up/kernel"})
    return bugs


@pytest.mark.parametrize("bug", ["residual scaling skipped", "absolute truncation bounds",
                                 "block copied", "embedding at half std", "a leaf in bfloat16"])
def test_each_injected_bug_is_flagged_at_its_paths_and_nowhere_else(bug):
    rules, variables, paths = _bugs()[bug]
    kinds = {"residual scaling skipped": "std", "absolute truncation bounds": "tail",
             "block copied": "duplicate", "embedding at half std": "std",
             "a leaf in bfloat16": "dtype"}[bug]
    for x in (TOKENS, None):  # with x: the model's declared dtypes; without: the majority's
        report = jwinit.audit(MODEL, variables, rules, x=x)
        assert flagged_paths(report) == paths, report.flags
        assert set(report.flagged(kinds)) == paths, report.flags


def test_the_z_scores_and_thresholds_follow_the_sample_sizes():
    """A kernel at 1 + 6/sqrt(n)-ish off its std is flagged, one within the noise is not; the
    threshold is Phi^-1(1 - alpha / (2 m)) for m = 3 per covered parameter + same-size pairs."""
    from scipy.special import ndtri

    v = init(3)
    report = jwinit.audit(MODEL, v, RULES)
    covered = len(report.rows) - len(report.unmatched)
    sizes = [int(np.prod(r.shape)) for r in report.rows]
    pairs = sum(sizes.count(s) * (sizes.count(s) - 1) // 2 for s in set(sizes))
    assert report.z_threshold == pytest.approx(ndtri(1 - 1e-3 / (2 * (3 * covered + pairs))))
    w = value(v, "layer_0/query/kernel")
    n = w.size
    # the sample variance's standard error for a normal is sqrt(2/n) of the variance
    for factor, flagged in ((1 + 2.0 * np.sqrt(2 / n) / 2, False),
                            (1 + 9.0 * np.sqrt(2 / n) / 2, True)):
        report = jwinit.audit(MODEL, replaced(v, {"layer_0/query/kernel": factor * w}), RULES)
        assert (("layer_0/query/kernel", "std") in report.flags) is flagged, (factor, report.flags)


def test_orthogonal_rules_are_checked_by_their_spectrum_and_structured_ones_exactly():
    model = jwinit.models.MLP(depth=2, width=64, output_dim=10)
    x = jnp.ones((2, 32))
    rules = {r"Dense_1/kernel$": jwinit.orthogonal(), r"kernel$": jwinit.he_normal(),
             r"bias$": jwinit.constant(0.1)}
    v = jwinit.init_params(model, jax.random.key(0), x, rules)
    report = jwinit.audit(model, v, rules)
    assert report.flags == []
    row = {r.path: r for r in report.rows}["Dense_1/kernel"]
    assert row.spectrum_spread < 1e-5
    # a Gaussian matrix of the same variance: its entries pass, its spectrum does not
    gauss = jax.random.normal(jax.random.key(1), (64, 64)) / 8.0
    v["params"]["Dense_1"]["kernel"] = gauss
    report = jwinit.audit(model, v, rules)
    assert report.flags == [("Dense_1/kernel", "spectrum")]
    v = jwinit.init_params(model, jax.random.key(0), x, rules)
    v["params"]["Dense_0"]["bias"] = v["params"]["Dense_0"]["bias"].at[3].set(0.2)
    assert jwinit.audit(model, v, rules).flags == [("Dense_0/bias", "std"),
                                                   ("Dense_0/bias", "mean")]
    v["params"]["Dense_0"]["bias"] = v["params"]["Dense_0"]["bias"].at[3].set(jnp.nan)
    assert ("Dense_0/bias", "nonfinite") in jwinit.audit(model, v, rules).flags


def test_nnx_and_equinox_models_are_audited_in_place():
    rules = {r"kernel$|weight$": jwinit.lecun_normal(), r"bias$": jwinit.zeros()}

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.a = nnx.Linear(48, 96, rngs=rngs)
            self.b = nnx.Linear(96, 96, rngs=rngs)

    net = jwinit.init_params(lambda rngs: Net(rngs), jax.random.key(0), None, rules)
    assert jwinit.audit(net, None, rules).flags == []
    net.b.kernel[...] = net.b.kernel[...] * 2
    assert jwinit.audit(net, None, rules).flags[0] == ("b/kernel", "std")
    mlp = eqx.nn.MLP(48, 10, 96, 2, key=jax.random.key(0))
    mlp = jwinit.init_params(mlp, jax.random.key(1), None, rules)
    report = jwinit.audit(mlp, None, rules)
    assert report.flags == []
    row = {r.path: r for r in report.rows}["layers/0/weight"]
    # the (out, in) weight is described in jwinit's (in, out) layout: fan_in 48
    assert row.expected_std == pytest.approx(np.sqrt(1 / 48), rel=1e-6)
    with pytest.raises(ValueError, match="`variables` must be None"):
        jwinit.audit(net, {"params": {}}, rules)


def test_a_sharded_model_and_a_jitted_audit_give_the_same_report():
    from jax.sharding import Mesh

    mesh = Mesh(np.array(jax.devices()[:8]).reshape(2, 4), ("data", "model"))
    v = jwinit.init_params(MODEL, jax.random.key(5), TOKENS, RULES, mesh=mesh,
                           axis_rules=jwinit.models.AXIS_RULES)
    sharded = value(v, "layer_0/gate/kernel")
    assert len(sharded.sharding.device_set) > 1
    plain = jwinit.audit(MODEL, jax.device_get(v), RULES)
    for report in (jwinit.audit(MODEL, v, RULES),
                   jax.jit(lambda v: jwinit.audit(MODEL, v, RULES))(v)):
        assert report.flags == plain.flags == []
        for a, b in zip(report.rows, plain.rows, strict=True):
            assert a.path == b.path
            np.testing.assert_allclose([a.std, a.mean], [b.std, b.mean], rtol=1e-5, atol=1e-9)


def test_the_report_renders_as_a_table_and_in_treescope():
    import treescope

    rules, variables, _ = _bugs()["embedding at half std"]
    report = jwinit.audit(MODEL, variables, rules)
    text = str(report)
    assert "embed/embedding" in text and "[^embed/embedding$]" in text and "std" in text
    assert report.summary().startswith("audit of 21 parameters (16 covered by a rule, 5 not): "
                                       "flags: 1 std")
    with treescope.active_autovisualizer.set_scoped(None):
        rendered = treescope.render_to_text(report)
    assert "AuditReport" in rendered and "flags" in rendered and "embed/embedding" in rendered


def test_bad_inputs_are_named():
    v = init(0)
    with pytest.raises(ValueError) as e:  # rules of another model (jwinit.models.Transformer)
        jwinit.audit(MODEL, v, jwinit.gpt2_rules(L))
    assert "cannot find the role 'attention_output'" in str(e.value)
    assert "layer_0/out/kernel" in str(e.value) and "paths=" in str(e.value)
    with pytest.raises(ValueError, match="cannot find the role 'attention_output'"):
        jwinit.init_params(MODEL, jax.random.key(0), TOKENS, jwinit.gpt2_rules(L))
    other = jwinit.models.Decoder(vocab_size=256, dim=32, layers=2, heads=4, mlp_dim=64)
    with pytest.raises(ValueError, match="not this model's"):
        jwinit.audit(other, v, RULES, x=TOKENS)
    with pytest.raises(ValueError, match="`alpha`"):
        jwinit.audit(MODEL, v, RULES, alpha=0)
    with pytest.raises(ValueError, match="'params' collection"):
        jwinit.audit(MODEL, v["params"], RULES)
    conv = {r"kernel$": jwinit.delta_orthogonal()}
    with pytest.raises(ValueError, match="cannot give 'head/kernel'"):
        jwinit.audit(MODEL, v, conv)


def test_jwinit_audit_reads_an_npz_or_an_orbax_checkpoint(tmp_path, capsys):
    import orbax.checkpoint as ocp

    rules_file = tmp_path / "rules.py"
    rules_file.write_text("import jwinit\nfrom jwinit.recipes import DECODER_PATHS\n"
                          f"RULES = jwinit.gpt2_rules({L}, paths=DECODER_PATHS)\n")
    v = jax.device_get(init(0))
    flat = {"/".join(k): np.asarray(x.unbox()) for k, x in
            traverse_util.flatten_dict(dict(v["params"])).items()}
    np.savez(tmp_path / "good.npz", **flat)
    assert cli.main(["audit", str(tmp_path / "good.npz"), f"--rules={rules_file}"]) == 0
    out = capsys.readouterr().out
    assert "flags: none" in out and "not covered by a rule: final_norm/scale" in out
    bad = dict(flat, **{"embed/embedding": 0.5 * flat["embed/embedding"]})
    np.savez(tmp_path / "bad.npz", **bad)
    assert cli.main(["audit", str(tmp_path / "bad.npz"), f"--rules={rules_file}"]) == 1
    assert "flags: 1 std" in capsys.readouterr().out
    ocp.PyTreeCheckpointer().save(tmp_path / "orbax", nn.unbox(v))
    assert cli.main(["audit", str(tmp_path / "orbax"), f"--rules={rules_file}:RULES"]) == 0
    assert "flags: none" in capsys.readouterr().out
    (tmp_path / "text.npz").write_text("not a checkpoint")
    assert cli.main(["audit", str(tmp_path / "text.npz"), f"--rules={rules_file}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jwinit: error: the variables file") and "not an .npz" in err
    assert cli.main(["audit", str(tmp_path / "good.npz"), f"--rules={rules_file}:NOPE"]) == 2
    assert "defines no 'NOPE'" in capsys.readouterr().err

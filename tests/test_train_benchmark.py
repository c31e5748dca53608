"""The training benchmark script: its five model kinds fit their shipped data, both sides do the
same runs, the plain loop it prints is the loop a user writes, and the JSON is written (at the
script's tiny size; the figures themselves are benchmarks/RESULTS.md, not a timed test)."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import pytest

from benchmarks import train_benchmark as bench


@pytest.mark.parametrize("kind", bench.KINDS)
def test_every_kind_fits_its_shipped_data(kind):
    model, data = bench.workload(kind)
    x = jnp.asarray(data.x_train[:bench.BATCH])
    variables = jax.eval_shape(model.init, jax.random.key(0), x)
    out = jax.eval_shape(model.apply, variables, x)
    assert out.shape == (bench.BATCH, data.num_classes)


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="`kind`.*'vgg'"):
        bench.workload("vgg")
    with pytest.raises(ValueError, match="`size`.*'huge'"):
        bench.run_benchmark("mlp", "huge")
    with pytest.raises(ValueError, match="`repeats`"):
        bench.run_benchmark("mlp", "tiny", 0)


def test_the_printed_plain_loop_is_one_jitted_optax_step_with_device_side_batches(capsys):
    assert bench.main(["--show-loop"]) == 0
    text = capsys.readouterr().out
    for words in ("@jax.jit", "def step(params, opt_state, key)", "jax.random.randint(key",
                  "optax.sgd(learning_rate, momentum=MOMENTUM)", "tx.update(grads",
                  "jax.value_and_grad(loss_fn)", "def plain_grid"):
        assert words in text, words


def test_both_sides_do_the_same_runs_and_json_is_written(tmp_path):
    out = tmp_path / "train.json"
    assert bench.main(["--kind", "rnn", "--size", "tiny", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    r = res["kinds"]["rnn"]
    rnd = r["rounds"][0]
    assert rnd["runs_12"] == rnd["plain_runs_12"] == 12
    assert (r["steps"], r["eval_every"]) == bench.SIZES["tiny"]
    assert rnd["stepping"] in ("scan", "loop")
    # the summary is the best round of each side, from the rounds themselves
    for k in ("jwinit_1", "plain_1", "jwinit_12", "plain_12"):
        assert r["best"][k] == min(x[k] for x in r["rounds"]) > 0
    assert r["ratio_1"] == r["best"]["jwinit_1"] / r["best"]["plain_1"]
    assert set(res["versions"]) >= {"jax", "jaxlib", "flax", "optax"}


def test_the_ntk_benchmark_runs_without_neural_tangents(tmp_path):
    """The NTK benchmark's network has the 9,802 parameters its table states, and without an
    interpreter for neural-tangents it times jwinit alone and writes its figures."""
    from benchmarks import ntk_benchmark

    model, x, variables = ntk_benchmark.network()
    assert sum(v.size for v in jax.tree.leaves(variables["params"])) == 9802
    assert x.shape == (1000, 64)
    out = tmp_path / "ntk.json"
    assert ntk_benchmark.main(["--repeats", "1", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["parameters"] == 9802 and res["jwinit_seconds"] > 0
    assert "neural_tangents" not in res

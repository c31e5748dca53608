"""Sweeps: grouping into few programs, sharding over 8 simulated devices (bit for bit), the
multi-host split, resumable JSON-lines output, rows and summaries, argument errors."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
from _processes import run_two_processes
from jax.sharding import Mesh

import jwinit
from jwinit.probe import _sweep as sweep_mod
from jwinit.results import dumps, read_rows
from jwinit.sweep import plan, results_from_rows, summarize, sweep

SCHEMES = ["he_normal", ("normal", {"stddev": 0.1}), (2.0, 0.0), (1.5, 0.05)]
GRID = dict(depths=[4], widths=[16], seeds=5, batch_size=8)
BIAS = jwinit.normal(0.1)  # one closure object: every sweep below reuses the compiled programs


def one_device() -> Mesh:
    return Mesh(np.array(jax.devices()[:1]), ("seeds",))


@pytest.fixture(scope="module")
def sharded_rows():
    assert len(jax.devices()) == 8, "conftest simulates 8 CPU devices"
    return sweep(SCHEMES, ["relu", "tanh"], bias_init=BIAS, mesh=all_devices(), **GRID)


def all_devices() -> Mesh:
    """An explicit mesh of all 8 devices: 5 seeds are padded to 8 and sharded over all of them
    (the default mesh would use only the devices the seeds fill)."""
    return Mesh(np.array(jax.devices()), ("seeds",))


def test_the_default_mesh_uses_only_the_devices_the_seeds_fill():
    [few] = plan(["he_normal"], ["relu"], depths=[4], widths=[16], seeds=2, batch_size=8)
    assert few.mesh.devices.size == 1  # 2 seeds fit one chunk: no padding to 8 devices
    [many] = plan(["he_normal"], ["relu"], depths=[4], widths=[1024], seeds=64, batch_size=256)
    assert many.mesh.devices.size == 8
    rows = sweep(["he_normal"], ["relu"], depths=[4], widths=[16], seeds=2, batch_size=8)
    explicit = sweep(["he_normal"], ["relu"], depths=[4], widths=[16], seeds=2, batch_size=8,
                     mesh=all_devices())
    assert json.dumps(rows) == json.dumps(explicit)


def test_sharded_equals_single_device_bit_for_bit(sharded_rows):
    single = sweep(SCHEMES, ["relu", "tanh"], bias_init=BIAS, mesh=one_device(),
                   **GRID)
    assert len(single) == len(sharded_rows) == 4 * 2 * 5
    for a, b in zip(sharded_rows, single, strict=True):
        assert json.dumps(a) == json.dumps(b)  # every float, bit for bit (NaN-safe)


def test_one_program_per_depth_and_width():
    tasks = plan(SCHEMES, ["relu", "tanh"], **{**GRID, "depths": [3, 5]})
    assert [(t.config.depth, t.config.width) for t in tasks] == [(3, 16), (5, 16)]
    members = tasks[0].config.members
    # 2 closure schemes x 2 activations + one member per activation for the mean-field pairs,
    # which are vmapped over their scales (2 rows each).
    assert len(members) == 6
    assert sorted(m.rows for m in members) == [1, 1, 1, 1, 2, 2]
    # Members sharing a kernel closure are contiguous: one matmul per closure per layer.
    kernels = [id(m.kernel) for m in members]
    assert kernels == sorted(kernels, key=kernels.index)


def test_rows(sharded_rows):
    row = sharded_rows[0]
    for k in ("scheme", "activation", "depth", "width", "seed", "forward", "backward",
              "channel_sq_mean", "channel_var", "dead", "saturated", "correlation",
              "log_forward", "log_backward", "sigma_w2", "sigma_b2"):
        assert k in row
    assert len(row["forward"]) == row["depth"]
    cells = {(r["scheme"], r["activation"], r["depth"], r["seed"]) for r in sharded_rows}
    assert len(cells) == len(sharded_rows)
    # Common random numbers: the first layer does not see the activation, so for the same scheme
    # and seed the two activations give the same first-layer statistics.
    by = {(r["scheme"], r["activation"], r["depth"], r["seed"]): r for r in sharded_rows}
    for (scheme, act, depth, seed), r in by.items():
        other = by[(scheme, "tanh" if act == "relu" else "relu", depth, seed)]
        assert r["forward"][0] == pytest.approx(other["forward"][0], rel=1e-6)
    mf = by[("sw2=2,sb2=0", "relu", 4, 0)]
    assert (mf["sigma_w2"], mf["sigma_b2"]) == (2.0, 0.0)
    he = by[("he_normal", "relu", 4, 0)]
    assert he["sigma_w2"] == pytest.approx(2.0) and he["sigma_b2"] == pytest.approx(0.01)


def test_seeds_do_not_depend_on_other_seeds(sharded_rows):
    rows = sweep(SCHEMES, ["relu", "tanh"], bias_init=BIAS,
                 **{**GRID, "seeds": [3]}, mesh=one_device())
    ref = {(r["scheme"], r["activation"], r["depth"]): r for r in sharded_rows if r["seed"] == 3}
    for r in rows:
        want = ref[(r["scheme"], r["activation"], r["depth"])]
        np.testing.assert_allclose(r["forward"], want["forward"], rtol=1e-5)
        np.testing.assert_allclose(r["backward"], want["backward"], rtol=1e-5)


def test_multi_host_split_covers_the_grid_once(sharded_rows):
    parts = [sweep(SCHEMES, ["relu", "tanh"], bias_init=BIAS, process_index=i,
                   process_count=2, **GRID) for i in range(2)]
    assert parts[0] and parts[1]
    merged = {json.dumps(r, sort_keys=True) for p in parts for r in p}
    assert merged == {json.dumps(r, sort_keys=True) for r in sharded_rows}
    assert len(parts[0]) + len(parts[1]) == len(sharded_rows)


_WORKER = """
import sys
import jax
pid, port, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2,
                           process_id=pid)
assert jax.process_index() == pid and jax.process_count() == 2
import jwinit
from jwinit.sweep import sweep
sweep(["he_normal", ("normal", {"stddev": 0.1})], ["relu", "tanh"],
      bias_init=jwinit.normal(0.1), depths=[4], widths=[16], seeds=5, batch_size=8, out=out)
jax.distributed.shutdown()
"""


def test_two_processes_with_jax_distributed_split_the_grid(tmp_path):
    """Two real processes after jax.distributed.initialize: each writes its share (split by
    jax.process_index()) to <stem>.p<index>.jsonl; together they equal one process's sweep."""
    out = tmp_path / "rows.jsonl"
    run_two_processes(_WORKER, out, devices=2)
    parts = [read_rows(tmp_path / f"rows.p{i}.jsonl") for i in range(2)]
    assert parts[0] and parts[1]
    assert not out.exists()
    reference = sweep(["he_normal", ("normal", {"stddev": 0.1})], ["relu", "tanh"],
                      bias_init=BIAS, depths=[4], widths=[16], seeds=5, batch_size=8)
    merged = sorted(json.dumps(r, sort_keys=True) for p in parts for r in p)
    assert merged == sorted(json.dumps(r, sort_keys=True) for r in reference)


def test_accelerator_code_path_matches_the_cpu_path(sharded_rows, monkeypatch):
    """The GPU/TPU program layout (one matmul per kernel closure over all its rows, seeds in
    lax.map chunks of about TARGET_ROWS matmul rows), run on CPU: the same rows as the CPU layout
    up to float32 rounding of the differently blocked matmuls."""
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    [task] = plan(SCHEMES, ["relu", "tanh"], bias_init=BIAS, **GRID)
    per_seed = task.config.num_rows * GRID["batch_size"]
    monkeypatch.setattr(sweep_mod, "TARGET_ROWS", 2 * per_seed)
    [task] = plan(SCHEMES, ["relu", "tanh"], bias_init=BIAS, **GRID)
    assert task.config.backend == "gpu" and task.config.seed_chunk == 2
    rows = sweep(SCHEMES, ["relu", "tanh"], bias_init=BIAS, **GRID)
    assert [(r["scheme"], r["activation"], r["seed"]) for r in rows] == [
        (r["scheme"], r["activation"], r["seed"]) for r in sharded_rows]
    for a, b in zip(rows, sharded_rows, strict=True):
        for name in ("forward", "backward", "mean", "channel_var", "correlation"):
            np.testing.assert_allclose(a[name], b[name], rtol=2e-5, atol=1e-6, err_msg=name)


def test_resume_skips_done_cells(tmp_path):
    out = tmp_path / "rows.jsonl"
    kw = dict(depths=4, widths=8, batch_size=4, mesh=one_device())
    first = sweep(["he_normal"], ["relu"], seeds=2, out=out, **kw)
    assert len(out.read_text().splitlines()) == 2
    ran = []
    real = sweep_mod.Task.run
    sweep_mod.Task.run = lambda self: ran.append(list(self.seeds)) or real(self)
    try:
        calls = []
        again = sweep(["he_normal"], ["relu"], seeds=3, out=out, resume=True,
                      progress=lambda done, total: calls.append((done, total)), **kw)
    finally:
        sweep_mod.Task.run = real
    assert ran == [[2]]  # only the missing seed is computed
    assert calls == [(2, 3), (3, 3)]  # the 2 read back at the start, then after the one program
    assert len(out.read_text().splitlines()) == 3
    assert again[:2] == first and again[2]["seed"] == 2

    # a run killed while appending leaves a cut-short last line: the rerun ignores it,
    # recomputes that row, and the file is whole again
    lines = out.read_text().splitlines()
    out.write_text(lines[0] + "\n" + lines[1] + "\n" + lines[2][:40])
    third = sweep(["he_normal"], ["relu"], seeds=3, out=out, resume=True, **kw)
    assert third == again
    assert out.read_text().splitlines() == lines


@pytest.mark.parametrize("change", [
    dict(batch_size=6), dict(key=1), dict(precision="highest"), dict(bias_init=jwinit.normal(0.2)),
    dict(input_dim=12), dict(input_correlation=0.2), dict(statistics="second_moments"),
    dict(saturation_threshold=0.5),
], ids=lambda c: next(iter(c)))
def test_resume_reuses_a_row_only_when_everything_that_changes_it_matches(change, tmp_path,
                                                                        monkeypatch):
    out = tmp_path / "rows.jsonl"
    kw = dict(depths=3, widths=8, batch_size=4, seeds=2, mesh=one_device(), out=out)
    first = sweep(["he_normal"], ["relu"], **kw)
    changed = sweep(["he_normal"], ["relu"], **{**kw, **change}, resume=True)
    assert len(out.read_text().splitlines()) == 4  # recomputed and appended, not reused
    assert changed != first
    name = next(iter(change))
    field = {"bias_init": "bias", "key": "key"}.get(name, name)
    assert all(a[field] != b[field] for a, b in zip(changed, first, strict=True))
    # and the same arguments again reuse both sets of rows without computing
    monkeypatch.setattr(sweep_mod.Task, "run", lambda self: [] if not self.seeds
                        else pytest.fail("recomputed a finished cell"))
    same = sweep(["he_normal"], ["relu"], **kw, resume=True)
    assert dumps(same) == dumps(first)  # (dumps: NaN statistics compare equal)
    again = sweep(["he_normal"], ["relu"], **{**kw, **change}, resume=True)
    assert dumps(again) == dumps(changed)


def test_summaries_and_results(sharded_rows):
    res = results_from_rows(sharded_rows)
    r = res[("he_normal", "relu", 4, 16)]
    assert r.forward.shape == (5, 4) and r.seeds == (0, 1, 2, 3, 4)
    summary = summarize(sharded_rows)
    assert len(summary) == 4 * 2
    assert {s["verdict"] for s in summary} <= {"preserved", "vanishing", "exploding"}
    he = next(s for s in summary if s["scheme"] == "he_normal" and s["activation"] == "relu")
    assert he["theory_forward"] is not None


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        (dict(depths=[4, 0]), ValueError, ["`depths`", ">= 1"]),
        (dict(widths=[]), ValueError, ["`widths`"]),
        (dict(activations=["nope"]), ValueError, ["`activation`", "nope"]),
        (dict(schemes=["not_a_scheme"]), ValueError, ["`schemes`", "not_a_scheme", "he_normal"]),
        (dict(schemes=[3.0]), TypeError, ["`schemes`"]),
        (dict(schemes=[(-1.0, 0.0)]), ValueError, ["sigma_w2"]),
        (dict(schemes=[jwinit.he_normal]), TypeError, ["`schemes`", "factory"]),
        (dict(seeds=[1, 1]), ValueError, ["`seeds`"]),
        (dict(seeds=0), ValueError, ["`seeds`"]),
        (dict(precision="half"), ValueError, ["`precision`", "bfloat16"]),
        (dict(mesh="all"), TypeError, ["`mesh`"]),
        (dict(process_index=2, process_count=2), ValueError, ["`process_index`"]),
    ],
)
def test_bad_arguments_raise_before_compute(kwargs, error, words, monkeypatch):
    monkeypatch.setattr(sweep_mod.Task, "run", lambda self: pytest.fail("computed"))
    kw = dict(schemes=["he_normal"], activations=["relu"], depths=[4], widths=[8], seeds=2)
    kw.update(kwargs)
    with pytest.raises(error) as info:
        sweep(**kw)
    for w in words:
        assert w in str(info.value), (w, str(info.value))


# ------------------------------------------------------------------------------------------------
# QR-based schemes on many simulated devices: no deadlock


_QR_WORKER = """
import sys, jax, jax.numpy as jnp, numpy as np, jwinit
from jax.sharding import Mesh, PartitionSpec as P

assert len(jax.devices()) == 8
name, kind = sys.argv[1], sys.argv[2]
if kind == "conv":
    # every device draws a batch of conv kernels concurrently, as a sharded program does
    init = jwinit.registry.make(name)
    mesh = Mesh(np.array(jax.devices()), ("s",))
    draw = jax.vmap(lambda k: init(k, (3, 3, 16, 16)))
    f = jax.jit(jax.shard_map(draw, mesh=mesh, in_specs=P("s"), out_specs=P("s")))
    print(float(jnp.sum(f(jax.random.split(jax.random.key(0), 64)) ** 2)))
else:
    rows = jwinit.sweep.sweep([name], ["tanh"], depths=4, widths=16, batch_size=8, seeds=64)
    print(len(rows))
"""


@pytest.mark.parametrize("name", [e.name for e in jwinit.registry.entries()
                                  if "orthogonal" in e.distribution and e.kind != "role"])
def test_qr_schemes_finish_on_eight_sharded_devices(name, tmp_path):
    """A sweep of 64 seeds sharded over 8 simulated CPU devices used to hang forever in the
    batched QR (every thread of XLA's CPU pool waiting for work that no free thread could run).
    Each QR-based scheme runs here in a fresh process under a time limit: a deadlock fails the
    test instead of hanging the suite."""
    import os
    import subprocess
    import sys

    kind = "conv" if jwinit.registry.entry(name).kind == "conv" else "matrix"
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
               JAX_PLATFORMS="cpu")
    try:
        out = subprocess.run([sys.executable, "-c", _QR_WORKER, name, kind], env=env,
                             capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{name}: a sharded sweep on 8 CPU devices did not finish in 120 s")
    assert out.returncode == 0, out.stderr[-2000:]
    if kind == "matrix":
        assert out.stdout.strip().splitlines()[-1] == "64"
    else:  # 64 kernels with orthogonal centre taps: sum of squares = 64 * 16
        assert float(out.stdout.strip().splitlines()[-1]) == pytest.approx(64 * 16, rel=1e-4)


def test_a_large_grid_of_pairs_is_split_into_tasks_of_one_program(monkeypatch, tmp_path):
    """75 (sigma_w2, sigma_b2) cells of one activation: tasks of 8 rows (the last one padded)
    that share one compiled program, whose rows are written as each task finishes."""
    grid = [((1.0 + 0.1 * i, 0.05), "tanh") for i in range(20)]
    tasks = plan(pairs=grid, depths=3, widths=16, seeds=2, batch_size=8)
    assert [len(t.cells) for t in tasks] == [8, 8, 4]
    assert len({t.config for t in tasks}) == 1  # one compiled program for all of them
    done = []
    rows = sweep(pairs=grid, depths=3, widths=16, seeds=2, batch_size=8, out=tmp_path / "r.jsonl",
                 progress=lambda d, t: done.append(d))
    assert done == [0, 16, 32, 40]  # rows (cells x seeds) after each task
    monkeypatch.setattr(sweep_mod, "CPU_ROWS_PER_TASK", 100)
    whole = sweep(pairs=grid, depths=3, widths=16, seeds=2, batch_size=8)
    assert [r["scheme"] for r in rows] == [r["scheme"] for r in whole]
    for a, b in zip(rows, whole, strict=True):
        np.testing.assert_allclose(a["forward"], b["forward"], rtol=1e-6)
        np.testing.assert_allclose(a["correlation"], b["correlation"], rtol=1e-6, atol=1e-7)

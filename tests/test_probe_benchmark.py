"""Smoke tests of the probe benchmark script (tiny sizes): it runs, counts FLOPs as the issue
says, and writes its JSON; the baselines run where installed and are skipped with a message where
not."""

from __future__ import annotations

import json

from benchmarks import probe_benchmark as bench


def test_flop_count_and_workloads():
    w1 = bench.WORKLOADS["full"]["W1"]
    assert (w1.seeds, w1.depth, w1.width, w1.batch) == (8, 64, 1024, 1024)
    assert w1.flops == 4 * 1024 * 1024**2 * 64 * 8 * 8
    w2 = bench.WORKLOADS["full"]["W2"]
    assert (w2.seeds, w2.depth, w2.width, w2.batch) == (4, 32, 2048, 2048)
    assert len(bench.PAIRS) == 8


def test_main_runs_jwinit_and_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    results = bench.main(["--size", "tiny", "--workloads", "W2", "--repeats", "1",
                          "--baselines", "--compile-depths", "--no-default-sweep",
                          "--precision", "highest", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved["workloads"]["W2"]["jwinit"]["seconds"] > 0
    assert results["matmul"]["flops_per_s"] > 0
    assert "jwinit" in bench.markdown(results)


def test_baselines_run_or_skip():
    results = bench.run_benchmark("tiny", ["W1"], "highest", 1, ["flax", "torch"], [],
                                  default_sweep=False, log=lambda s: None)
    entry = results["workloads"]["W1"]
    assert entry["flax"]["seconds"] > 0
    import importlib.util

    if importlib.util.find_spec("torch") is not None:  # installed: the baseline must have run
        assert entry["torch"]["seconds"] > 0 and "skipped" not in entry["torch"], entry["torch"]
    else:  # not installed: skipped, and the reason says how to get it
        assert "seconds" not in entry["torch"] and "torch" in entry["torch"]["skipped"]

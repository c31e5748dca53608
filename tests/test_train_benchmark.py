"""The training benchmark script at its tiny size: the grids are the shipped configs', both sides do
the same work (runs, steps, evaluations), the trainer compiles one program whatever the number of
runs, and the JSON is written."""

from __future__ import annotations

import json

import pytest

from benchmarks import train_benchmark as bench
from configs import glorot2010_training, he2015_training


def test_grids_are_the_shipped_configs():
    he = he2015_training.get_config()
    g = bench.grid("he2015", "full")
    assert (g["depth"], g["width"], g["steps"], g["seeds"], g["batch_size"]) == (
        he.depth, he.width, he.steps, he.seeds, he.batch_size)
    assert g["learning_rates"] == list(he.learning_rates) and g["momentum"] == he.momentum
    assert len(g["inits"]) * len(g["learning_rates"]) * g["seeds"] == 24
    gl = glorot2010_training.get_config()
    g = bench.grid("glorot2010", "full")
    assert (g["depth"], g["width"], g["activation"], g["momentum"]) == (
        gl.depth, gl.width, "tanh", None)


@pytest.mark.parametrize("workload, size", [("resnet", "full"), ("he2015", "huge")])
def test_bad_grid_names_the_argument(workload, size):
    with pytest.raises(ValueError, match="`workload`|`size`"):
        bench.grid(workload, size)


def test_both_sides_do_the_same_work_and_json_is_written(tmp_path):
    out = tmp_path / "train.json"
    assert bench.main(["--workload", "he2015", "--size", "tiny", "--out", str(out)]) == 0
    res = json.loads(out.read_text())["he2015"]
    g = res["grid"]
    runs = len(g["inits"]) * len(g["learning_rates"]) * g["seeds"]
    r = res["rounds"][0]
    assert r["jwinit"]["runs"] == r["loop"]["runs"] == runs == 8
    assert r["loop"]["steps"] == runs * g["steps"]
    assert r["jwinit"]["chunk_traces"] == 1
    scaling = res["compile_scaling"]
    assert (scaling["1 run"]["runs"], scaling["grid"]["runs"]) == (1, runs)
    # the summary is the best round of each side, taken from the rounds themselves
    assert res["jwinit_seconds"] == min(r["jwinit"]["seconds"] for r in res["rounds"])
    assert res["loop_seconds"] == min(r["loop"]["seconds"] for r in res["rounds"])
    assert all(r["jwinit"]["seconds"] > 0 and r["loop"]["seconds"] > 0 for r in res["rounds"])

"""The xiao2020 config (experiment kind 'ntk_conditioning'): its smoke run reproduces the five
claims, writes its files and resumes after its last whole depth; outcomes, rank correlation,
resumable groups and bad configs."""

import json
import math

import numpy as np
import pytest

from jwinit import cli
from jwinit.experiments.ntk_conditioning import _spearman, outcome
from jwinit.results import read_rows


def run(*args):
    return cli.main(["run", *args])


@pytest.mark.smoke  # the full run checks these claims at full size (tests/test_full_configs.py)
def test_the_smoke_run_reproduces_its_claims(tmp_path):
    workdir = tmp_path / "xiao"
    assert run("--config=xiao2020:smoke", f"--workdir={workdir}") == 0
    checks = json.loads((workdir / "checks.json").read_text())
    assert len(checks) == 5 and all(c["passed"] for c in checks), checks
    for plot in ("condition.png", "empirical.png", "training.png"):
        assert (workdir / "plots" / plot).stat().st_size > 0, plot
    rows = read_rows(workdir / "results.jsonl")
    assert len(rows) == 2 * 5  # 2 depths x (4 sigma_w2 + the critical one) x 1 seed
    for r in rows:
        assert r["lr_max"] == pytest.approx(32 * 10 / r["lambda_max"], rel=1e-12)
        kappa = r["lambda_max_infinite"] / r["lambda_min_infinite"]
        if r["lambda_min_infinite"] > 0:
            assert r["condition_infinite"] == pytest.approx(kappa, rel=1e-12)
    trained = [r for r in rows if "measured" in r]
    assert [r["depth"] for r in trained] == [10] * 5
    for r in trained:
        assert len(r["losses"]) == 301

    # cut inside depth 30: the rerun keeps depth 10's rows, computes depth 30 again, the same
    lines = (workdir / "results.jsonl").read_text().splitlines(keepends=True)
    (workdir / "results.jsonl").write_text("".join(lines[:7]) + lines[7][:50])
    assert run("--config=xiao2020:smoke", f"--workdir={workdir}") == 0
    again = read_rows(workdir / "results.jsonl")
    assert [(r["depth"], r["sigma_w2"]) for r in again] == [(r["depth"], r["sigma_w2"])
                                                           for r in rows]
    for a, b in zip(again, rows, strict=True):
        assert a["condition_infinite"] == b["condition_infinite"]
        assert a["condition"] == pytest.approx(b["condition"], rel=1e-4)


def test_outcomes_and_rank_correlation():
    assert outcome(0.1, False, 0.2) == "trained"
    assert outcome(0.5, False, 0.2) == "stalled"
    assert outcome(1.5, False, 0.2) == "diverged"  # the loss grew
    assert outcome(0.1, True, 0.2) == "diverged"   # a non-finite loss on the way
    assert outcome(math.nan, False, 0.2) == "diverged"
    assert _spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert _spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ties take their mean rank; equal to scipy's value for these inputs (0.9486832980505138)
    assert _spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(0.9486832980505138)
    assert _spearman([1.0, np.inf, 3.0], [1.0, 3.0, 2.0]) == pytest.approx(1.0)


@pytest.mark.parametrize("override, words", [
    ("--config.train_sigma_b2=0.5", ["`config.train_sigma_b2`", "0.5", "(0.02,)"]),
    ("--config.train_depths=(7,)", ["`config.train_depths`", "7", "(10, 30)"]),
    ("--config.examples=5000", ["`config.examples`", "1438", "5000"]),
    ("--config.activation='rellu'", ["rellu"]),
    ("--config.sigma_w2=(0.0, 1.0)", ["`config.sigma_w2`", "0.0"]),
    ("--config.trained_fraction=1.5", ["`config.trained_fraction`", "1.5"]),
])
def test_bad_configs_are_named_before_any_compute(override, words, tmp_path, capsys):
    workdir = tmp_path / "bad"
    assert run("--config=xiao2020:smoke", override, f"--workdir={workdir}") != 0
    err = capsys.readouterr().err
    for w in words:
        assert w in err, (w, err)
    assert not (workdir / "results.jsonl").exists()


def test_a_group_cut_short_is_removed_for_the_resumed_run(tmp_path):
    from jwinit.experiments.common import finished_rows
    from jwinit.results import append_rows

    path = tmp_path / "results.jsonl"
    assert finished_rows(path, ("depth",), 2) == []
    append_rows(path, [{"depth": 10, "seed": 0}, {"depth": 10, "seed": 1},
                       {"depth": 30, "seed": 0}])  # depth 30 was cut after its first row
    with open(path, "a") as f:
        f.write('{"depth": 30, "se')  # and a line cut short
    rows = finished_rows(path, ("depth",), 2)
    assert rows == [{"depth": 10, "seed": 0}, {"depth": 10, "seed": 1}]
    assert read_rows(path) == rows  # the file holds only the whole groups now

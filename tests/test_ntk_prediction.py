"""The ntk_trainability config (experiment kind 'ntk_prediction'): its smoke run reproduces the
four claims and writes its files; an interrupted run resumes after its last whole network with
the same rows; the run classification and bad configs."""

import json

import numpy as np
import pytest

from jwinit import cli
from jwinit.experiments.ntk_prediction import classify
from jwinit.results import read_rows


def run(*args):
    return cli.main(["run", *args])


@pytest.mark.smoke  # the full run checks these claims at full size (tests/test_full_configs.py)
def test_the_smoke_run_reproduces_and_a_cut_run_resumes_with_the_same_rows(tmp_path, capsys):
    workdir = tmp_path / "ntk"
    assert run("--config=ntk_trainability:smoke", f"--workdir={workdir}") == 0
    checks = json.loads((workdir / "checks.json").read_text())
    assert len(checks) == 4 and all(c["passed"] for c in checks), checks
    for plot in ("learning_rates.png", "loss_curves.png", "departure.png", "catapult.png"):
        assert (workdir / "plots" / plot).stat().st_size > 0, plot
    rows = read_rows(workdir / "results.jsonl")
    assert len(rows) == 8  # 2 widths x 4 inits x 1 seed
    for r in rows:
        assert r["lr_predicted"] == pytest.approx(32 * 10 / r["lambda_max"], rel=1e-12)
        assert r["ratio"] == pytest.approx(r["lr_measured"] / r["lr_predicted"], rel=1e-12)
        assert len(r["trained_curve"]) == len(r["predicted_curve"]) == 101
        # step 0 is the network at init: the trained and predicted losses are one number
        assert r["trained_curve"][0] == pytest.approx(r["predicted_curve"][0], rel=1e-5)
        assert set(r["outcomes"]) <= {"monotone", "catapult", "diverged"}
    # the orthogonal init's rectangular input layer (64 digit features) has Var = 2 / max(64,
    # width), i.e. sigma_w2 = 2 x 64 / max(64, width)
    ortho = [r for r in rows if r["init"] == "orthogonal"]
    assert [r["sigma_w2_input"] for r in ortho] == pytest.approx(
        [2 * 64 / max(64, r["width"]) for r in ortho], rel=1e-6)
    assert "Reproduced: 4 of 4 checks" in (workdir / "report.md").read_text()

    # cut after the first 3 networks (and half a line of the 4th): the rerun computes the 5
    # others and gives the same rows
    lines = (workdir / "results.jsonl").read_text().splitlines(keepends=True)
    (workdir / "results.jsonl").write_text("".join(lines[:3]) + lines[3][:100])
    capsys.readouterr()
    assert run("--config=ntk_trainability:smoke", f"--workdir={workdir}") == 0
    assert "networks: 3/8 networks" in capsys.readouterr().err
    again = read_rows(workdir / "results.jsonl")
    assert [(r["width"], r["init"]) for r in again] == [(r["width"], r["init"]) for r in rows]
    for a, b in zip(again, rows, strict=True):
        np.testing.assert_allclose(a["trained_curve"], b["trained_curve"], rtol=1e-6)
        assert a["outcomes"] == b["outcomes"] and a["lr_measured"] == b["lr_measured"]


def test_runs_are_classified_by_their_losses():
    assert classify([1.0, 0.8, 0.5, 0.4], 3) == "monotone"
    assert classify([1.0, 5.0, 0.5, 0.4], 3) == "catapult"   # rose, came back below its start
    assert classify([1.0, 5.0, 2.0, 1.5], 3) == "diverged"   # did not come back
    assert classify([1.0, 5.0, np.inf, 0.1], 3) == "diverged"
    assert classify([1.0, 0.8, 0.9, 0.4], 1) == "monotone"    # only the first step is judged
    assert classify([1.0, 0.8, 0.9, 0.4], 2) == "catapult"


@pytest.mark.parametrize("override, words", [
    ("--config.widths=(1024, 64)", ["`config.widths`", "narrow then wide", "(1024, 64)"]),
    ("--config.widths=(64,)", ["`config.widths`", "two widths"]),
    ("--config.examples=5000", ["`config.examples`", "1438", "5000"]),
    ("--config.inits=(('a', 'he_nromal+relu'),)", ["he_nromal"]),
    ("--config.inits=(('a', 'he_normal+rellu'),)", ["rellu"]),
    ("--config.inits=(('a', 'he_normal+relu'), ('a', 'lecun_normal+relu'))",
     ["labels must be distinct"]),
    ("--config.catapult_multipliers=(0.5,)", ["`config.catapult_multipliers`", "0.5"]),
    ("--config.curve_multiplier=1.5", ["`config.curve_multiplier`", "1.5"]),
    ("--config.data='regression.npz'", ["`config.data`", "classification", "regression"]),
])
def test_bad_configs_are_named_before_any_compute(override, words, tmp_path, capsys,
                                                  monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    np.savez("regression.npz", x_train=rng.normal(size=(40, 4)), y_train=rng.normal(size=40),
             x_test=rng.normal(size=(8, 4)), y_test=rng.normal(size=8))
    workdir = tmp_path / "bad"
    assert run("--config=ntk_trainability:smoke", override, f"--workdir={workdir}") != 0
    err = capsys.readouterr().err
    for w in words:
        assert w in err, (w, err)
    assert not (workdir / "results.jsonl").exists()

"""Experiment smoke tests: every config's ':smoke' variant through the CLI, outputs, resume."""

import csv
import json
import pathlib

import numpy as np
import pytest

from jwinit import cli
from jwinit.experiments.common import agreement_threshold
from jwinit.experiments.runner import load_config

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run(*args):
    return cli.main(["run", *args])


def read_summary(workdir):
    with open(workdir / "summary.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("config", ["he2015", "glorot2010"])
def test_signal_propagation_configs_reproduce_the_papers(config, tmp_path):
    workdir = tmp_path / config
    assert run(f"--config={ROOT / 'configs' / config}.py:smoke", f"--workdir={workdir}") == 0
    for name in ("config.json", "results.jsonl", "summary.csv", "report.md",
                 "plots/forward.png", "plots/backward.png"):
        assert (workdir / name).stat().st_size > 0, name
    rows = read_summary(workdir)
    checked = [r for r in rows if r["expected"]]
    assert len(checked) >= 2
    assert all(r["reproduced"] == "True" for r in checked), checked
    assert "Reproduced: " in (workdir / "report.md").read_text()


def test_a_bias_with_arguments_is_accepted_as_the_python_api_accepts_it(tmp_path):
    """`--config.bias='normal(stddev=0.05)'` is what `sweep(bias_init=('normal', {...}))` is:
    every row carries the bias and its sigma_b^2 = 0.05^2."""
    from jwinit.results import read_rows

    workdir = tmp_path / "bias"
    assert run("--config=he2015:smoke", "--config.bias=normal(stddev=0.05)",
               "--config.depths=(10,)", f"--workdir={workdir}") == 0
    rows = read_rows(workdir / "results.jsonl")
    assert rows and {r["bias"] for r in rows} == {"normal(stddev=0.05)"}
    assert all(r["sigma_b2"] == pytest.approx(0.0025, rel=1e-12) for r in rows)


def test_resume_and_refusal_to_overwrite(tmp_path):
    workdir = tmp_path / "he"
    cfg = f"--config={ROOT / 'configs' / 'he2015.py'}:smoke"
    assert run(cfg, "--config.pairs=('he_normal+relu',)", f"--workdir={workdir}") == 0
    results = (workdir / "results.jsonl").read_bytes()
    n = len(results.splitlines())
    assert n == 4  # one row per seed
    # the same config resumes: nothing is recomputed or appended
    assert run(cfg, "--config.pairs=('he_normal+relu',)", f"--workdir={workdir}") == 0
    assert (workdir / "results.jsonl").read_bytes() == results
    # a different config is refused and the results are kept
    assert run(cfg, "--config.seeds=5", f"--workdir={workdir}") == 2
    assert (workdir / "results.jsonl").read_bytes() == results
    stamp = json.loads((workdir / "config.json").read_text())
    assert stamp["seeds"] == 4


def test_bad_configs_fail_before_compute(tmp_path, capsys):
    cfg = f"--config={ROOT / 'configs' / 'he2015.py'}:smoke"
    assert run(cfg, "--config.pairs=('he_norml+relu',)", f"--workdir={tmp_path / 'a'}") == 2
    assert "unknown initializer 'he_norml'" in capsys.readouterr().err
    assert not (tmp_path / "a" / "results.jsonl").exists()
    assert run(cfg, "--config.depths=(0,)", f"--workdir={tmp_path / 'b'}") == 2
    assert "depth" in capsys.readouterr().err
    assert run(f"--config={ROOT / 'configs' / 'he2015.py'}:huge") == 2
    assert run("--config.seeds=3") == 2


def test_phase_diagram_matches_the_c_map(tmp_path):
    workdir = tmp_path / "phase"
    cfg = f"--config={ROOT / 'configs' / 'schoenholz2017.py'}:smoke"
    assert run(cfg, "--config.sigma_w2=(0.5, 1.5, 4.0)", f"--workdir={workdir}") == 0
    rows = read_summary(workdir)
    assert len(rows) == 6
    assert {r["phase"] for r in rows} == {"ordered", "chaotic"}
    # every cell follows the mean-field c-map within 5 standard errors at every layer
    assert all(r["agrees"] == "True" for r in rows), rows
    for name in ("phase_diagram.png", "correlations.png"):
        assert (workdir / "plots" / name).stat().st_size > 0
    report = (workdir / "report.md").read_text()
    assert "PASS" in report and "FAIL" not in report


def test_isometry_reproduces_saxe_and_pennington(tmp_path):
    workdir = tmp_path / "iso"
    cfg = f"--config={ROOT / 'configs' / 'pennington2017.py'}:smoke"
    assert run(cfg, "--config.depths=(4, 8)", f"--workdir={workdir}") == 0
    checks = json.loads((workdir / "checks.json").read_text())
    assert len(checks) == 3
    assert all(c["passed"] for c in checks), checks
    rows = read_summary(workdir)
    assert len(rows) == 8  # 2 cases x 2 weights x 2 depths
    # every moment agrees with free probability within the Student-t / Bonferroni threshold
    k = agreement_threshold(6, 2 * len(rows), 0.01)
    assert 7 < k < 8  # df = 5: the t quantile at 1 - 0.01 / 32
    for r in rows:
        assert r["agrees"] == "True", r
        for moment in ("mean", "variance"):
            gap = abs(float(r[moment]) - float(r[f"theory_{moment}"]))
            assert gap <= k * float(r[f"{moment}_se"]), (moment, r)


def test_isometry_threshold_is_the_bonferroni_student_t_quantile():
    from scipy import stats

    # one test at 5%: the familiar two-sided t quantile (df = 9: 2.262)
    assert agreement_threshold(10, 1, 0.05) == pytest.approx(2.2621571628, rel=1e-9)
    # m tests share the family-wise error: each is tested at family_error / m
    assert agreement_threshold(12, 36, 0.01) == pytest.approx(
        stats.t.ppf(1 - 0.01 / 72, 11), rel=1e-12)
    # more seeds, a tighter threshold; tending to the normal quantile
    ks = [agreement_threshold(s, 36, 0.01) for s in (4, 8, 16, 64, 10**6)]
    assert ks == sorted(ks, reverse=True)
    assert ks[-1] == pytest.approx(stats.norm.ppf(1 - 0.01 / 72), rel=1e-4)


def test_linear_learning_reproduces_saxe_depth_independent_learning(tmp_path):
    workdir = tmp_path / "saxe"
    cfg = f"--config={ROOT / 'configs' / 'saxe2013.py'}:smoke"
    assert run(cfg, "--config.depths=(2, 16, 32)", f"--workdir={workdir}") == 0
    checks = json.loads((workdir / "checks.json").read_text())
    assert len(checks) == 4
    assert all(c["passed"] for c in checks), checks
    rows = {(r["scheme"].split("(")[0], int(r["depth"])): r for r in read_summary(workdir)}
    # orthogonal reaches the criterion at every depth within the step budget, and at depth 32
    # faster than the scaled Gaussian at depth 16; the Gaussian stalls when deep: its error after
    # max_steps at depth 32 is still above the criterion
    smoke = load_config(f"{ROOT / 'configs' / 'saxe2013.py'}:smoke")[0]
    steps = {d: float(rows[("orthogonal", d)]["median_steps"]) for d in (2, 16, 32)}
    assert all(s <= smoke.max_steps for s in steps.values()), steps
    assert steps[32] < float(rows[("variance_scaling", 16)]["median_steps"])
    assert rows[("variance_scaling", 32)]["median_steps"] == "inf"
    assert float(rows[("variance_scaling", 32)]["median_final_error"]) > smoke.criterion
    for name in ("plots/time_vs_depth.png", "plots/learning_curves.png", "report.md"):
        assert (workdir / name).stat().st_size > 0, name

    # resume: a lost cell and a cut-short last line are recomputed, the others are kept
    results = workdir / "results.jsonl"
    lines = results.read_text().splitlines()
    assert len(lines) == 6
    kept = lines[:-1]
    results.write_text("\n".join(kept) + "\n" + lines[-1][: len(lines[-1]) // 2])
    before = read_summary(workdir)
    assert run(cfg, "--config.depths=(2, 16, 32)", f"--workdir={workdir}") == 0
    after_lines = results.read_text().splitlines()
    assert after_lines[:-1] == kept
    assert json.loads(after_lines[-1]) == json.loads(lines[-1])  # deterministic recomputation
    assert read_summary(workdir) == before


def test_linear_learning_time_to_criterion_is_exact_for_one_layer():
    """Depth 1: M - W_t = (1 - lr / N)^t (M - W_0), so the relative error falls by
    (1 - lr / N)^2 per step and the step count to the criterion is known in closed form."""
    import math

    import jax
    import numpy as np

    import jwinit
    from jwinit.experiments.linear_learning import teacher, time_to_criterion

    n, lrs, crit = 8, [0.5, 2.0, 4.0], 1e-3
    out = time_to_criterion(jwinit.zeros(), 1, n, lrs, criterion=crit, max_steps=1000,
                            key=jax.random.key(3))
    assert out["initial_error"] == pytest.approx(1.0, rel=1e-6)  # W_0 = 0
    # in lock step, the runs stop when the fastest rate arrives; only it is counted
    fastest = math.ceil(math.log(crit) / (2 * math.log(1 - 4.0 / n)))
    assert out["best_steps"] == fastest
    assert out["best_lr"] == 4.0
    assert list(out["steps"][:2]) == [math.inf, math.inf]
    curve = out["curve"][: fastest + 1]
    np.testing.assert_allclose(curve, (1 - 4.0 / n) ** (2 * np.arange(fastest + 1)), rtol=1e-4)
    assert np.isnan(out["curve"][fastest + 1 :]).all()
    m = np.asarray(teacher(jax.random.key(0), 64), np.float64)
    assert abs(m.var() * 64 - 1) < 4 * math.sqrt(2 / 64**2)  # entries N(0, 1/64): 4 s.e.


def test_linear_learning_product_and_bad_configs(tmp_path, capsys):
    import jax
    import numpy as np

    from jwinit.experiments.linear_learning import _product

    for depth in (1, 2, 3, 5, 8):
        ws = jax.random.normal(jax.random.key(depth), (depth, 5, 5)) / np.sqrt(5)
        ref = np.eye(5)
        for w in np.asarray(ws, np.float64):
            ref = w @ ref  # layer 0 acts first
        np.testing.assert_allclose(np.asarray(_product(ws)), ref, rtol=0, atol=1e-5)
    cfg = f"--config={ROOT / 'configs' / 'saxe2013.py'}:smoke"
    assert run(cfg, "--config.lr_times_depth=(1.0, -2.0)", f"--workdir={tmp_path / 'a'}") == 2
    assert "lr_times_depth" in capsys.readouterr().err
    assert run(cfg, "--config.criterion=1.5", f"--workdir={tmp_path / 'b'}") == 2
    assert "criterion" in capsys.readouterr().err
    assert run(cfg, "--config.schemes=('orthogonl',)", f"--workdir={tmp_path / 'c'}") == 2
    assert "orthogonl" in capsys.readouterr().err
    assert run(cfg, "--config.schemes=('(2.0, 0.0)',)", f"--workdir={tmp_path / 'd'}") == 2
    assert "mean-field pair" in capsys.readouterr().err
    assert not (tmp_path / "a" / "results.jsonl").exists()


def test_isometry_resumes_from_its_cells(tmp_path):
    workdir = tmp_path / "iso"
    cfg = f"--config={ROOT / 'configs' / 'pennington2017.py'}:smoke"
    args = (cfg, "--config.depths=(2, 4)", "--config.cases=(('linear', 0.0),)",
            f"--workdir={workdir}")
    assert run(*args) == 0
    results = workdir / "results.jsonl"
    lines = results.read_text().splitlines()
    assert len(lines) == 4  # (gaussian, orthogonal) x 2 depths
    summary = read_summary(workdir)
    # lose the last cell mid-write: only it is recomputed, identically
    results.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:100])
    assert run(*args) == 0
    assert results.read_text().splitlines() == lines
    assert read_summary(workdir) == summary


def test_progress_bar_reports_and_stays_silent_off_a_terminal():
    import io

    from rich.console import Console

    from jwinit.experiments.common import progress_bar

    log = io.StringIO()
    with progress_bar("probes", console=Console(file=log, width=200)) as update:
        update(0, 4)
        update(2, 4)
        update(2, 4)  # no move: no line
        update(4, 4)
    lines = log.getvalue().splitlines()  # not a terminal: a line per step, no bar
    assert len(lines) == 3 and lines[1].startswith("probes: 2/4 cells (50%)")
    assert "ETA" in lines[1] and "ETA" not in lines[0]
    shown = io.StringIO()
    with progress_bar("probes", console=Console(file=shown, force_terminal=True,
                                                width=80)) as update:
        update(0, 4)
        update(3, 4)
    assert "probes" in shown.getvalue() and "3/4" in shown.getvalue()


def test_a_killed_run_resumes_without_redoing_its_finished_cells(tmp_path):
    """SIGKILL a real run once two cells are logged; the rerun reads them back (and says so),
    computes only the rest, and ends with every cell once, the finished ones byte-identical."""
    import signal
    import subprocess
    import sys

    workdir = tmp_path / "iso"
    cmd = [sys.executable, "-c", "import sys; from jwinit.cli import main; sys.exit(main())",
           "run", f"--config={ROOT / 'configs' / 'pennington2017.py'}:smoke",
           "--config.depths=(2, 3, 4, 5)", "--config.width=32", f"--workdir={workdir}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stderr:  # not a terminal: one progress line per finished cell
            if line.startswith("Jacobian spectra: 2/16 cells"):
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGKILL
    results = workdir / "results.jsonl"
    before = results.read_text().splitlines()
    finished = [line for line in before if line.endswith("}")]
    assert 2 <= len(finished) < 16
    assert not (workdir / "report.md").exists()

    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    progress = [line for line in again.stderr.splitlines() if line.startswith("Jacobian")]
    k = len(finished)
    assert progress[0].startswith(f"Jacobian spectra: {k}/16 cells"), progress[0]
    assert f"{k} read back" in progress[0]
    # one line per computed cell after the read-back ones, and nothing computed twice
    assert [int(p.split()[2].split("/")[0]) for p in progress] == list(range(k, 17))
    after = results.read_text().splitlines()
    assert after[:k] == finished and len(after) == 16
    keys = [json.loads(line)["activation"] + json.loads(line)["weights"]
            + str(json.loads(line)["depth"]) for line in after]
    assert len(set(keys)) == 16
    assert "Reproduced: " in (workdir / "report.md").read_text()


def test_a_training_config_killed_at_any_moment_resumes_to_the_same_rows(tmp_path, capsys):
    """SIGKILL a training config in its first network's training, again just after it moved on
    to the second network, and again at a moment chosen by a clock; then cut the last
    checkpoint written in half. The last rerun says that it restarts that run, and results.jsonl
    (written once every network has trained) equals an uninterrupted run's byte for byte."""
    import signal
    import subprocess
    import sys
    import time

    args = ["--config=glorot2010_training:smoke", "--keep_checkpoints"]
    assert run(*args, f"--workdir={tmp_path / 'whole'}") == 0
    whole = (tmp_path / "whole" / "results.jsonl").read_text()
    assert whole.count("\n") == 600  # 2 networks x 12 runs x 25 evaluations
    workdir = tmp_path / "killed"
    cmd = [sys.executable, "-m", "jwinit.cli", "run", *args, f"--workdir={workdir}"]
    for stop in ("training: 300/1200", "training: 675/1200", 0.5):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)
        try:
            if isinstance(stop, str):
                for line in proc.stderr:  # not a terminal: one line per evaluation
                    if line.startswith(stop):
                        break
            else:  # past the start-up, at no particular point of the run
                for line in proc.stderr:
                    if line.startswith("training: "):
                        break
                time.sleep(stop)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=120)
        finally:
            proc.kill()
        assert proc.returncode == -signal.SIGKILL
        assert not (workdir / "report.md").exists()
    checkpoints = sorted((workdir / "checkpoints").glob("*.npz"))
    assert [p.stem for p in checkpoints] == ["sigmoid", "tanh"]  # the second network began
    last = max(checkpoints, key=lambda p: p.stat().st_mtime)
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    capsys.readouterr()
    assert run(*args, f"--workdir={workdir}") == 0
    err = capsys.readouterr().err
    assert f"jwinit run: warning: the checkpoint {str(last)!r} is damaged" in err, err
    assert "restarts from step 0" in err
    assert (workdir / "results.jsonl").read_text() == whole


TRAINING = {  # config -> (checks, plots)
    "he2015_training": (2, ["curves.png"]),
    "glorot2010_training": (3, ["curves.png", "activations.png"]),
    "symmetry": (5, ["curves.png"]),
    "fixup2019": (4, ["curves.png"]),
    "lsuv2016": (3, ["curves.png"]),
    "pretraining": (2, ["curves.png"]),
    "irnn2015": (2, ["curves.png"]),
    "tfixup2020": (2, ["curves.png"]),
    "gradinit2021": (2, ["curves.png"]),
    "schoenholz2017_trainability": (2, ["trainability.png", "agreement.png"]),
    "sutskever2013": (4, ["curves.png"]),
}


@pytest.mark.smoke  # the full run checks these claims at full size (tests/test_full_configs.py)
@pytest.mark.parametrize("name", sorted(TRAINING))
def test_training_configs_reproduce_their_papers_at_smoke_size(name, tmp_path):
    workdir = tmp_path / name
    assert run(f"--config={name}:smoke", f"--workdir={workdir}") == 0
    checks = json.loads((workdir / "checks.json").read_text())
    n, plots = TRAINING[name]
    assert len(checks) == n and all(c["passed"] for c in checks), checks
    for plot in plots:
        assert (workdir / "plots" / plot).stat().st_size > 0, plot
    rows = [json.loads(line) for line in (workdir / "results.jsonl").read_text().splitlines()]
    assert rows and {"init", "learning_rate", "seed", "step", "train_loss", "test_accuracy",
                     "diverged"} <= set(rows[0])
    assert "Reproduced: " in (workdir / "report.md").read_text()


def test_training_rerun_reads_its_checkpoints_back(tmp_path, capsys):
    """With --keep_checkpoints a finished training run keeps its resumable state and a rerun
    reads every step back; by default the state is removed once the run has finished (the
    report says how much), and a rerun computes nothing."""
    workdir = tmp_path / "sym"
    args = ("--config=symmetry:smoke", "--config.steps=100", f"--workdir={workdir}")
    assert run(*args, "--keep_checkpoints") == 0
    first = (workdir / "results.jsonl").read_text()
    assert any((workdir / "checkpoints").iterdir())
    capsys.readouterr()
    assert run(*args) == 0
    log = capsys.readouterr().err
    assert "training: 100/100 steps (100%), 100 read back" in log  # nothing trained again
    assert (workdir / "results.jsonl").read_text() == first
    # that rerun (no --keep_checkpoints) finished the run: its checkpoints are gone
    assert not (workdir / "checkpoints").exists()
    report = (workdir / "report.md").read_text()
    assert "MB of resumable training state) were removed once it finished" in report
    capsys.readouterr()
    assert run(*args) == 0
    out = capsys.readouterr()
    assert "already complete: nothing to compute" in out.out and "training:" not in out.err
    assert (workdir / "results.jsonl").read_text() == first


HE, MUP = "he2015_training:smoke", "mup_coordcheck:smoke"


@pytest.mark.parametrize("config, override, words", [
    (HE, "--config.inits=(('a', 'he_nromal'),)", ["he_nromal"]),
    (HE, "--config.claims=(('reaches', 'ref', 'nobody', 'relu', 10),)", ["nobody"]),
    (HE, "--config.claims=(('flies', 'ref'),)", ["flies", "reaches"]),
    (HE, "--config.eval_every=0", ["`config.eval_every`", "0"]),
    (HE, "--config.inits=(('he', 'he_normal'), ('z', 'lsuv:zeros'))",
     ["'lsuv:zeros'", "cannot rescale", "'lsuv:orthogonal'"]),
    (HE, "--config.optimizer='rmsprop'", ["`config.optimizer`", "rmsprop"]),
    (HE, "--config.inits=(('a', 'fixup'),)", ["'fixup'", "config.model = 'residual'"]),
    (HE, "--config.model='resnet'", ["`config.model`", "resnet", "residual"]),
    ("fixup2019:smoke", "--config.inits=(('a', 'pretrain:he_normal'),)",
     ["'pretrain:'", "config.model = 'mlp'"]),
    ("irnn2015:smoke", "--config.inits=(('a', {'recurrent/kernal$': 'irnn'}),)",
     ["'recurrent/kernal$'", "matches no parameter", "relu RNN", "recurrent/kernel"]),
    ("irnn2015:smoke", "--config.inits=(('a', {'recurrent/kernel$': 'irnm'}),)", ["irnm"]),
    ("irnn2015:smoke", "--config.claims=(('stalls', 'ref', 'identity recurrent, Glorot input', "
     "'relu RNN', 2, 'orthogonal recurrent, Glorot input'),)",
     ["'stalls'", "classification", "regression"]),
    ("irnn2015:smoke", "--config.clip_norm=-1.0", ["`config.clip_norm`", "-1"]),
    ("irnn2015:smoke", "--config.data_options.length=1",
     ["`config.data_options`", "`length`", "1"]),
    ("tfixup2020:smoke", "--config.networks=((2, 'mid', 0),)", ["`config.networks", "mid"]),
    ("tfixup2020:smoke", "--config.networks=((2, None, 0, ('Adam',)),)",
     ["`config.networks`", "Adam", "Xavier"]),
    ("tfixup2020:smoke", "--config.networks=((2, None, 0, ('T-Fixup',)), (12, None, 0))",
     ["('2 layers, no LayerNorm', 'Xavier')", "does not train"]),
    ("tfixup2020:smoke", "--config.heads=3", ["`config.width`", "`config.heads`"]),
    ("tfixup2020:smoke", "--config.inits=(('a', 't_fixup'), ('b', 'fixup'))",
     ["'fixup'", "residual"]),
    ("gradinit2021:smoke", "--config.gradinit_gamma=0.0", ["`config.gradinit_gamma`", "0"]),
    (MUP, "--config.widths=(64,)", ["`config.widths`", "at least 2"]),
    (MUP, "--config.seeds=2", ["`config.seeds`", "3"]),
    (MUP, "--config.claims=(('slope_within', 'ref', 'NTK', 'hidden', 'all', 0.0, 0.1),)",
     ["NTK", "SP", "muP"]),
    (MUP, "--config.claims=(('slope_within', 'ref', 'muP', 'hidden', (9,), 0.0, 0.1),)",
     ["(9,)", "[0, 3]"]),
])
def test_bad_experiment_configs_fail_before_any_compute(config, override, words, tmp_path,
                                                        capsys):
    workdir = tmp_path / "bad"
    assert run(f"--config={config}", override, f"--workdir={workdir}") == 2
    err = capsys.readouterr().err
    for w in words:
        assert w in err, (w, err)
    assert not workdir.exists()


def test_coord_check_slopes_are_exact_for_power_laws():
    from jwinit.experiments.coord_check import slopes

    widths = [64, 128, 512, 2048]
    exponents = np.array([[[0.0, 0.5, -0.5]]])  # (seeds, steps, layers)
    rms = np.stack([3.0 * w ** exponents for w in widths])
    np.testing.assert_allclose(slopes(widths, rms), exponents, atol=1e-12)
    rms[0, 0, 0, 1] = 0.0  # a dead layer at one width: no slope, not a number that looks fine
    assert np.isnan(slopes(widths, rms)[0, 0, 1])


def test_coord_check_smoke_reproduces_and_resumes(tmp_path, capsys):
    workdir = tmp_path / "coord"
    args = ("--config=mup_coordcheck:smoke", "--config.widths=(64, 256)", "--config.seeds=4",
            "--config.claims=()", f"--workdir={workdir}")
    assert run(*args) == 0
    rows = (workdir / "results.jsonl").read_text().splitlines()
    assert len(rows) == 4
    row = json.loads(rows[0])
    assert np.asarray(row["activation_rms"]).shape == (4, 4, 4)  # seeds, steps + 1, layers
    for plot in ("coord_check.png", "grad_coords.png"):
        assert (workdir / "plots" / plot).stat().st_size > 0
    capsys.readouterr()
    assert run(*args) == 0
    assert "4 read back" in capsys.readouterr().err
    assert (workdir / "results.jsonl").read_text().splitlines() == rows


def test_audit_demo_catches_each_bug_resumes_and_refuses_bad_fields(tmp_path, capsys):
    """The audit experiment on the tiny Decoder: 6/6 (no flag on the correct model, each bug
    exactly at its paths), its plots and tables; a rerun computes nothing; a size that is not a
    Decoder size is refused before any write."""
    workdir = tmp_path / "audit"
    args = ("--config=audit_demo:smoke", "--config.seeds=3", "--config.bug_seeds=1",
            f"--workdir={workdir}")
    assert run(*args) == 0
    report = (workdir / "report.md").read_text()
    assert "**Reproduced: 6 of 6 checks.**" in report
    assert (workdir / "plots" / "flags.png").stat().st_size > 0
    assert (workdir / "plots" / "z_scores.png").stat().st_size > 0
    rows = [json.loads(line) for line in (workdir / "results.jsonl").read_text().splitlines()]
    assert [r["case"] for r in rows].count("correct") == 3 and len(rows) == 8
    copied = next(r for r in rows if r["case"] == "block copied")
    assert {p for p, k in copied["flags"]} == set(copied["expected_paths"])
    assert all(k == "duplicate" for _, k in copied["flags"])
    capsys.readouterr()
    assert run(*args) == 0  # every audit read back, nothing computed
    assert "audits: 8/8 audits (100%), 8 read back" in capsys.readouterr().err
    assert run("--config=audit_demo:smoke", "--config.size='huge'",
               f"--workdir={tmp_path / 'bad'}") == 2
    err = capsys.readouterr().err
    assert "`config.size`" in err and "'huge'" in err and "gpt2_small" in err
    assert not (tmp_path / "bad").exists()

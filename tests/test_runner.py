"""`jwinit run`: configs by name from any folder, overrides, validation before any write, the
workdir lock, cleanup after a kill, one-line errors, standard JSON."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

from jwinit import cli
from jwinit.experiments.io import TEMP_PREFIX, claim_workdir
from jwinit.experiments.runner import load_config, run_cli, shipped_configs

ROOT = pathlib.Path(__file__).resolve().parents[1]
FAST = ("--config.pairs=('he_normal+relu',)", "--config.depths=(3,)", "--config.widths=(16,)",
        "--config.seeds=2", "--config.batch_size=8")


def test_every_config_ships_with_the_package():
    shipped = shipped_configs()
    on_disk = {p.stem for p in (ROOT / "configs").glob("*.py") if not p.name.startswith("_")}
    assert set(shipped) == on_disk and {"he2015", "glorot2010"} <= on_disk


def test_run_a_config_by_name_from_any_folder(tmp_path):
    # a fresh process in an unrelated folder, as a user types it
    env = dict(os.environ, XLA_FLAGS="", JAX_PLATFORMS="cpu")
    out = subprocess.run(
        [sys.executable, "-m", "jwinit.cli", "run", "--config=he2015:smoke", *FAST,
         f"--workdir={tmp_path / 'w'}"], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=300)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "w" / "report.md").exists()


def test_help_lists_the_configs(capsys):
    assert run_cli(["--help"]) == 0
    text = capsys.readouterr().out
    assert "--config=NAME" in text and "he2015" in text and "schoenholz2017" in text


@pytest.mark.parametrize("args, words", [
    (["--config=nope"], ["unknown config 'nope'", "he2015"]),
    (["--config=/no/such/file.py"], ["does not exist"]),
    (["--config=he2015:huge"], ["get_config('huge')", "smoke"]),
    (["--config=he2015", "--config.depthz=3"], ["no field 'depthz'", "depths"]),
    (["--config=he2015", "--config.seeds=many"], ["--config.seeds", "many"]),
    (["--config=he2015", "--config.seeds=2.5"], ["--config.seeds"]),
    (["--config=he2015", "--config.depths=(0,)"], ["`config.depths`", ">= 1", "0"]),
    (["--config=he2015", "--config.pairs=('he_norml+relu',)"], ["he_norml", "he_normal"]),
    (["--config=he2015", "--config.pairs=('he_normal+rel',)"], ["rel", "relu"]),
    (["--config=he2015", "--config.precision='fp8'"], ["`precision`", "fp8", "highest"]),
    (["--config=he2015", "--config.bias=(2.0, 0.1)"], ["`config.bias`"]),
    (["--config=he2015", "--workdir="], ["`--workdir` is empty"]),
    (["--config=he2015", "--frobnicate"], ["unknown argument '--frobnicate'"]),
    (["--config=he2015_training:smoke", "--config.data='/no/such.npz'"],
     ["FileNotFoundError", "/no/such.npz"]),
    (["--config.seeds=3"], ["`--config` is required"]),
    # training fields the trainer would refuse only after config.json is written
    (["--config=he2015_training:smoke", "--config.learning_rates=(0.0, 0.01)"],
     ["`config.learning_rates`", "positive", "0.0"]),
    (["--config=he2015_training:smoke", "--config.learning_rates=(0.01, 0.01)"],
     ["`config.learning_rates` must be distinct"]),
    (["--config=he2015_training:smoke", "--config.batch_size=5000"],
     ["`config.batch_size`", "at most the training set's size 1438", "5000"]),
    (["--config=pretraining:smoke", "--config.pretrain_learning_rate=0.0"],
     ["`config.pretrain_learning_rate`", "positive"]),
    (["--config=schoenholz2017_trainability:smoke", "--config.batch_size=5000"],
     ["`config.batch_size`", "1438"]),
    (["--config=he2015", "--config.expected=(('he_normal+relu', 'fine'),)"], ["verdict"]),
    (["--config=sutskever2013:smoke", "--config.data_options={'target': 'pixels'}"],
     ["`config.data_options`", "`target`", "'pixels'", "('labels', 'inputs')"]),
    (["--config=sutskever2013:smoke", "--config.data_options.target=pixels"],
     ["`target`", "'pixels'"]),
    (["--config=sutskever2013:smoke", "--config.data_options=3"],
     ["`--config.data_options` must be a dict like the config's {'target': 'inputs'}"]),
    (["--config=sutskever2013:smoke", "--config.width=(256, 128)"],
     ["`config.width`", "`depth` (5)", "(256, 128)"]),
    (["--config=sutskever2013:smoke", "--config.claims=(('loss_ratio', 'x', 'dense N(0, 1)', "
      "'sigmoid, no momentum', 'dense N(0, 1)', 'sigmoid, no momentum', 3.0, 1.0),)"],
     ["`config.claims`", "0 < low <= high"]),
])
def test_bad_input_is_one_line_before_any_write(args, words, tmp_path, capsys):
    workdir = tmp_path / "w"
    extra = [] if any(a.startswith("--workdir") for a in args) else [f"--workdir={workdir}"]
    assert run_cli([*args, *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("jwinit run: error: "), err
    for w in words:
        assert w in err, (w, err)
    assert not workdir.exists()  # nothing was written: the corrected config can use it


def test_broken_config_files_are_one_line_errors(tmp_path, capsys):
    bad = tmp_path / "bad.py"
    bad.write_text("def get_config(arg=None):\n    return (\n")
    assert run_cli([f"--config={bad}", f"--workdir={tmp_path / 'w'}"]) == 2
    assert "syntax error on line" in capsys.readouterr().err
    bad.write_text("def get_config(arg=None):\n    raise RuntimeError('boom')\n")
    assert run_cli([f"--config={bad}"]) == 2
    err = capsys.readouterr().err
    assert "RuntimeError: boom" in err and err.count("\n") == 1
    bad.write_text("x = 1\n")
    assert run_cli([f"--config={bad}"]) == 2
    assert "no get_config" in capsys.readouterr().err


def test_overrides_of_tuples_and_none_fields():
    config, name = load_config("he2015:smoke")
    assert name == "he2015_smoke"
    from jwinit.experiments.runner import apply_override

    apply_override(config, "depths", "(3, 4)")
    assert config.depths == (3, 4)
    apply_override(config, "depths", "5,6")
    assert config.depths == (5, 6)
    apply_override(config, "depths", "7")
    assert config.depths == (7,)
    assert config.bias is None
    apply_override(config, "bias", "normal(stddev=0.05)")  # a None field takes a value
    assert config.bias == "normal(stddev=0.05)"
    apply_override(config, "precision", "highest")
    assert config.precision == "highest"


def test_workdir_lock_names_the_holder(tmp_path, capsys):
    workdir = tmp_path / "w"
    config, _ = load_config("he2015:smoke")
    with claim_workdir(workdir, config.to_dict()):
        assert run_cli(["--config=he2015:smoke", f"--workdir={workdir}"]) == 2
        err = capsys.readouterr().err
        assert f"pid {os.getpid()}" in err and "in use by another run" in err
    assert not (workdir / "results.jsonl").exists()
    # released: the run goes through now
    assert run_cli(["--config=he2015:smoke", *FAST, f"--workdir={workdir}"]) == 2  # other config
    assert "different config" in capsys.readouterr().err


def test_two_processes_one_workdir(tmp_path):
    """Two `jwinit run` into one workdir: the second is refused while the first holds it, and
    every row is written once."""
    workdir = tmp_path / "w"
    env = dict(os.environ, XLA_FLAGS="", JAX_PLATFORMS="cpu")
    cmd = [sys.executable, "-m", "jwinit.cli", "run", "--config=he2015:smoke", *FAST,
           f"--workdir={workdir}"]
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    lock = workdir / ".lock"
    for _ in range(600):  # wait until the first holds the lock
        if lock.exists() and lock.read_text().startswith("pid"):
            break
        import time
        time.sleep(0.05)
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    if second.returncode == 2:
        assert "in use by another run" in second.stderr
    else:  # the first finished before the second started: then it resumed, computing nothing
        assert second.returncode == 0
    rows = (workdir / "results.jsonl").read_text().splitlines()
    assert len(rows) == 2  # 1 pair x 2 seeds, each once


def test_temporary_files_of_a_killed_run_are_removed(tmp_path):
    workdir = tmp_path / "w"
    config, _ = load_config("he2015:smoke")
    with claim_workdir(workdir, config.to_dict()):
        pass
    (workdir / "plots").mkdir()
    stale = [workdir / f"{TEMP_PREFIX}summary.abc123.csv",
             workdir / "plots" / f"{TEMP_PREFIX}forward.x.png"]
    for s in stale:
        s.write_text("half written")
    with claim_workdir(workdir, config.to_dict()):
        assert not any(s.exists() for s in stale)


def test_results_are_standard_json(tmp_path):
    workdir = tmp_path / "w"
    # normal(stddev=1) + relu at width 16 overflows nowhere, but log ratios of a dead network do:
    assert run_cli(["--config=he2015:smoke", "--config.pairs=('zeros+relu',)",
                    "--config.depths=(3,)", "--config.widths=(16,)", "--config.seeds=2",
                    "--config.batch_size=8", "--config.expected=()", f"--workdir={workdir}"]) == 0
    text = (workdir / "results.jsonl").read_text()
    for line in text.splitlines():
        json.loads(line, parse_constant=lambda c: pytest.fail(f"bare {c} in results.jsonl"))
    assert '"-Infinity"' in text or '"NaN"' in text  # the non-finite log ratios, as strings


def test_a_config_states_only_what_differs_from_its_kinds_defaults(tmp_path):
    from jwinit.experiments import config, defaults
    from jwinit.experiments.runner import EXPERIMENTS

    for kind in EXPERIMENTS:  # every kind has its defaults, each of them a field of the kind
        d = defaults(kind)
        assert d["experiment"] == kind and len(d) > 5, kind
    doc = ("A study.\n\nTitle: Deep nets\nPaper: Someone 2020,\n  Sec. 2.\n"
           "Not covered: the rest.\n\nRun: jwinit run --config=x\n")
    c = config("training", None, doc, depth=7, smoke=lambda c: {"depth": c.depth + 1})
    assert (c.title, c.paper, c.not_covered, c.depth) == ("Deep nets", "Someone 2020, Sec. 2.",
                                                          "the rest.", 7)
    assert c.eval_examples == defaults("training")["eval_examples"] == 4096
    assert config("training", "smoke", doc, depth=7, smoke=lambda c: {"depth": c.depth + 1}
                  ).depth == 8
    with pytest.raises(ValueError, match=r"no field\(s\) dept;"):
        config("training", None, dept=7)
    with pytest.raises(ValueError, match="unknown config argument 'big'"):
        config("training", "big")
    with pytest.raises(ValueError, match="`smoke` names field"):
        config("training", "smoke", smoke={"widht": 3})
    with pytest.raises(ValueError, match="`kind` must be one of"):
        config("nope")
    # a config file written out in full without a newer field runs with its default
    path = tmp_path / "old.py"
    full = {k: v for k, v in load_config("symmetry")[0].to_dict().items()
            if k != "eval_examples"}
    path.write_text(f"import ml_collections\n\ndef get_config(arg=None):\n"
                    f"    return ml_collections.ConfigDict({full!r})\n")
    old, _ = load_config(str(path))
    assert old.eval_examples == 4096 and old.depth == 3


def test_shipped_configs_carry_their_report_texts():
    """Every shipped config's title, paper and 'not covered' come from its docstring, and every
    field it sets is one of its kind's."""
    from jwinit.experiments import defaults

    for name in shipped_configs():
        c, _ = load_config(name)
        assert set(c.keys()) == set(defaults(c.experiment)), name
        if "title" in c:
            assert c.title and c.title != defaults(c.experiment)["title"], name
            assert c.paper != "-" and c.not_covered, name
            assert "Run:" not in c.get("description", "") + c.not_covered, name


def test_config_workdir_and_overrides_take_a_space_as_well_as_an_equals_sign():
    from jwinit.experiments.runner import _parse

    spaced = _parse(["--config", "he2015:smoke", "--config.seeds", "3", "--workdir", "runs/x"])
    equals = _parse(["--config=he2015:smoke", "--config.seeds=3", "--workdir=runs/x"])
    assert spaced == equals == ("he2015:smoke", [("seeds", "3")], "runs/x", False, False, False,
                                [])
    assert _parse(["--config=he2015", "--keep_checkpoints"])[4] is True
    assert _parse(["--config=he2015", "--allow_failures"])[5] is True
    assert _parse(["--config=he2015", "--writer", "tensorboard", "--writer=wandb"])[6] == [
        "tensorboard", "wandb"]
    with pytest.raises(Exception, match="`--config` needs a value"):
        _parse(["--config"])
    with pytest.raises(Exception, match="`--workdir` needs a value"):
        _parse(["--config=he2015", "--workdir", "--config.seeds=2"])


def _cli(*args: str, columns: int = 200) -> subprocess.CompletedProcess:
    env = dict(os.environ, XLA_FLAGS="", JAX_PLATFORMS="cpu", COLUMNS=str(columns))
    return subprocess.run([sys.executable, "-m", "jwinit.cli", *args], env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_help_texts_name_the_configs_and_the_probe_defaults():
    top = _cli("--help").stdout
    assert "configs/x.py" not in top and "--config=he2015" in top
    probe = _cli("probe", "--help").stdout
    for words in ("(default: 64)", "(default: 512)", "(default: 256)", "(default: 4)"):
        assert words in probe, words


def test_list_keeps_whole_names_at_80_columns_and_a_closed_pipe_is_quiet(tmp_path):
    from jwinit import registry

    text = _cli("list", columns=80).stdout
    names = {line.split("│")[1].strip() for line in text.splitlines()
             if line.startswith("│") and line.split("│")[1].strip()}
    assert {e.name for e in registry.entries()} <= names
    assert max(len(line) for line in text.splitlines()) <= 80
    env = dict(os.environ, XLA_FLAGS="", JAX_PLATFORMS="cpu")
    piped = subprocess.run(f"{sys.executable} -m jwinit.cli list --markdown | head -n 2",
                           shell=True, env=env, capture_output=True, text=True, timeout=300)
    assert piped.stdout.startswith("| name |") and len(piped.stdout.splitlines()) == 2
    assert "Traceback" not in piped.stderr and "BrokenPipe" not in piped.stderr, piped.stderr


def test_ctrl_c_is_one_line_and_the_workdir_resumes(tmp_path):
    """SIGINT during a run: one line naming where it stopped and how to resume (exit 130), no
    traceback; the lock is released and a rerun of the same command reads the work back."""
    import signal
    import time

    workdir = tmp_path / "w"
    env = dict(os.environ, XLA_FLAGS="", JAX_PLATFORMS="cpu")
    # a run far longer than the test (20000 steps took 45 s): it cannot finish first
    cmd = [sys.executable, "-m", "jwinit.cli", "run", "--config=symmetry:smoke",
           "--config.steps=10000000", "--config.eval_every=100", f"--workdir={workdir}"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    checkpoints = workdir / "checkpoints"
    for _ in range(3000):  # until the first chunk is checkpointed
        if checkpoints.exists() and any(p.suffix == ".npz" for p in checkpoints.iterdir()):
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("jwinit run: interrupted at training: ") and "/10000000 steps" in last
    assert "rerun the same command to resume" in last
    from jwinit.experiments.runner import apply_override

    config = load_config("symmetry:smoke")[0]
    apply_override(config, "steps", "10000000")
    apply_override(config, "eval_every", "100")
    with claim_workdir(workdir, config.to_dict()):  # the lock was released: the same run resumes
        assert (workdir / "config.json").exists()


def test_a_claim_not_reproduced_exits_1_unless_failures_are_allowed(tmp_path, capsys):
    """he2015:smoke with Glorot expected to be preserved: that claim fails."""
    args = ["--config=he2015:smoke", "--config.pairs=('glorot_normal+relu',)",
            "--config.expected=(('glorot_normal+relu', 'preserved'),)"]
    assert run_cli([*args, f"--workdir={tmp_path / 'a'}"]) == 1
    err = capsys.readouterr().err
    assert "1 of 2 claims not reproduced" in err and "exit status 1" in err
    assert run_cli([*args, f"--workdir={tmp_path / 'b'}", "--allow_failures"]) == 0


def test_a_lost_keyboard_interrupt_stops_the_run_at_its_next_progress_update():
    """Python drops an exception raised inside a finalizer; a Ctrl-C that lands there must still
    stop the run: the next progress update raises it again, until the run has stopped."""
    import signal

    from jwinit.experiments.common import interruptible, progress_bar

    before = signal.getsignal(signal.SIGINT)  # (an xdist worker ignores SIGINT)
    with interruptible(), progress_bar("training", unit="steps") as update:
        update(0, 10)
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
        # the interrupt was swallowed (as in a finalizer): the run goes on, then updates
        with pytest.raises(KeyboardInterrupt):
            update(5, 10)
        with pytest.raises(KeyboardInterrupt):
            update(6, 10)
    update(7, 10)  # after the run, nothing is remembered
    assert signal.getsignal(signal.SIGINT) == before  # the run's handler is gone


@pytest.mark.parametrize("damage", [b"{garbage", b"\xff\xfe\x00", b""])
def test_a_damaged_workdir_stamp_is_one_line_and_nothing_is_changed(damage, tmp_path, capsys):
    """A workdir whose config.json is not readable JSON: exit 2, one line naming the file and
    what to do, and the workdir's files untouched."""
    work = tmp_path / "w"
    work.mkdir()
    (work / "config.json").write_bytes(damage)
    (work / "results.jsonl").write_text("kept\n")
    assert run_cli(["--config=symmetry:smoke", f"--workdir={work}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "config.json that is not readable JSON" in err[0], err
    assert "choose another --workdir" in err[0] and "Traceback" not in err[0]
    assert (work / "config.json").read_bytes() == damage
    assert (work / "results.jsonl").read_text() == "kept\n"


def test_a_workdir_with_files_but_no_stamp_is_refused(tmp_path, capsys):
    """Deleting config.json and rerunning with other settings would mix two runs' rows in one
    results.jsonl: a folder with files but no config.json is refused, and left as it was."""
    work = tmp_path / "w"
    assert run_cli(["--config=symmetry:smoke", "--config.steps=4", "--config.eval_every=2",
                    f"--workdir={work}", "--allow_failures"]) in (0, 1)
    (work / "config.json").unlink()
    before = {p.name: p.read_bytes() for p in work.iterdir() if p.is_file()}
    assert run_cli(["--config=symmetry:smoke", "--config.steps=6", "--config.eval_every=2",
                    "--config.seeds=3", f"--workdir={work}"]) == 2
    err = capsys.readouterr().err
    assert "holds files but no config.json" in err and "checks.json" in err, err
    assert {p.name: p.read_bytes() for p in work.iterdir() if p.is_file()} == before


@pytest.mark.parametrize("where", ["lock", "report"])
def test_a_workdir_that_cannot_be_written_is_one_line_and_the_work_is_kept(where, tmp_path,
                                                                           capsys, monkeypatch):
    """A workdir that refuses writes (read-only, full, another owner's), when it is claimed or
    when the report is written after the computing: exit 2 and one line naming the file, no
    traceback; once it can be written, the rerun finishes from the rows already written. (The
    refusal is made by the test: a read-only folder does not stop root, who may run CI.)"""
    import tempfile

    import jwinit.experiments.io as io_module
    import jwinit.results as results_module

    workdir = tmp_path / "w"
    args = ["run", "--config=glorot2010:smoke", f"--workdir={workdir}"]
    if where == "lock":
        real = io_module.os.open

        def refuse(path, *a, **k):
            if str(path).endswith(".lock"):
                raise PermissionError(13, "Permission denied", str(path))
            return real(path, *a, **k)

        monkeypatch.setattr(io_module.os, "open", refuse)
    else:
        real = tempfile.mkstemp

        def refuse(*a, **k):
            if k.get("suffix") == ".md":
                raise PermissionError(13, "Permission denied", str(k.get("dir")))
            return real(*a, **k)

        monkeypatch.setattr(results_module.tempfile, "mkstemp", refuse)
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip()
    last = err.splitlines()[-1]
    assert "Traceback" not in err and all(line.startswith("probes: ")
                                          for line in err.splitlines()[:-1]), err
    assert last.startswith("jwinit run: error: PermissionError:") and str(workdir) in last, err
    monkeypatch.undo()
    if where == "report":
        rows = (workdir / "results.jsonl").read_text()
        assert not (workdir / "report.md").exists()
    assert cli.main(args) == 0
    assert (workdir / "report.md").exists()
    if where == "report":  # nothing was computed again
        assert "read back" in capsys.readouterr().err
        assert (workdir / "results.jsonl").read_text() == rows

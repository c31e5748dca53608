"""Metric writers (`jwinit.writers`): TensorBoard scalars equal the trainer's rows and the run's
results.jsonl, hyperparameters once per run, only process 0 writes, wandb only when asked for."""

from __future__ import annotations

import math
import sys
import types

import jax
import numpy as np
import optax
import pytest

import jwinit
from jwinit.experiments.runner import run_cli
from jwinit.results import read_rows
from jwinit.train import METRICS
from jwinit.writers import TensorBoard, read_tensorboard, run_name

DATA = jwinit.data.load("digits")
MODEL = jwinit.models.MLP(depth=2, width=16, output_dim=10)
INIT = {"he_normal": "he_normal"}


def _hparams_sessions(logdir):
    """The number of HParams session-start summaries per run folder."""
    from tensorboardX.proto import event_pb2

    out = {}
    for path in sorted(logdir.rglob("events.out.tfevents.*")):
        run = path.parent.relative_to(logdir).as_posix()
        data, at = path.read_bytes(), 0
        while at + 12 <= len(data):
            length = int.from_bytes(data[at:at + 8], "little")
            event = event_pb2.Event()
            event.ParseFromString(data[at + 12:at + 12 + length])
            at += 16 + length
            for v in event.summary.value:
                if v.tag == "_hparams_/session_start_info":
                    out[run] = out.get(run, 0) + 1
    return out


def _equal(row_value, written):
    want = np.float32(row_value)
    return (math.isnan(written) and np.isnan(want)) or np.float32(written) == want


def test_tensorboard_scalars_equal_the_rows_and_hparams_are_written_once(tmp_path):
    # lr 50 diverges: its rows are NaN from the divergence on, and so are its scalars
    r = jwinit.train.train(MODEL, DATA, inits={"He": "he_normal", "Glorot": "glorot_normal"},
                           optimizer=optax.sgd,
                           learning_rates=[0.1, 50.0], steps=25, eval_every=10, seeds=2,
                           progress=False, writers=[TensorBoard(tmp_path)])
    written = read_tensorboard(tmp_path)
    names = {run_name(*run) for run in r.runs}
    assert set(written) == names and len(names) == 8
    rows = r.rows()
    assert {row["step"] for row in rows} == {0, 10, 20, 25}
    assert any(row["diverged"] for row in rows)  # the test covers a diverged run
    for row in rows:
        tags = written[run_name(row["init"], row["learning_rate"], row["seed"])]
        assert set(tags) == set(METRICS)
        for m in METRICS:
            steps = dict(tags[m])
            assert len(tags[m]) == 4 and row["step"] in steps
            assert _equal(row[m], steps[row["step"]]), (row, m, steps)
    assert _hparams_sessions(tmp_path) == dict.fromkeys(names, 1)


def test_only_process_zero_writes(tmp_path, monkeypatch):
    monkeypatch.setattr(jax, "process_index", lambda *a: 1)
    jwinit.train.train(MODEL, DATA, inits=INIT, optimizer=optax.sgd, learning_rates=[0.1],
                       steps=4, eval_every=2, seeds=1, progress=False,
                       writers=[TensorBoard(tmp_path)])
    assert not list(tmp_path.rglob("*"))


def test_wandb_is_imported_only_when_asked_for_and_gets_every_run(monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # not installed
    with pytest.raises(ImportError, match="pip install wandb"):
        jwinit.writers.Wandb(project="p")
    calls = []

    class Run:
        def __init__(self, **kw):
            calls.append(("init", kw["name"], kw["config"]))

        def log(self, values, step):
            calls.append(("log", step, sorted(values)))

        def finish(self):
            calls.append(("finish",))

    fake = types.SimpleNamespace(init=lambda **kw: Run(**kw))
    monkeypatch.setitem(sys.modules, "wandb", fake)
    r = jwinit.train.train(MODEL, DATA, inits=INIT, optimizer=optax.sgd,
                           learning_rates=[0.1], steps=4, eval_every=2, seeds=2, progress=False,
                           writers=[jwinit.writers.Wandb(project="p", mode="offline")])
    inits = [c for c in calls if c[0] == "init"]
    assert [c[1] for c in inits] == [run_name(*run) for run in r.runs]
    assert inits[0][2] == {"init": "he_normal", "learning_rate": 0.1, "seed": 0}
    assert [c[1] for c in calls if c[0] == "log"] == [0, 0, 2, 2, 4, 4]
    assert all(c[2] == sorted(METRICS) for c in calls if c[0] == "log")
    assert sum(c[0] == "finish" for c in calls) == 2


def test_bad_writers_are_refused_before_any_compute():
    with pytest.raises(TypeError, match="`writers`.*no write_hparams, write_scalars, close"):
        jwinit.train.train(MODEL, DATA, inits=INIT, optimizer=optax.sgd,
                           learning_rates=[0.1], steps=4, writers=[object()])
    with pytest.raises(TypeError, match="`writers` must be a list"):
        jwinit.train.train(MODEL, DATA, inits=INIT, optimizer=optax.sgd,
                           learning_rates=[0.1], steps=4, writers="tensorboard")


def test_cli_writer_tensorboard_equals_results_jsonl(tmp_path, capsys):
    work = tmp_path / "w"
    args = ["--config=he2015_training:smoke", "--config.depth=4", "--config.width=16",
            "--config.steps=20", "--config.eval_every=10",
            "--config.seeds=1", f"--workdir={work}", "--allow_failures"]
    assert run_cli([*args, "--writer", "tensorboard"]) in (0, 1)
    written = read_tensorboard(work / "tensorboard")
    rows = read_rows(work / "results.jsonl")
    assert len(written) == len({(r["network"], r["init"], r["learning_rate"], r["seed"])
                                for r in rows}) > 1
    for row in rows:
        run = f"{row['network']}/{run_name(row['init'], row['learning_rate'], row['seed'])}"
        for m in METRICS:
            value = row[m] if row[m] is not None else math.nan
            assert _equal(value, dict(written[run][m])[row["step"]]), (run, m)
    # a writer for an experiment that trains nothing, or one that is not installed, is refused
    # before anything is written
    assert run_cli(["--config=he2015:smoke", f"--workdir={tmp_path / 'p'}",
                    "--writer=tensorboard"]) == 2
    assert "trains nothing" in capsys.readouterr().err and not (tmp_path / "p").exists()
    assert run_cli([*args[:-2], f"--workdir={tmp_path / 'q'}", "--writer=mlflow"]) == 2
    assert "choose from ('tensorboard', 'wandb')" in capsys.readouterr().err


def test_results_render_in_treescope():
    """TrainResult, ProbeResult and SignalReport show their verdict or summary first in a
    notebook (treescope, Flax's display)."""
    import treescope

    r = jwinit.train.train(MODEL, DATA, inits=INIT, optimizer=optax.sgd, learning_rates=[0.1],
                           steps=4, eval_every=2, seeds=1, progress=False)
    text = treescope.render_to_text(r)
    assert text.startswith("TrainResult(") and 'summary="TrainResult(1 runs' in text
    assert "table=" in text and "train_loss=" in text
    p = jwinit.probe_mlp(0, jwinit.he_normal(), "relu", depth=8, width=64, batch_size=32,
                         seeds=2)
    text = treescope.render_to_text(p)
    assert text.startswith("ProbeResult(") and "verdict='preserved'" in text
    x = DATA.x_train[:32]
    report = jwinit.signal_report(MODEL, x, MODEL.init(jax.random.key(0), x))
    text = treescope.render_to_text(report)
    assert text.startswith("SignalReport(") and "'verdict':" in text

"""A training report never says about a run what the run does not show: a diverged run is
"diverged at step N" everywhere, medians are over the runs that did not diverge (with the count),
no learning rate whose runs all diverged is "best", and the plots keep the whole run in view."""

from __future__ import annotations

import math

import ml_collections
import numpy as np
import pytest

import jwinit
from jwinit.experiments.training import _claims, _plots
from jwinit.train import TrainResult

CHANCE = math.log(10)


def _result(curves: dict[tuple[str, float, int], tuple[list[float], int]]) -> TrainResult:
    """A TrainResult from (init, lr, seed) -> (train loss at steps 0, 10, 20, 30; diverged step
    or -1), as the trainer writes it: NaN from the evaluation at which a run had diverged."""
    runs = list(curves)
    steps = np.array([0, 10, 20, 30])
    loss = np.array([curves[r][0] for r in runs], np.float64)
    diverged = np.array([curves[r][1] for r in runs])
    gone = (diverged[:, None] >= 0) & (diverged[:, None] < steps[None, :])
    loss = np.where(gone, np.nan, loss)
    acc = np.where(gone, np.nan, 0.5)
    return TrainResult(runs=runs, eval_steps=steps, train_loss=loss, train_accuracy=acc,
                       test_loss=loss.copy(), test_accuracy=acc.copy(), diverged_step=diverged,
                       signal=None, signal_layers=[], params={}, rest={},
                       task="classification")


LEARNS = [CHANCE, 1.0, 0.4, 0.2]
STUCK = [CHANCE] * 4
AT_INIT = {"output_rms": 1.0, "probe_regime": "preserved", "xi_c": 1.0}


@pytest.fixture
def result():
    curves = {}
    for seed in range(4):  # 'a' at 0.1: seed 3 diverges at step 15; at 1.0 every seed diverges
        curves[("a", 0.1, seed)] = ([CHANCE, 1.0, 0.3 + 0.1 * seed, 0.2 + 0.1 * seed],
                                    15 if seed == 3 else -1)
        curves[("a", 1.0, seed)] = (LEARNS, 5)
    for seed in range(4):  # 'b' diverges everywhere; 'c' stalls, one seed diverging at 12
        curves[("b", 0.1, seed)] = (LEARNS, 5)
        curves[("b", 1.0, seed)] = (LEARNS, 3)
        curves[("c", 0.1, seed)] = (STUCK, 12 if seed == 0 else -1)
        curves[("c", 1.0, seed)] = (STUCK, -1)
    order = [(i, lr, s) for i in "abc" for lr in (0.1, 1.0) for s in range(4)]
    return _result({k: curves[k] for k in order})


def _summary(result):
    at_init = {("relu", i): AT_INIT for i in "abc"}
    return _claims.summarize({"relu": result}, at_init, target=0.5)


def test_medians_are_over_the_runs_that_did_not_diverge_with_the_count(result):
    rows = {(s["init"], s["learning_rate"]): s for s in _summary(result)}
    a = rows[("a", 0.1)]
    assert a["finite_runs"] == "3/4"
    assert a["diverged"] == "1/4 (at step 15)"
    assert a["median_final_train_loss"] == pytest.approx(0.3)  # of 0.2, 0.3, 0.4: not NaN
    assert rows[("a", 1.0)]["finite_runs"] == "0/4"
    assert rows[("a", 1.0)]["diverged"] == "4/4 (at steps 5, 5, 5, 5)"
    assert math.isnan(rows[("a", 1.0)]["median_final_train_loss"])


def test_no_learning_rate_whose_runs_all_diverged_is_best(result):
    rows = {(s["init"], s["learning_rate"]): s for s in _summary(result)}
    assert rows[("a", 0.1)]["best_learning_rate"] and not rows[("a", 1.0)]["best_learning_rate"]
    assert not rows[("b", 0.1)]["best_learning_rate"]
    assert not rows[("b", 1.0)]["best_learning_rate"]
    with pytest.raises(_claims.AllDiverged, match="every run of b"):
        _claims.best_row(_summary(result), "relu", "b")


def _config(**kw):
    return ml_collections.ConfigDict({"target_loss": 0.5, "depth": 2, "width": 8,
                                      "signal": False, "model": "mlp", **kw})


def test_claims_about_diverged_runs_say_diverged(result):
    summary = _summary(result)
    data = jwinit.data.digits()
    check = _claims.check_claim(("reaches", "Fig. 1", "b", "relu", 30), {"relu": result},
                                summary, _config(), data)
    assert not check["passed"] and "every run of b (relu) diverged" in check["measured"]
    # 'c' stalls at chance; its one diverged run (NaN loss from step 20) is not "leaving chance"
    check = _claims.check_claim(("stalls", "Fig. 1", "c", "relu", 1, "a"), {"relu": result},
                                summary, _config(), data)
    assert "1 of its 8 runs diverged (at steps [12])" in check["measured"]
    assert "never leaves chance in 30 steps" in check["measured"]
    assert "first leaves chance" not in check["measured"]
    assert not check["passed"]  # it "left" at its divergence, step 12 < 1 x 20 steps of 'a'


def test_plots_keep_the_whole_run_and_mark_where_a_diverged_run_ends(result, monkeypatch,
                                                                     tmp_path):
    pytest.importorskip("matplotlib")
    figures = []
    monkeypatch.setattr(_plots, "save_figure", lambda fig, path: figures.append(fig) or path)
    _plots.plots({"relu": result}, _summary(result), _config(), jwinit.data.digits(), tmp_path)
    ax_loss = figures[0].axes[0]
    assert ax_loss.get_xlim() == (0.0, 30.0)  # 'b' diverged everywhere: the axes still span it
    # each diverged run drawn to its last finite evaluation and marked there: 'b' at lr 0.1
    # (4 runs diverged at step 5: last finite at 0), 'a' at 0.1 (one at step 15: at 10), 'c'
    # at 0.1 (its best by the tie-break on the final loss; one at step 12: at 10)
    marks = [line for line in ax_loss.lines if line.get_marker() == "X" and len(line.get_xdata())]
    assert sorted(float(line.get_xdata()[0]) for line in marks) == [0.0] * 4 + [10.0] * 2
    labels = [t.get_text() for t in ax_loss.get_legend().get_texts()]
    assert "a diverged run, to its last finite evaluation" in labels


def test_the_learning_rate_plot_shows_median_range_and_divergences(result, monkeypatch,
                                                                   tmp_path):
    """plots/learning_rates.png: per init the median final train loss at each learning rate
    with some finite run, the seeds' range as a bar, an x where a run diverged; an init whose
    runs all diverged at a learning rate has no point there."""
    pytest.importorskip("matplotlib")
    saved = {}
    monkeypatch.setattr(_plots, "save_figure",
                        lambda fig, path: saved.__setitem__(path.name, fig) or path)
    paths = _plots.plots({"relu": result}, _summary(result), _config(), jwinit.data.digits(),
                         tmp_path)
    assert [p.name for p in paths] == ["curves.png", "learning_rates.png"]
    ax = saved["learning_rates.png"].axes[0]
    assert ax.get_xlabel() == "learning rate" and "final train loss" in ax.get_ylabel()
    lines = {c.get_label(): c.lines[0] for c in ax.containers}  # errorbar: (line, caps, bars)
    xy = {k: (np.asarray(v.get_xdata(), float), np.asarray(v.get_ydata(), float))
          for k, v in lines.items()}
    # 'a': lr 0.1 only (at 1.0 every run diverged); its median over the 3 finite seeds 0.3
    np.testing.assert_allclose(xy["a"][0], [0.1])
    np.testing.assert_allclose(xy["a"][1], [0.3])
    assert "b" not in xy  # every run of 'b' diverged at every learning rate
    np.testing.assert_allclose(xy["c"][0], [0.1, 1.0])
    np.testing.assert_allclose(xy["c"][1], [CHANCE, CHANCE])
    crosses = sorted((float(line.get_xdata()[0]), line.get_color()) for line in ax.lines
                     if line.get_marker() == "x" and len(line.get_xdata()))
    # a run diverged: 'a' at 0.1 (seed 3) and 'c' at 0.1 (seed 0)
    assert [x for x, _ in crosses] == [0.1, 0.1]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "a run diverged (median of the others)" in labels and "chance: ln 10" in labels


def test_a_result_prints_its_grid_best_run_and_divergences_not_its_parameters(result):
    text = repr(result)
    assert text.splitlines() == [
        "TrainResult(24 runs = 3 inits x 2 learning rates x 4 seeds, 30 steps, classification; "
        "stepping 'scan', batching 'vmap')",
        "  lowest final train loss: 0.2 ('a', learning rate 0.1, seed 0), test accuracy 0.500",
        "  diverged: 14 of 24 runs (first at step 3)",  # a: 1 + 4, b: 8, c: 1
    ]


def test_the_package_declares_its_type_annotations():
    import importlib.resources

    assert importlib.resources.files("jwinit").joinpath("py.typed").is_file()


def test_a_result_has_a_table_a_csv_and_a_plot(result, tmp_path):
    rows = {(r["init"], r["learning_rate"]): r for r in result.table()}
    assert rows[("a", 0.1)]["finite_runs"] == "3/4"
    assert rows[("a", 0.1)]["median_final_train_loss"] == pytest.approx(0.3)
    assert rows[("a", 0.1)]["diverged_at"] == [15]
    assert math.isnan(rows[("b", 1.0)]["median_final_train_loss"])
    text = result.summary().splitlines()
    assert text[0].split() == ["init", "learning_rate", "finite_runs", "median_final_train_loss",
                               "median_final_test_accuracy", "diverged_at"]
    assert text[1].split() == ["a", "0.1", "3/4", "0.3", "0.5", "15"]
    import csv

    path = result.to_csv(tmp_path / "runs.csv")
    with open(path) as f:
        read = list(csv.DictReader(f))
    assert len(read) == len(result.runs) * len(result.eval_steps)
    assert read[0]["init"] == "a" and float(read[0]["train_loss"]) == pytest.approx(CHANCE)
    pytest.importorskip("matplotlib")
    fig = result.plot(tmp_path / "runs.png")
    assert (tmp_path / "runs.png").stat().st_size > 0
    assert fig.axes[0].get_xlim() == (0.0, 30.0)
    assert fig.axes[0].get_ylabel() == "train loss (log scale)"
    assert fig.axes[1].get_xlabel() == "optimizer step"


def test_a_variables_function_runs_once_per_key_and_batch():
    """The report's look at seed 0's start (`jwinit.train.initial_variables`) reuses what `train`
    computed for the same key and first batch (an LSUV, pre-training or GradInit run is not
    repeated), and anything else is computed anew."""
    import jax
    import jax.numpy as jnp

    from jwinit.experiments.training._networks import _once_per_key

    calls = []

    def fn(key, x):
        calls.append(1)
        return {"w": jax.random.normal(key, (2,)) + jnp.sum(x)}

    once = _once_per_key(fn)
    x = jnp.ones((3, 2))
    first = once(jax.random.key(0), x)
    assert once(jax.random.key(0), jnp.ones((3, 2))) is first and len(calls) == 1
    once(jax.random.key(1), x)
    once(jax.random.key(0), 2 * x)
    once(jax.random.key(0), jnp.ones((2, 3)))
    assert len(calls) == 4
    np.testing.assert_array_equal(once(jax.random.key(1), x)["w"],
                                  fn(jax.random.key(1), x)["w"])

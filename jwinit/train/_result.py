"""`TrainResult`: the curves, divergences and final parameters of every run of `jwinit.train`."""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any

import numpy as np

from jwinit._display import treescope_repr
from jwinit.train._program import METRICS, SIGNAL_FIELDS

__all__ = ["TrainResult", "steps_to"]


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "-"
    return str(value)


def steps_to(steps: np.ndarray, values: np.ndarray, target: float, *, below: bool) -> float:
    """The first evaluated step at which `values` reach `target` (<= when `below`, else >=);
    inf when never (NaN values never reach it)."""
    with np.errstate(invalid="ignore"):
        hit = values <= target if below else values >= target
    idx = np.flatnonzero(hit)
    return float(steps[idx[0]]) if idx.size else math.inf


@dataclasses.dataclass
class TrainResult:
    """Every (init, learning rate, seed) run of one `jwinit.train.train` call.

    Attributes:
      runs: (init name, learning rate, seed) of each run, init-major then learning rate then seed.
      eval_steps: (E,) the steps at which every run was evaluated (0 = at initialization).
      train_loss, train_accuracy, test_loss, test_accuracy: (runs, E) arrays; NaN from the
        evaluation at which a run had diverged (accuracies NaN for regression). The train metrics
        are over the training set (or its first `eval_examples` examples).
      diverged_step: (runs,) the step at which each run's loss or update was first
        non-finite (the run is frozen from there), -1 if never.
      signal: (runs, E, layers, len(SIGNAL_FIELDS)) per-layer statistics when recorded, else None.
      signal_layers: the kernel layers' paths, in call order.
      params: the final parameters, stacked over runs (numpy); `rest` the other state.
      task: 'classification' or 'regression'.
      compile_seconds, seconds: the chunk program's compile time and the whole call's wall time.
      chunk_traces: how many times the chunk program was traced (1: one program for all runs).
      stepping: how the steps ran: 'scan' (one compiled program per evaluation interval) or
        'loop' (one compiled step dispatched from Python); see `jwinit.train.train`.
      batching: how the runs of a device shared the program: 'vmap' (vectorized) or 'unroll'
        (vectorized, each run's convolutions computed separately); see `jwinit.train.train`.
      threads: host threads that ran groups of runs at once on one device (1: none).
    """

    runs: list[tuple[str, float, int]]
    eval_steps: np.ndarray
    train_loss: np.ndarray
    train_accuracy: np.ndarray
    test_loss: np.ndarray
    test_accuracy: np.ndarray
    diverged_step: np.ndarray
    signal: np.ndarray | None
    signal_layers: list[str]
    params: Any
    rest: Any
    task: str
    compile_seconds: float = math.nan
    seconds: float = math.nan
    chunk_traces: int = 0
    stepping: str = "scan"
    batching: str = "vmap"
    threads: int = 1

    @property
    def inits(self) -> list[str]:
        return list(dict.fromkeys(r[0] for r in self.runs))

    @property
    def learning_rates(self) -> list[float]:
        return list(dict.fromkeys(r[1] for r in self.runs))

    @property
    def seeds(self) -> list[int]:
        return list(dict.fromkeys(r[2] for r in self.runs))

    def __treescope_repr__(self, path: Any, subtree_renderer: Any) -> Any:
        """Treescope (notebooks): the summary line, the per-group table, then the arrays."""
        return treescope_repr(self, {
            "summary": repr(self).splitlines()[0], "table": self.table(),
            "diverged_step": self.diverged_step, "eval_steps": self.eval_steps,
            "train_loss": self.train_loss, "test_loss": self.test_loss,
            "train_accuracy": self.train_accuracy, "test_accuracy": self.test_accuracy,
            "runs": self.runs}, path, subtree_renderer)

    def __repr__(self) -> str:
        """The grid, the best run and the divergences (not the stacked parameters)."""
        n, last = len(self.runs), int(self.eval_steps[-1])
        lines = [f"TrainResult({n} runs = {len(self.inits)} inits x {len(self.learning_rates)} "
                 f"learning rates x {len(self.seeds)} seeds, {last} steps, {self.task}; "
                 f"stepping {self.stepping!r}, batching {self.batching!r}"
                 + (f", {self.threads} host threads" if self.threads > 1 else "") + ")"]
        final = self.train_loss[:, -1]
        if np.any(np.isfinite(final)):
            i = int(np.nanargmin(final))
            init, lr, seed = self.runs[i]
            extra = (f", test accuracy {self.test_accuracy[i, -1]:.3f}"
                     if self.task == "classification" else
                     f", test loss {self.test_loss[i, -1]:.4g}")
            lines.append(f"  lowest final train loss: {final[i]:.4g} ({init!r}, learning rate "
                         f"{lr:g}, seed {seed}){extra}")
        diverged = int(np.sum(self.diverged_step >= 0))
        lines.append(f"  diverged: {diverged} of {n} runs" + (
            f" (first at step {int(self.diverged_step[self.diverged_step >= 0].min())})"
            if diverged else ""))
        return "\n".join(lines)

    def index(self, init: str, learning_rate: float, seed: int) -> int:
        """The position of a run in `runs`."""
        for i, r in enumerate(self.runs):
            if r[0] == init and math.isclose(r[1], learning_rate) and r[2] == seed:
                return i
        raise KeyError(f"no run ({init!r}, {learning_rate}, {seed}); runs: {self.runs}")

    def select(self, init: str | None = None, learning_rate: float | None = None) -> list[int]:
        """Indices of the runs of `init` and/or `learning_rate` (every seed)."""
        return [i for i, r in enumerate(self.runs)
                if (init is None or r[0] == init)
                and (learning_rate is None or math.isclose(r[1], learning_rate))]

    def metric(self, name: str) -> np.ndarray:
        if name not in METRICS:
            raise ValueError(f"`name` must be one of {METRICS}, got {name!r}.")
        return getattr(self, name)

    def rows(self) -> list[dict[str, Any]]:
        """One dict per (run, evaluation): init, learning_rate, seed, step, the metrics, and
        whether the run had diverged by then."""
        out = []
        for i, (init, lr, seed) in enumerate(self.runs):
            d = int(self.diverged_step[i])
            for j, step in enumerate(self.eval_steps):
                row = {"init": init, "learning_rate": lr, "seed": seed, "step": int(step)}
                for m in METRICS:
                    row[m] = float(getattr(self, m)[i, j])
                row["diverged"] = bool(d >= 0 and d < step)
                out.append(row)
        return out

    def summaries(self, *, target_loss: float | None = None,
                  target_accuracy: float | None = None) -> list[dict[str, Any]]:
        """One dict per run: final and best metrics, the step at which the train loss first
        reached `target_loss` and the test accuracy first reached `target_accuracy` (inf when
        never), and the divergence step."""
        out = []
        for i, (init, lr, seed) in enumerate(self.runs):
            row: dict[str, Any] = {"init": init, "learning_rate": lr, "seed": seed}
            for m in METRICS:
                v = getattr(self, m)[i]
                finite = v[np.isfinite(v)]
                row[f"final_{m}"] = float(v[-1])
                best = (finite.min() if "loss" in m else finite.max()) if finite.size else math.nan
                row[f"best_{m}"] = float(best)
            if target_loss is not None:
                row["steps_to_target_loss"] = steps_to(self.eval_steps, self.train_loss[i],
                                                       target_loss, below=True)
            if target_accuracy is not None:
                row["steps_to_target_accuracy"] = steps_to(
                    self.eval_steps, self.test_accuracy[i], target_accuracy, below=False)
            row["diverged"] = bool(self.diverged_step[i] >= 0)
            row["diverged_step"] = int(self.diverged_step[i])
            out.append(row)
        return out

    def table(self) -> list[dict[str, Any]]:
        """One dict per (init, learning rate): the runs that did not diverge ('3/4'), the medians
        over them of the final train loss and test accuracy (test loss for regression), and the
        divergence steps."""
        out = []
        per_run = self.summaries()
        second = "final_test_accuracy" if self.task == "classification" else "final_test_loss"
        for init in self.inits:
            for lr in self.learning_rates:
                runs = [per_run[i] for i in self.select(init=init, learning_rate=lr)]
                alive = [r for r in runs if not r["diverged"]]
                med = (lambda k, alive=alive: float(np.median([r[k] for r in alive]))
                       if alive else math.nan)
                out.append({"init": init, "learning_rate": lr,
                            "finite_runs": f"{len(alive)}/{len(runs)}",
                            "median_final_train_loss": med("final_train_loss"),
                            f"median_{second}": med(second),
                            "diverged_at": sorted(r["diverged_step"] for r in runs
                                                  if r["diverged"])})
        return out

    def summary(self) -> str:
        """`table` as aligned text (medians over the runs that did not diverge)."""
        rows = self.table()
        cols = list(rows[0])
        text = [list(cols)] + [[_cell(r[c]) for c in cols] for r in rows]
        widths = [max(len(line[k]) for line in text) for k in range(len(cols))]
        return "\n".join("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip()
                         for line in text)

    def to_csv(self, path: Any) -> Any:
        """Write `rows` (one line per run and evaluation) to a CSV file, atomically; returns the
        path."""
        import csv
        import os

        from jwinit.results import atomic_path

        rows = self.rows()
        with atomic_path(os.fspath(path)) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        return path

    def plot(self, path: Any = None) -> Any:
        """Train loss and test accuracy (test loss for regression) against the step: the median
        over seeds of each (init, learning rate) with the seeds' range; a diverged run's curve
        ends at its last finite evaluation, marked with an X. Returns the matplotlib Figure
        (saved to `path` when given). Needs matplotlib."""
        import matplotlib.pyplot as plt

        second = self.test_accuracy if self.task == "classification" else self.test_loss
        fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
        for init in self.inits:
            for lr in self.learning_rates:
                idx = self.select(init=init, learning_rate=lr)
                for ax, values in ((axes[0], self.train_loss[idx]), (axes[1], second[idx])):
                    with np.errstate(all="ignore"), warnings.catch_warnings():
                        warnings.simplefilter("ignore", RuntimeWarning)  # all diverged
                        med = np.nanmedian(values, axis=0)
                        lo, hi = np.nanmin(values, axis=0), np.nanmax(values, axis=0)
                    (line,) = ax.plot(self.eval_steps, med, label=f"{init}, lr {lr:g}")
                    ax.fill_between(self.eval_steps, lo, hi, color=line.get_color(), alpha=0.2)
                    for j, i in enumerate(idx):
                        finite = np.flatnonzero(np.isfinite(values[j]))
                        if self.diverged_step[i] >= 0 and finite.size:
                            ax.plot(self.eval_steps[finite[-1]], values[j][finite[-1]],
                                    marker="X", color=line.get_color(), ls="none")
        axes[0].set_yscale("log")
        axes[0].set_ylabel("train loss (log scale)")
        axes[1].set_ylabel("test accuracy" if self.task == "classification" else
                           "test loss")
        for ax in axes:
            ax.set_xlabel("optimizer step")
            ax.set_xlim(0, float(self.eval_steps[-1]))
            ax.grid(True, alpha=0.3)
        axes[0].legend(fontsize=7, title="median over seeds (band: range; X: diverged)",
                       title_fontsize=7)
        if path is not None:
            fig.savefig(path, dpi=120)
        return fig

    def signal_of(self, field: str) -> np.ndarray:
        """(runs, E, layers) of one of `SIGNAL_FIELDS` (requires ``signal=True``)."""
        if self.signal is None:
            raise ValueError("no signal statistics were recorded: train with signal=True.")
        if field not in SIGNAL_FIELDS:
            raise ValueError(f"`field` must be one of {SIGNAL_FIELDS}, got {field!r}.")
        return self.signal[..., SIGNAL_FIELDS.index(field)]

"""`TrainResult`: the curves, divergences and final parameters of every run of `jwinit.train`."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from jwinit.train._program import METRICS, SIGNAL_FIELDS

__all__ = ["TrainResult", "steps_to"]


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
      diverged_step: (runs,) the step at which each run's loss, gradient or update was first
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

    @property
    def inits(self) -> list[str]:
        return list(dict.fromkeys(r[0] for r in self.runs))

    @property
    def learning_rates(self) -> list[float]:
        return list(dict.fromkeys(r[1] for r in self.runs))

    @property
    def seeds(self) -> list[int]:
        return list(dict.fromkeys(r[2] for r in self.runs))

    def __repr__(self) -> str:
        """The grid, the best run and the divergences (not the stacked parameters)."""
        n, last = len(self.runs), int(self.eval_steps[-1])
        lines = [f"TrainResult({n} runs = {len(self.inits)} inits x {len(self.learning_rates)} "
                 f"learning rates x {len(self.seeds)} seeds, {last} steps, {self.task}; "
                 f"stepping {self.stepping!r}, batching {self.batching!r})"]
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

    def signal_of(self, field: str) -> np.ndarray:
        """(runs, E, layers) of one of `SIGNAL_FIELDS` (requires ``signal=True``)."""
        if self.signal is None:
            raise ValueError("no signal statistics were recorded: train with signal=True.")
        if field not in SIGNAL_FIELDS:
            raise ValueError(f"`field` must be one of {SIGNAL_FIELDS}, got {field!r}.")
        return self.signal[..., SIGNAL_FIELDS.index(field)]

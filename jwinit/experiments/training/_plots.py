"""The plots of a training experiment: loss and accuracy curves, activations during training."""

from __future__ import annotations

import math
import pathlib
import warnings
from typing import Any

import numpy as np

from jwinit.experiments.common import pyplot
from jwinit.experiments.io import save_figure
from jwinit.experiments.training._claims import shown_row
from jwinit.experiments.training._networks import model_kind


def plots(results: dict[str, Any], summary: list[dict[str, Any]], config: Any, data: Any,
          folder: pathlib.Path) -> list[pathlib.Path]:
    plt = pyplot()
    if plt is None:
        return []
    out = []
    acts = list(results)
    fig, axes = plt.subplots(len(acts), 2, figsize=(12, 4.2 * len(acts)), squeeze=False,
                             constrained_layout=True)
    for row, act in enumerate(acts):
        r = results[act]
        ax_l, ax_a = axes[row]
        for init in r.inits:
            lr = shown_row(summary, act, init)["learning_rate"]
            idx = r.select(init=init, learning_rate=lr)
            n_div = int(np.sum(r.diverged_step[idx] >= 0))
            note = f", diverged {n_div}/{len(idx)}" if n_div else ""
            second = r.test_accuracy if data.task == "classification" else r.test_loss
            for ax, values in ((ax_l, r.train_loss[idx]), (ax_a, second[idx])):
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: every run diverged
                    med = np.nanmedian(values, axis=0)
                    lo, hi = np.nanmin(values, axis=0), np.nanmax(values, axis=0)
                (line,) = ax.plot(r.eval_steps, med, lw=1.6, label=f"{init} (lr {lr:g}{note})")
                ax.fill_between(r.eval_steps, lo, hi, color=line.get_color(), alpha=0.2)
                for j, i in enumerate(idx):  # a diverged run: drawn up to its end, marked there
                    if r.diverged_step[i] < 0:
                        continue
                    finite = np.flatnonzero(np.isfinite(values[j]))
                    if finite.size:
                        k = finite[-1]
                        ax.plot(r.eval_steps[:k + 1], values[j][:k + 1], lw=0.8, ls="--",
                                color=line.get_color())
                        ax.plot(r.eval_steps[k], values[j][k], marker="X", ms=8,
                                color=line.get_color(), ls="none")
        if data.task == "classification":
            ax_l.axhline(math.log(data.num_classes), color="k", ls=":", lw=1,
                         label=f"chance: ln {data.num_classes}")
            ax_a.axhline(1 / data.num_classes, color="k", ls=":", lw=1, label="chance")
        else:
            base = float(np.var(data.y_train))
            for ax in (ax_l, ax_a):
                ax.axhline(base, color="k", ls=":", lw=1,
                           label=f"predicting the mean: Var(y) = {base:.3g}")
            ax_a.set_yscale("log")
        ax_l.set_yscale("log")
        if data.task == "classification":
            ax_l.set_ylabel("train loss (cross-entropy, log scale)")
            ax_a.set_ylabel("test accuracy")
        else:
            ax_l.set_ylabel("train mean squared error (log scale)")
            ax_a.set_ylabel("test mean squared error (log scale)")
        any_diverged = bool(np.any(r.diverged_step >= 0))
        for ax in (ax_l, ax_a):
            ax.set_xlabel("optimizer step")
            ax.set_xlim(0, float(r.eval_steps[-1]))  # the whole run, even if every run diverged
            ax.grid(True, which="both", alpha=0.3)
            ax.fill_between([], [], [], color="grey", alpha=0.2, label="range over seeds")
            if any_diverged:
                ax.plot([], [], marker="X", ms=8, color="grey", ls="--", lw=0.8,
                        label="a diverged run, to its last finite evaluation")
            ax.legend(fontsize=7, loc="best")
        shape = (f"depth {config.depth}, width {config.width}" if model_kind(config) == "mlp"
                 else f"width {config.width}")
        ax_l.set_title(f"{act}, {shape}: train loss "
                       "(median over seeds, best learning rate of each init)", fontsize=9)
        ax_a.set_title(f"{act}: test " + ("accuracy" if data.task == "classification"
                                          else "mean squared error"), fontsize=9)
    out.append(save_figure(fig, folder / "curves.png"))
    plt.close(fig)
    out.append(_learning_rate_plot(plt, results, data, folder))
    if config.signal:
        out.append(_activation_plot(plt, results, summary, config, folder))
    return out


def _learning_rate_plot(plt: Any, results: dict[str, Any], data: Any,
                        folder: pathlib.Path) -> pathlib.Path:
    """The final train loss against the learning rate, one panel per network and a line per
    init (median over seeds, the seeds' range as a bar; a learning rate at which a run diverged
    marked x, its median over the others): how each init's loss depends on the learning rate,
    and, with one network per optimizer, which of init and optimizer decides."""
    names = list(results)
    cols = min(4, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.9 * rows), squeeze=False,
                             constrained_layout=True, sharey=True)
    for k, name in enumerate(names):
        r = results[name]
        ax = axes[k // cols][k % cols]
        for init in r.inits:
            lrs, med, lo, hi, bad = [], [], [], [], []
            for lr in r.learning_rates:
                idx = r.select(init=init, learning_rate=lr)
                final = np.asarray(r.train_loss[idx][:, -1], np.float64)
                finite = final[np.isfinite(final)]
                if not finite.size:
                    continue
                lrs.append(lr)
                med.append(float(np.median(finite)))
                lo.append(float(finite.min()))
                hi.append(float(finite.max()))
                bad.append(bool(np.any(r.diverged_step[idx] >= 0)))
            if not lrs:
                continue
            med_a = np.asarray(med)
            yerr = np.stack([med_a - np.asarray(lo), np.asarray(hi) - med_a])
            line = ax.errorbar(lrs, med, yerr=yerr, marker="o", ms=4, lw=1.4, capsize=3,
                               label=init)
            colour = line.lines[0].get_color()
            for x, y, b in zip(lrs, med, bad, strict=True):
                if b:
                    ax.plot(x, y, marker="x", ms=9, color=colour, ls="none")
        if data.task == "classification":
            ax.axhline(math.log(data.num_classes), color="k", ls=":", lw=1,
                       label=f"chance: ln {data.num_classes}")
        else:
            ax.axhline(float(np.var(data.y_train)), color="k", ls=":", lw=1,
                       label="predicting the mean")
        ax.plot([], [], marker="x", ms=9, color="grey", ls="none",
                label="a run diverged (median of the others)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("final train " + ("loss" if data.task == "classification"
                                        else "mean squared error") + " (log scale)")
        ax.set_title(f"{name}: median over seeds, bar = range", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    for k in range(len(names), rows * cols):
        axes[k // cols][k % cols].set_visible(False)
    path = save_figure(fig, folder / "learning_rates.png")
    plt.close(fig)
    return path


def _activation_plot(plt: Any, results: dict[str, Any], summary: list[dict[str, Any]],
                     config: Any, folder: pathlib.Path) -> pathlib.Path:
    """Glorot & Bengio's Fig. 2: each hidden layer's mean activation (and its standard deviation
    over batch and units) during training."""
    from matplotlib import cm, colors

    acts = list(results)
    inits = results[acts[0]].inits
    depth = int(config.depth)
    fig, axes = plt.subplots(len(acts), len(inits), figsize=(5.5 * len(inits), 4 * len(acts)),
                             squeeze=False, constrained_layout=True)
    norm = colors.Normalize(vmin=1, vmax=max(depth, 2))
    cmap = plt.get_cmap("viridis")
    for row, act in enumerate(acts):
        r = results[act]
        mean, sq = r.signal_of("input_mean"), r.signal_of("input_second_moment")
        for col, init in enumerate(inits):
            ax = axes[row][col]
            lr = shown_row(summary, act, init)["learning_rate"]
            idx = r.select(init=init, learning_rate=lr)
            for layer in range(1, depth + 1):  # the input of Dense_l is hidden layer l's output
                m = np.nanmedian(mean[idx][:, :, layer], axis=0)
                sd = np.sqrt(np.maximum(np.nanmedian(sq[idx][:, :, layer], axis=0) - m**2, 0))
                c = cmap(norm(layer))
                ax.plot(r.eval_steps, m, color=c, lw=1.5)
                ax.fill_between(r.eval_steps, m - sd, m + sd, color=c, alpha=0.12)
            ax.set_xlabel("optimizer step")
            ax.set_ylabel("mean activation of the hidden layer (+- std)")
            ax.set_title(f"{act}, {init} (lr {lr:g}; median over seeds)", fontsize=9)
            ax.grid(True, alpha=0.3)
            fig.colorbar(cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="hidden layer",
                         ticks=range(1, depth + 1))
    path = save_figure(fig, folder / "activations.png")
    plt.close(fig)
    return path


"""Trainability against depth and the weight variance: the depth scale xi_c bounds what trains.

Schoenholz et al. 2017 (Sec. 5, Fig. 5-6): random tanh networks train only when they are not much
deeper than the correlation depth scale, depth <~ 6 xi_c, and xi_c diverges at the edge of chaos,
so critical networks train at any depth. Here every (depth, sigma_w2) cell is a tanh MLP with
kernels N(0, sigma_w2 / fan_in) and biases N(0, sigma_b2), trained for a fixed number of steps;
all sigma_w2 of one depth (and `jwinit.critical`'s initialization) are one compiled program.

A cell *trains* when its median train accuracy over the seeds reaches `threshold`; the theory
*predicts* it trains when depth <= 6 xi_c(sigma_w2, sigma_b2). Around the boundary the prediction
is a scale, not a sharp line (the factor 6 is the paper's empirical fit), so the check requires
agreement on the cells at least a factor `band` away from it (depth <= 6 xi_c / band or
depth >= 6 xi_c * band) and reports the agreement over all cells.

Config fields: data; activation; sigma_b2; sigma_w2 (tuple); depths; width; optimizer, momentum,
learning_rate; steps; batch_size; eval_every; seeds; seed; threshold; band; title, paper,
not_covered.

Writes: results.jsonl (one row per depth, init, seed and evaluation), summary.csv (per cell:
accuracy, 6 xi_c, predicted and measured trainability), checks.json, report.md,
plots/trainability.png (heat map of the trained accuracy with the 6 xi_c curve) and
plots/agreement.png. Each depth's training is checkpointed (checkpoints/depth_<d>.npz).
"""

from __future__ import annotations

import math
import pathlib
from typing import Any

import numpy as np

from jwinit.experiments.common import (
    check,
    config_activation,
    config_choice,
    config_int,
    config_ints,
    config_real,
    config_reals,
    progress_bar,
    pyplot,
    require,
    write_report,
    writers_for,
)
from jwinit.experiments.io import save_figure, write_csv, write_json, write_text
from jwinit.experiments.training import OPTIMIZERS, optimizer_of
from jwinit.results import dumps

#: `jwinit run --writer=...` applies (the runs' metrics go to the writers as they train).
WRITES_METRICS = True

__all__ = ["DEFAULTS", "run", "validate", "CRITICAL"]

#: The fields of a trainability experiment and their defaults (Schoenholz et al. 2017, Sec. 5, on
#: the shipped digits).
DEFAULTS = {
    "title": "Trainability against the depth scale", "paper": "-", "not_covered": "",
    "data": "digits", "activation": "tanh", "sigma_b2": 0.05,
    # sigma_w2 = 8 has 6 xi_c = 28: at depth 60 it is the chaotic-side cell a factor 2 beyond
    # the boundary; sigma_w2 = 1 (6 xi_c = 22) is the ordered-side one at depths 45 and 60.
    "sigma_w2": (1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0, 6.0, 8.0),
    "depths": (10, 20, 30, 45, 60), "width": 64,
    "optimizer": "momentum", "momentum": 0.9, "learning_rate": 1e-3, "steps": 600,
    "batch_size": 64, "eval_every": 200, "seeds": 2, "seed": 0, "threshold": 0.5, "band": 2.0,
}

#: The display name of `jwinit.critical`'s initialization in the grid.
CRITICAL = "critical"


def validate(config: Any) -> None:
    require(config, "data", "activation", "sigma_b2", "sigma_w2", "depths", "width", "optimizer",
            "learning_rate", "steps", "batch_size", "eval_every", "seeds", "seed", "threshold",
            "band")
    import jwinit

    config_activation(config.activation, "activation")
    sb2 = config_real(config, "sigma_b2", low=0.0)
    config_reals(config, "sigma_w2", low=0.0, low_open=True)
    config_ints(config, "depths", minimum=1)
    config_int(config, "width")
    config_choice(config, "optimizer", OPTIMIZERS)
    if config.optimizer == "momentum":
        config_real(config, "momentum", low=0.0, high=1.0, high_open=True)
    config_real(config, "learning_rate", low=0.0, low_open=True)
    config_int(config, "steps")
    batch = config_int(config, "batch_size")
    config_int(config, "eval_every")  # the last evaluation is at the last step in any case
    config_int(config, "seeds")
    config_int(config, "seed", minimum=0)
    from jwinit.data import load

    size = len(load(config.data).x_train)
    if batch > size:
        raise ValueError(f"`config.batch_size` must be at most the training set's size {size} "
                         f"({config.data!r}), got {batch}.")
    config_real(config, "threshold", low=0.0, high=1.0)
    config_real(config, "band", low=1.0)
    try:
        jwinit.critical(config.activation, sb2)
    except ValueError as e:
        raise ValueError(f"`config.activation`/`config.sigma_b2`: {e}") from None


def _label(sw2: float) -> str:
    return f"{sw2:g}"


def run(config: Any, workdir: str | pathlib.Path) -> dict[str, Any]:
    import jwinit
    from jwinit import theory
    from jwinit.data import load

    workdir = pathlib.Path(workdir)
    data = load(config.data)
    act, sb2 = config.activation, float(config.sigma_b2)
    sws = [float(v) for v in config.sigma_w2]
    depths = [int(d) for d in config.depths]
    crit = jwinit.critical(act, sb2)
    inits: dict[str, Any] = {_label(sw): (sw, sb2) for sw in sws}
    inits[CRITICAL] = {r"kernel$": crit.kernel_init, r"bias$": crit.bias_init}
    steps = int(config.steps)
    results = {}
    with progress_bar("training", unit="steps") as update:
        for k, depth in enumerate(depths):
            model = jwinit.models.MLP(depth=depth, width=int(config.width),
                                      output_dim=data.output_dim, activation=act)

            def progress(done, total, k=k):
                update(k * steps + done, len(depths) * steps)

            results[depth] = jwinit.train.train(
                model, data, inits=inits, optimizer=optimizer_of(config),
                learning_rates=[float(config.learning_rate)], steps=steps,
                seeds=int(config.seeds), batch_size=int(config.batch_size),
                eval_every=int(config.eval_every), key=int(config.seed),
                checkpoint=workdir / "checkpoints" / f"depth_{depth}.npz", progress=progress,
                writers=writers_for(f"depth {depth}", depth=depth))

    xi = {sw: float(theory.depth_scales(act, sw, sb2)[1]) for sw in sws}
    xi[crit.sigma_w2] = math.inf
    threshold, band = float(config.threshold), float(config.band)
    summary, rows = [], []
    for depth, r in results.items():
        rows += [{"depth": depth, **row} for row in r.rows()]
        for name in list(inits):
            sw = crit.sigma_w2 if name == CRITICAL else float(name)
            idx = r.select(init=name)
            acc = float(np.median(np.nan_to_num(r.train_accuracy[idx, -1], nan=0.0)))
            test = float(np.median(np.nan_to_num(r.test_accuracy[idx, -1], nan=0.0)))
            bound = 6 * xi[sw]
            predicted = depth <= bound
            clear = depth <= bound / band or depth >= bound * band
            summary.append({
                "depth": depth, "init": name, "sigma_w2": sw, "sigma_b2": sb2, "xi_c": xi[sw],
                "six_xi_c": bound, "median_train_accuracy": acc, "median_test_accuracy": test,
                "trains": acc >= threshold, "predicted_trains": predicted,
                "agrees": (acc >= threshold) == predicted, "clear_of_boundary": clear,
                "diverged": int(np.sum(r.diverged_step[idx] >= 0)),
            })
    write_text(workdir / "results.jsonl", "".join(dumps(row) + "\n" for row in rows))
    columns = list(summary[0])
    write_csv(workdir / "summary.csv", summary, columns)
    grid = [s for s in summary if s["init"] != CRITICAL]
    clear = [s for s in grid if s["clear_of_boundary"]]
    agree_all = sum(s["agrees"] for s in grid) / len(grid)
    agree_clear = sum(s["agrees"] for s in clear) / max(len(clear), 1)
    wrong = [(s["depth"], s["sigma_w2"]) for s in clear if not s["agrees"]]
    crit_rows = [s for s in summary if s["init"] == CRITICAL]
    checks = [
        check("tanh networks train when depth <~ 6 xi_c and do not when they are much deeper",
              "Schoenholz et al. 2017, Sec. 5, Fig. 5-6",
              f"{100 * agree_clear:.0f}% of the {len(clear)} cells at least a factor {band:g} "
              f"from depth = 6 xi_c agree (disagreeing: {wrong or 'none'}); over all "
              f"{len(grid)} cells {100 * agree_all:.0f}%",
              len(clear) >= len(grid) // 3 and not wrong),
        check("at the edge of chaos (xi_c = inf) networks of every depth train",
              "Schoenholz et al. 2017, Sec. 5 (critical initialization)",
              f"jwinit.critical({act!r}, {sb2:g}): sigma_w2 = {crit.sigma_w2:.4f}; median train "
              "accuracy by depth " + ", ".join(f"{s['depth']}: {s['median_train_accuracy']:.2f}"
                                               for s in crit_rows),
              all(s["trains"] for s in crit_rows)),
    ]
    write_json(workdir / "checks.json", checks)
    plots = _plots(summary, config, crit.sigma_w2, act, sb2, workdir / "plots")
    reproduced = write_report(
        workdir, title=config.title, paper=config.paper,
        setup=(f"{data.summary()} ({config.data}). {act} MLPs of width {config.width}, depths "
               f"{depths}; kernels N(0, sigma_w2 / fan_in) for sigma_w2 in {sws}, biases "
               f"N(0, {sb2:g}), and jwinit.critical's initialization (sigma_w2 = "
               f"{crit.sigma_w2:.4f}). Optimizer {config.optimizer}, learning rate "
               f"{config.learning_rate:g}, batch {config.batch_size}, {steps} steps, "
               f"{config.seeds} seeds. A cell trains when its median train accuracy reaches "
               f"{threshold:g}; theory: trains when depth <= 6 xi_c "
               "(`jwinit.theory.depth_scales`). One compiled program per depth."),
        not_covered=config.not_covered, checks=checks,
        tables=[("Cells", summary, columns)], plots=plots)
    return {"cells": len(summary), "reproduced": reproduced,
            "report": str(workdir / "report.md")}


def _plots(summary: list[dict[str, Any]], config: Any, critical_sw2: float, act: str,
           sb2: float, folder: pathlib.Path) -> list[pathlib.Path]:
    plt = pyplot()
    if plt is None:
        return []
    from jwinit import theory

    depths = sorted({s["depth"] for s in summary})
    sws = sorted({s["sigma_w2"] for s in summary if s["init"] != CRITICAL})
    acc = np.array([[next(s["median_train_accuracy"] for s in summary
                          if s["depth"] == d and s["init"] != CRITICAL
                          and s["sigma_w2"] == sw) for sw in sws] for d in depths])
    fig, ax = plt.subplots(figsize=(8, 5.2), constrained_layout=True)
    edges_x = np.concatenate([[sws[0] - (sws[1] - sws[0]) / 2],
                              (np.asarray(sws[1:]) + np.asarray(sws[:-1])) / 2,
                              [sws[-1] + (sws[-1] - sws[-2]) / 2]])
    d = np.asarray(depths, float)
    edges_y = np.concatenate([[d[0] - (d[1] - d[0]) / 2], (d[1:] + d[:-1]) / 2,
                              [d[-1] + (d[-1] - d[-2]) / 2]])
    mesh = ax.pcolormesh(edges_x, edges_y, acc, cmap="viridis", vmin=0, vmax=1)
    fig.colorbar(mesh, ax=ax, label=f"median train accuracy after {config.steps} steps")
    fine = np.linspace(edges_x[0], edges_x[-1], 400)
    xi = np.array([float(theory.depth_scales(act, s, sb2)[1]) for s in fine])
    ax.plot(fine, np.clip(6 * xi, 0, edges_y[-1] * 1.05), color="w", lw=2,
            label="theory: depth = 6 xi_c")
    ax.axvline(critical_sw2, color="r", ls="--", lw=1.2,
               label=f"edge of chaos, sigma_w2 = {critical_sw2:.3f}")
    ax.set_ylim(edges_y[0], edges_y[-1])
    ax.set_xlabel("sigma_w2 (weight variance x fan_in)")
    ax.set_ylabel("depth (hidden layers)")
    ax.set_title(f"Trainability of {act} MLPs (sigma_b2 = {sb2:g}, width {config.width})")
    ax.legend(loc="upper right", fontsize=8, facecolor="0.85")
    out = [save_figure(fig, folder / "trainability.png")]
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.8), constrained_layout=True)
    grid = [s for s in summary if s["init"] != CRITICAL]
    for trains, marker, colour in ((True, "o", "tab:blue"), (False, "x", "tab:red")):
        pts = [s for s in grid if s["trains"] == trains]
        ax.scatter([s["six_xi_c"] for s in pts], [s["depth"] for s in pts], marker=marker,
                   color=colour, label="trains" if trains else "does not train")
    top = max(s["depth"] for s in grid) * 1.3
    ax.plot([0, top], [0, top], "k--", lw=1, label="theory boundary: depth = 6 xi_c")
    ax.fill_between([0, top], [0, top / config.band], [0, top * config.band], color="grey",
                    alpha=0.15, label=f"within a factor {config.band:g} of it")
    ax.set_xscale("log")
    ax.set_xlim(max(min(s["six_xi_c"] for s in grid) / 2, 0.5), top * 4)
    ax.set_ylim(0, top)
    ax.set_xlabel("6 xi_c from mean-field theory (log scale)")
    ax.set_ylabel("depth (hidden layers)")
    ax.set_title("Measured trainability against the theory's depth scale")
    ax.legend(fontsize=8)
    out.append(save_figure(fig, folder / "agreement.png"))
    plt.close(fig)
    return out

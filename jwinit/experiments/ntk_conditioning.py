"""The NTK's conditioning across the order-to-chaos phase diagram: what it says about
trainability (Xiao, Pennington & Schoenholz 2020).

On a (sigma_w2, sigma_b2) grid of MLPs (weights N(0, sigma_w2 / fan_in), biases N(0, sigma_b2))
at several depths, the NTK on the first `examples` training digits is computed three ways:

* infinite width: `jwinit.theory.kernel_fn` in the standard parameterization at `width` (the
  expected empirical NTK; float64), its condition number kappa = lambda_max / lambda_min. In the
  ordered phase (chi1 < 1) every input's representation converges to the same point, the
  kernel to a constant matrix, and kappa grows as exp(depth / xi_c) without bound; at the edge
  of chaos it grows only polynomially; in the chaotic phase the correlations converge to c* < 1
  and kappa to a finite value (Xiao et al. 2020, Sec. 3-4);
* empirical: `jwinit.ntk` of `seeds` networks of width `width` per cell (one draw of unit
  weights per seed and depth, scaled to each cell). Where depth / width is small its kappa
  orders the cells as the infinite kernel's does (Spearman's rank correlation >= 0.9, at the
  shallowest depth); with depth the finite-width kernel departs from the infinite one in the
  chaotic phase (its dispersion grows exponentially with depth there, Seleznova & Kutyniok
  2022) and stays near it in the ordered phase: the relative distance |Theta - Theta_inf| /
  |Theta_inf| of every chaotic cell grows with depth and at the deepest depth exceeds every
  ordered cell's;
* trained: on the cells of `train_sigma_b2` at `train_depths`, full-batch gradient descent at
  one fixed `learning_rate` for `train_steps` steps. Where the rate is below lr_max = n k /
  lambda_max the NTK at init predicts each run's outcome from the linearized model's loss
  after `train_steps` steps: 'trained' below `trained_fraction` of its start, 'stalled' above;
  the prediction is checked on the runs whose predicted loss ratio is at least a factor `band`
  from `trained_fraction` and whose rate is at least a factor `band` below lr_max. Above lr_max
  the linearized model diverges ('unstable'): what the networks do there (diverge, or catapult
  and train) is reported.

The phase boundary (chi1 = 1, `jwinit.theory.critical_sigma_w2`) and the depth scale xi_c
(`jwinit.theory.depth_scales`) are drawn on the same figure.

Config fields: data; examples; activation; sigma_w2 (tuple); sigma_b2 (tuple); depths; width;
seeds; seed; train_sigma_b2; train_depths; learning_rate; train_steps; trained_fraction; band;
condition_factor (how far a settled chaotic cell's kappa may move between the two deepest
depths); blowup (how far
above the edge of chaos an ordered cell's kappa must be); title, paper, not_covered.

Writes results.jsonl (one row per cell and seed: both spectra's extremes; for the trained cells
the measured and predicted losses), summary.csv (per cell), checks.json, report.md and
plots/condition.png, plots/empirical.png, plots/training.png. A rerun resumes after the last
whole depth.
"""

from __future__ import annotations

import math
import pathlib
from typing import Any

import numpy as np

from jwinit.experiments.common import (
    check,
    config_activation,
    config_int,
    config_ints,
    config_one_hot_subset,
    config_real,
    config_reals,
    finished_rows,
    gradient_descent,
    progress_bar,
    pyplot,
    require,
    write_report,
)
from jwinit.experiments.io import save_figure, write_csv, write_json
from jwinit.results import append_rows

__all__ = ["DEFAULTS", "run", "validate", "outcome"]

#: The fields of an NTK-conditioning experiment and their defaults.
DEFAULTS = {
    "title": "The NTK's conditioning across the phase diagram", "paper": "-",
    "not_covered": "",
    "data": "digits", "examples": 32, "activation": "erf",
    "sigma_w2": (0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0), "sigma_b2": (0.02, 0.2),
    "depths": (10, 30, 100), "width": 256, "seeds": 2, "seed": 0,
    "train_sigma_b2": 0.02, "train_depths": (10, 30), "learning_rate": 0.01,
    "train_steps": 300, "trained_fraction": 0.2, "band": 2.0,
    "condition_factor": 2.0, "blowup": 100.0,
}

#: The largest condition number float64 resolves (a kernel past it has lambda_min <= 0 in
#: rounding: kappa is reported as inf and drawn at this value).
UNRESOLVED = 1e15

#: The empirical kappa must order the cells of a depth as the infinite one does, to this rank
#: correlation.
RANK_CORRELATION = 0.9

#: The measured outcomes of a run at a fixed learning rate.
OUTCOMES = ("trained", "stalled", "diverged")


def validate(config: Any) -> None:
    require(config, "data", "examples", "activation", "sigma_w2", "sigma_b2", "depths", "width",
            "seeds", "seed", "train_sigma_b2", "train_depths", "learning_rate", "train_steps",
            "trained_fraction", "band", "condition_factor", "blowup")
    from jwinit import theory

    config_one_hot_subset(config)
    act = config_activation(config.activation, "activation")
    config_reals(config, "sigma_w2", low=0.0, low_open=True)
    sbs = config_reals(config, "sigma_b2", low=0.0)
    depths = config_ints(config, "depths")
    config_int(config, "width")
    config_int(config, "seeds")
    config_int(config, "seed", minimum=0)
    sb = config_real(config, "train_sigma_b2", low=0.0)
    if sb not in sbs:
        raise ValueError(f"`config.train_sigma_b2` must be one of `config.sigma_b2` {sbs}, got "
                         f"{sb!r}.")
    for d in config_ints(config, "train_depths"):
        if d not in depths:
            raise ValueError(f"`config.train_depths` must be among `config.depths` {depths}, "
                             f"got {d}.")
    config_real(config, "learning_rate", low=0.0, low_open=True)
    config_int(config, "train_steps")
    config_real(config, "trained_fraction", low=0.0, high=1.0, low_open=True, high_open=True)
    config_real(config, "band", low=1.0)
    config_real(config, "condition_factor", low=1.0)
    config_real(config, "blowup", low=1.0)
    for s in sbs:
        if not np.isfinite(float(theory.critical_sigma_w2(act, s))):
            raise ValueError(f"`config.sigma_b2`: {act} has no edge of chaos at sigma_b2 = {s:g} "
                             "(jwinit.theory.critical_sigma_w2 is nan).")


def outcome(ratio: float, diverged: bool, fraction: float) -> str:
    """'diverged', 'trained' (loss ratio L_T / L_0 <= `fraction`) or 'stalled'."""
    if diverged or not math.isfinite(ratio) or ratio > 1:
        return "diverged"
    return "trained" if ratio <= fraction else "stalled"


def _condition(kernel: np.ndarray) -> tuple[float, float, float]:
    """(lambda_max, lambda_min, kappa) of a symmetric kernel, in float64."""
    k = np.asarray(kernel, np.float64)
    values = np.linalg.eigvalsh((k + k.T) / 2)
    top, bottom = float(values[-1]), float(values[0])
    return top, bottom, (top / bottom if bottom > 0 else math.inf)


def _infinite(config: Any, x: np.ndarray, sw: float, sb: float, depth: int) -> np.ndarray:
    """The infinite-width NTK on `x`, float64."""
    import jax

    from jwinit import theory

    with jax.enable_x64(True):
        f = theory.kernel_fn(config.activation, depth, sw, sb, parameterization="standard",
                             width=int(config.width))
        return np.asarray(f(np.asarray(x, np.float64)).ntk, np.float64)


def run(config: Any, workdir: str | pathlib.Path) -> dict[str, Any]:
    import jax
    import jax.numpy as jnp

    import jwinit
    from jwinit import theory
    from jwinit.data import load

    workdir = pathlib.Path(workdir)
    data = load(config.data)
    n, k = int(config.examples), data.output_dim
    x = jnp.asarray(data.x_train[:n])
    y = jax.nn.one_hot(jnp.asarray(data.y_train[:n]), k)
    act, width = config.activation, int(config.width)
    sws, sbs = [float(v) for v in config.sigma_w2], [float(v) for v in config.sigma_b2]
    depths = [int(d) for d in config.depths]
    crit = {sb: float(theory.critical_sigma_w2(act, sb)) for sb in sbs}
    cells = [(sw, sb) for sb in sbs for sw in [*sws, crit[sb]]]
    lr = float(config.learning_rate)
    steps, fraction = int(config.train_steps), float(config.trained_fraction)
    train_sb, train_depths = float(config.train_sigma_b2), set(int(d) for d in config.train_depths)
    out = workdir / "results.jsonl"
    per_depth = len(cells) * int(config.seeds)
    rows = finished_rows(out, ("depth",), per_depth)
    done = {r["depth"] for r in rows}
    with progress_bar("depths", unit="depths") as update:
        update(len(done), len(depths))
        for depth in depths:
            if depth in done:
                continue
            first = len(rows)
            model = jwinit.models.MLP(depth=depth, width=width, output_dim=k, activation=act)
            unit = {r"kernel$": jwinit.variance_scaling(1.0, "fan_in", "normal"),
                    r"bias$": jwinit.normal(1.0)}
            keys = jax.random.split(jax.random.key(int(config.seed)), int(config.seeds))
            units = [jwinit.init_params(model, key, x, unit)["params"] for key in keys]
            trained_cells, trained_params = [], []
            for sw, sb in cells:
                theta = _infinite(config, x, sw, sb, depth)
                inf_top, inf_bottom, inf_kappa = _condition(theta)
                for s, u in enumerate(units):
                    params = _scaled(u, sw, sb)
                    r = jwinit.trainability(model, {"params": params}, x, y)
                    empirical = (r.eigenvectors * r.eigenvalues) @ r.eigenvectors.T
                    row = {"sigma_w2": sw, "sigma_b2": sb, "critical": sw == crit[sb],
                           "depth": depth, "seed": s, "width": width,
                           "lambda_max": r.lambda_max, "lambda_min": r.lambda_min,
                           "condition": r.condition, "lr_max": r.lr_max,
                           "lambda_max_infinite": inf_top, "lambda_min_infinite": inf_bottom,
                           "condition_infinite": inf_kappa,
                           "kernel_distance": float(np.linalg.norm(empirical - theta)
                                                    / np.linalg.norm(theta))}
                    if sb == train_sb and depth in train_depths:
                        curve = r.loss_curve(lr, steps)
                        row["predicted_ratio"] = float(curve[-1] / curve[0])
                        row["predicted"] = ("unstable" if lr > r.lr_max else
                                            outcome(row["predicted_ratio"], False, fraction))
                        trained_cells.append(len(rows))
                        trained_params.append(params)
                    rows.append(row)
            if trained_params:
                stacked = jax.tree.map(lambda *a: jnp.stack(a), *trained_params)
                losses = np.asarray(gradient_descent(model, x, y, steps)(
                    stacked, jnp.full((len(trained_params), 1), lr, jnp.float32)),
                    np.float64)[:, 0]
                for j, losses_j in zip(trained_cells, losses, strict=True):
                    ratio = float(losses_j[-1] / losses_j[0])
                    rows[j]["measured_ratio"] = ratio
                    rows[j]["measured"] = outcome(ratio, not np.all(np.isfinite(losses_j)),
                                                  fraction)
                    rows[j]["losses"] = losses_j.tolist()
            append_rows(out, rows[first:])  # a depth's rows, after every one is computed
            update(len({r["depth"] for r in rows}), len(depths))
    rows.sort(key=lambda r: depths.index(r["depth"]))
    summary = _summary(rows, act)
    columns = list(summary[0])
    write_csv(workdir / "summary.csv", summary, columns)
    checks = _checks(rows, summary, config, crit)
    write_json(workdir / "checks.json", checks)
    plots = _plots(rows, summary, config, crit, workdir / "plots")
    reproduced = write_report(
        workdir, title=config.title, paper=config.paper,
        setup=(f"{data.summary()} ({config.data}); the first {n} training examples, one-hot "
               f"targets. {act} MLPs of width {width} at depths {depths}, weights "
               f"N(0, sigma_w2 / fan_in) and biases N(0, sigma_b2) for sigma_w2 in {sws} and at "
               f"the edge of chaos (critical sigma_w2 "
               + ", ".join(f"{crit[sb]:.4g} at sigma_b2 = {sb:g}" for sb in sbs)
               + f"), sigma_b2 in {sbs}; {config.seeds} seeds per cell (one unit draw per seed "
               f"and depth, scaled). Infinite width: jwinit.theory.kernel_fn (standard "
               f"parameterization at width {width}, float64). Trained: the cells of sigma_b2 = "
               f"{train_sb:g} at depths {sorted(train_depths)}, full-batch gradient descent on "
               f"the mean squared error at learning rate {lr:g} for {steps} steps; outcomes "
               f"'trained' (loss at most {fraction:g} of its start), 'stalled', 'diverged'."),
        not_covered=config.not_covered, checks=checks,
        tables=[("Per cell (medians over seeds)", summary, columns)], plots=plots)
    return {"cells": len(summary), "reproduced": reproduced,
            "report": str(workdir / "report.md")}


def _scaled(unit: Any, sw: float, sb: float) -> Any:
    """Unit draws (kernels N(0, 1 / fan_in), biases N(0, 1)) scaled to the cell."""
    import jax

    def scale(path: Any, leaf: Any) -> Any:
        name = str(getattr(path[-1], "key", path[-1]))
        return leaf * (math.sqrt(sw) if name == "kernel" else math.sqrt(sb))

    return jax.tree_util.tree_map_with_path(scale, unit)


def _summary(rows: list[dict[str, Any]], act: str) -> list[dict[str, Any]]:
    from jwinit import theory

    out = []
    keys = sorted({(r["sigma_b2"], r["depth"], r["sigma_w2"]) for r in rows})
    for sb, depth, sw in keys:
        rs = [r for r in rows if (r["sigma_b2"], r["depth"], r["sigma_w2"]) == (sb, depth, sw)]
        scales = theory.depth_scales(act, sw, sb)
        chi1 = float(theory.phase_diagram(act, sw, sb).chi1)
        row = {"sigma_b2": sb, "sigma_w2": sw, "depth": depth,
               "phase": "critical" if rs[0]["critical"] else ("ordered" if chi1 < 1
                                                             else "chaotic"),
               "chi1": chi1, "xi_c": float(scales[1]),
               "condition_infinite": rs[0]["condition_infinite"],
               "condition_empirical": float(np.median([r["condition"] for r in rs])),
               "kernel_distance": float(np.median([r["kernel_distance"] for r in rs])),
               "lr_max": float(np.median([r["lr_max"] for r in rs]))}
        if "measured" in rs[0]:
            row["predicted"] = "/".join(sorted({r["predicted"] for r in rs}))
            row["measured"] = "/".join(sorted({r["measured"] for r in rs}))
            row["predicted_ratio"] = float(np.median([r["predicted_ratio"] for r in rs]))
            row["measured_ratio"] = float(np.median([r["measured_ratio"] for r in rs]))
        out.append(row)
    columns = list(max(out, key=len))
    return [{c: row.get(c, "") for c in columns} for row in out]


def _checks(rows: list[dict[str, Any]], summary: list[dict[str, Any]], config: Any,
            crit: dict[float, float]) -> list[dict[str, Any]]:
    deepest = max(int(d) for d in config.depths)
    blowup, factor = float(config.blowup), float(config.condition_factor)
    by = {(s["sigma_b2"], s["depth"], s["sigma_w2"]): s for s in summary}
    # (1) ordered cells at least 4 depth scales deep: kappa >= blowup x the critical cell's
    deep_ordered = [s for s in summary if s["phase"] == "ordered" and s["depth"] == deepest
                    and s["depth"] >= 4 * s["xi_c"]]
    ratios = {(s["sigma_b2"], s["sigma_w2"]): s["condition_infinite"]
              / by[s["sigma_b2"], deepest, crit[s["sigma_b2"]]]["condition_infinite"]
              for s in deep_ordered}
    # (2) chaotic cells at least 2 xi_c deep at the two deepest depths: kappa settles
    depths = sorted(int(d) for d in config.depths)
    settled = [s for s in summary if s["phase"] == "chaotic" and s["depth"] == deepest
               and depths[-2] >= 2 * s["xi_c"]]
    drift = {(s["sigma_b2"], s["sigma_w2"]): s["condition_infinite"]
             / by[s["sigma_b2"], depths[-2], s["sigma_w2"]]["condition_infinite"]
             for s in settled}
    # (3) at the shallowest depth the empirical kappa orders the cells as the infinite one does
    spearman = {d: _spearman([r["condition"] for r in rows if r["depth"] == d],
                             [min(r["condition_infinite"], UNRESOLVED) for r in rows
                              if r["depth"] == d]) for d in depths}
    # (3b) with depth the empirical kernel departs in the chaotic phase, not in the ordered one
    chaotic = sorted({(s["sigma_b2"], s["sigma_w2"]) for s in summary if s["phase"] == "chaotic"})
    rises = {c: (by[c[0], depths[0], c[1]]["kernel_distance"],
                 by[c[0], deepest, c[1]]["kernel_distance"]) for c in chaotic}
    ordered_deep = [s["kernel_distance"] for s in summary
                    if s["phase"] == "ordered" and s["depth"] == deepest]
    chaotic_deep = [v[1] for v in rises.values()]
    # (4) the NTK at init predicts the outcome of training at one learning rate
    band = float(config.band)
    fraction = float(config.trained_fraction)
    trained = [r for r in rows if "measured" in r]
    clear = [r for r in trained
             if float(config.learning_rate) <= r["lr_max"] / band
             and not 1 / band < r["predicted_ratio"] / fraction < band]
    unstable = [r for r in trained if r["predicted"] == "unstable"]
    seen = {o: sum(r["measured"] == o for r in unstable) for o in OUTCOMES}
    wrong = [(r["sigma_w2"], r["depth"], r["seed"], r["predicted"], r["measured"])
             for r in clear if r["predicted"] != r["measured"]]
    agree_all = sum(r["predicted"] == r["measured"] for r in trained)
    return [
        check(f"in the ordered phase the infinite-width NTK's condition number blows up with "
              f"depth: at depth {deepest}, every ordered cell at least 4 xi_c deep has kappa "
              f">= {blowup:g}x the edge of chaos's",
              "Xiao, Pennington & Schoenholz 2020, Sec. 4 (kappa ~ exp(l / xi) in the ordered "
              "phase) and Fig. 2",
              f"{len(deep_ordered)} cells: kappa / kappa_critical " + ", ".join(
                  f"{v:.3g} (sigma_w2 {sw:g}, sigma_b2 {sb:g})"
                  for (sb, sw), v in sorted(ratios.items())),
              bool(deep_ordered) and all(v >= blowup for v in ratios.values())),
        check(f"in the chaotic phase it converges instead: between depths {depths[-2]} and "
              f"{deepest} kappa changes by less than {factor:g}x in every chaotic cell at least "
              f"2 xi_c deep at both",
              "Xiao et al. 2020, Sec. 4 (the chaotic phase's kernel converges to a "
              "well-conditioned one; trainable, poorly generalizing)",
              f"{len(settled)} cells: kappa({deepest}) / kappa({depths[-2]}) " + ", ".join(
                  f"{v:.3g} (sigma_w2 {sw:g}, sigma_b2 {sb:g})"
                  for (sb, sw), v in sorted(drift.items())),
              bool(settled) and all(1 / factor <= v <= factor for v in drift.values())),
        check(f"where depth / width is small (depth {depths[0]}, width {config.width}), the "
              f"empirical NTK orders the cells by conditioning as the infinite-width kernel "
              f"does: Spearman's rank correlation of kappa over every (cell, seed) >= "
              f"{RANK_CORRELATION:g}", "Jacot et al. 2018; Lee et al. 2019 (the empirical NTK "
              "concentrates on the infinite-width kernel)",
              "; ".join(f"depth {d}: {v:.3f}" for d, v in spearman.items()),
              spearman[depths[0]] >= RANK_CORRELATION),
        check(f"with depth the empirical NTK departs from the infinite-width kernel in the "
              f"chaotic phase and stays near it in the ordered phase: every chaotic cell's "
              f"relative distance |Theta - Theta_inf| / |Theta_inf| grows from depth "
              f"{depths[0]} to {deepest}, and at depth {deepest} exceeds every ordered cell's",
              "Seleznova & Kutyniok 2022 (the NTK's dispersion grows exponentially with depth "
              "in the chaotic phase, not in the ordered one); Hanin & Nica 2019",
              "chaotic (sigma_w2, sigma_b2): " + ", ".join(
                  f"({sw:g}, {sb:g}) {a:.3f} -> {b:.3f}" for (sb, sw), (a, b) in rises.items())
              + f"; ordered at depth {deepest}: at most "
              + (f"{max(ordered_deep):.3f}" if ordered_deep else "none"),
              bool(rises) and bool(ordered_deep) and all(b > a for a, b in rises.values())
              and min(chaotic_deep) > max(ordered_deep)),
        check(f"below lr_max, the NTK at init predicts whether a run at learning rate "
              f"{config.learning_rate:g} trains or stalls in {config.train_steps} steps, on "
              f"every run at least a factor {band:g} from a class boundary (and from lr_max)",
              "Xiao et al. 2020, Sec. 3 and 5 (trainability is set by the NTK's spectrum)",
              f"{len(clear) - len(wrong)} of {len(clear)} clear runs agree (disagreeing: "
              f"{wrong or 'none'}); over all {len(trained)} runs {agree_all}. Above lr_max, "
              f"where the linearized model diverges, {len(unstable)} runs: "
              + ", ".join(f"{v} {o}" for o, v in seen.items())
              + " (outside the linearized regime: a finite network may catapult, Lewkowycz et "
                "al. 2020, and a bounded activation keeps its outputs finite)",
              len(clear) >= len(trained) // 3 and not wrong),
    ]


def _spearman(a: list[float], b: list[float]) -> float:
    """Spearman's rank correlation (ties get their mean rank)."""
    def ranks(v: list[float]) -> np.ndarray:
        v = np.asarray(v, np.float64)
        order = np.argsort(v, kind="stable")
        r = np.empty(len(v))
        r[order] = np.arange(len(v), dtype=np.float64)
        for value in np.unique(v):
            tied = v == value
            r[tied] = r[tied].mean()
        return r

    ra, rb = ranks(a), ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra @ rb) / np.sqrt((ra @ ra) * (rb @ rb)))


def _plots(rows: list[dict[str, Any]], summary: list[dict[str, Any]], config: Any,
           crit: dict[float, float], folder: pathlib.Path) -> list[pathlib.Path]:
    plt = pyplot()
    if plt is None:
        return []
    from matplotlib.colors import LogNorm

    from jwinit import theory

    act = config.activation
    sbs = [float(v) for v in config.sigma_b2]
    depths = sorted(int(d) for d in config.depths)
    out = []
    fig, axes = plt.subplots(1, len(sbs), figsize=(5.5 * len(sbs), 4.6), squeeze=False,
                             constrained_layout=True)
    values = [s["condition_infinite"] for s in summary if math.isfinite(s["condition_infinite"])]
    norm = LogNorm(vmin=max(min(values), 1.0), vmax=UNRESOLVED)
    for ax, sb in zip(axes[0], sbs, strict=True):
        grid = sorted({s["sigma_w2"] for s in summary if s["sigma_b2"] == sb})
        kappa = np.minimum([[_by_cell(summary, sb, d, sw)["condition_infinite"] for sw in grid]
                            for d in depths], UNRESOLVED)  # float64's limit: drawn at the top
        sw_edges = _edges(np.log(grid))
        d_edges = _edges(np.log(np.asarray(depths, float)))
        mesh = ax.pcolormesh(np.exp(sw_edges), np.exp(d_edges), kappa, norm=norm,
                             cmap="magma")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.axvline(crit[sb], color="c", ls="--", lw=1.5,
                   label=f"edge of chaos, sigma_w2 = {crit[sb]:.3g} (theory)")
        fine = np.exp(np.linspace(sw_edges[0], sw_edges[-1], 200))
        xi = np.array([float(theory.depth_scales(act, s, sb)[1]) for s in fine])
        ax.plot(fine, np.clip(4 * xi, np.exp(d_edges[0]), np.exp(d_edges[-1])), color="w",
                lw=1.5, label="depth = 4 xi_c (theory)")
        ax.set_ylim(np.exp(d_edges[0]), np.exp(d_edges[-1]))
        ax.set_xlabel("sigma_w2 (weight variance x fan_in)")
        ax.set_ylabel("depth (hidden layers)")
        ax.set_title(f"infinite-width NTK condition number, sigma_b2 = {sb:g}", fontsize=10)
        ax.legend(fontsize=7, loc="lower left", facecolor="0.8")
    fig.colorbar(mesh, ax=axes[0].tolist(),
                 label="kappa = lambda_max / lambda_min (top: beyond float64, lambda_min <= 0)")
    out.append(save_figure(fig, folder / "condition.png"))
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6.4, 5.2), constrained_layout=True)
    markers = {d: "os^vDPX*"[i % 8] for i, d in enumerate(depths)}
    colours = {"ordered": "tab:blue", "critical": "tab:green", "chaotic": "tab:red"}
    phase = {(s["sigma_b2"], s["depth"], s["sigma_w2"]): s["phase"] for s in summary}
    for r in rows:
        ax.scatter(r["condition_infinite"], r["condition"], marker=markers[r["depth"]],
                   color=colours[phase[r["sigma_b2"], r["depth"], r["sigma_w2"]]], alpha=0.7,
                   s=25)
    top = max(max(r["condition_infinite"], r["condition"]) for r in rows
              if math.isfinite(r["condition_infinite"]) and math.isfinite(r["condition"]))
    line = np.array([1.0, top * 2])
    ax.plot(line, line, "k--", lw=1, label="empirical = infinite width")
    for name, c in colours.items():
        ax.scatter([], [], color=c, label=name)
    for d, m in markers.items():
        ax.scatter([], [], color="k", marker=m, label=f"depth {d}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("kappa of the infinite-width NTK (theory)")
    ax.set_ylabel(f"kappa of the empirical NTK, width {config.width} (each seed)")
    ax.set_title("Empirical against infinite-width NTK conditioning", fontsize=10)
    ax.legend(fontsize=7)
    out.append(save_figure(fig, folder / "empirical.png"))
    plt.close(fig)

    trained = [r for r in rows if "measured" in r]
    if trained:
        fig, ax = plt.subplots(figsize=(6.4, 5.0), constrained_layout=True)
        for r in trained:
            c = colours[phase[r["sigma_b2"], r["depth"], r["sigma_w2"]]]
            measured = r["measured_ratio"] if math.isfinite(r["measured_ratio"]) else 10.0
            ax.scatter(r["condition"], min(measured, 10.0), color=c,
                       marker=markers[r["depth"]], s=30, alpha=0.8)
            predicted = r["predicted_ratio"] if math.isfinite(r["predicted_ratio"]) else 10.0
            ax.scatter(r["condition"], min(predicted, 10.0), facecolors="none", edgecolors=c,
                       marker=markers[r["depth"]], s=60)
        ax.axhline(float(config.trained_fraction), color="k", ls=":", lw=1,
                   label=f"'trained' below {config.trained_fraction:g}")
        ax.axhline(1.0, color="k", ls="--", lw=0.8, label="above: diverged (clipped at 10)")
        ax.scatter([], [], color="k", label="measured")
        ax.scatter([], [], facecolors="none", edgecolors="k", s=60,
                   label="predicted from the NTK at init")
        for name, c in colours.items():
            ax.scatter([], [], color=c, label=name)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("kappa of the empirical NTK at init")
        ax.set_ylabel(f"loss after {config.train_steps} steps / loss at init")
        ax.set_title(f"Gradient descent at lr = {config.learning_rate:g}: measured and "
                     "predicted", fontsize=10)
        ax.legend(fontsize=7)
        out.append(save_figure(fig, folder / "training.png"))
        plt.close(fig)
    return out


def _by_cell(summary: list[dict[str, Any]], sb: float, depth: int, sw: float
            ) -> dict[str, Any]:
    return next(s for s in summary if (s["sigma_b2"], s["depth"], s["sigma_w2"])
                == (sb, depth, sw))


def _edges(centres: np.ndarray) -> np.ndarray:
    c = np.asarray(centres, float)
    if len(c) == 1:
        return np.array([c[0] - 0.5, c[0] + 0.5])
    mid = (c[1:] + c[:-1]) / 2
    return np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])

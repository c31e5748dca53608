"""The order-to-chaos phase diagram (Poole et al. 2016; Schoenholz et al. 2017), measured and
predicted layer by layer.

On a grid of (sigma_w2, sigma_b2), random MLPs with W ~ N(0, sigma_w2 / fan_in) and
b ~ N(0, sigma_b2) map two inputs of correlation c0 to pre-activations whose correlation c^l
follows the mean-field c-map: it tends to 1 in the ordered phase (chi1 < 1) and to c* < 1 in the
chaotic phase (chi1 > 1), at the rate exp(-l / xi_c), where xi_c diverges on the critical line
chi1 = 1. The grid runs as one compiled, vmapped probe program per width (forward pass only), in
tasks of a few cells whose rows are written as they finish.

The prediction uses the probe's conventions exactly: q^1 = sigma_w2 q_x + sigma_b2,
c^1 = (sigma_w2 c0 + sigma_b2) / q^1, then q^{l+1} = q_map(q^l), c^{l+1} = c_map(c^l; q^l),
computed in float64.

Finite width. A network of width n measures c^l = c_mf^l + a^l / n + O(n^-3/2) noise: the
mean-field value plus an O(1/n) bias (largest in the chaotic phase) plus fluctuations. With two
widths n1 < n2 the bias is removed by Richardson extrapolation, c_ext = (n2 c(n2) - n1 c(n1)) /
(n2 - n1), whose standard error follows from the seeds: per layer, the across-seed variance of
each width (the largest within a window of 11 layers: the estimate from a few seeds is noisy),
divided by the number of seeds. A cell agrees with mean field when |c_ext - c_mf| <=
`se_multiple` standard errors at every layer.

Config fields: activation, sigma_w2 (tuple), sigma_b2 (tuple), depth, widths (two), seeds,
batch_size (2 x the input pairs averaged; the correlation statistic uses at most 32 pairs), seed,
input_correlation, se_multiple.
Writes results.jsonl, summary.csv, report.md and plots/phase_diagram.png, plots/correlations.png.
"""

from __future__ import annotations

import math
import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jwinit import sweep as jsweep
from jwinit import theory
from jwinit.experiments.common import (
    check,
    config_activation,
    config_int,
    config_ints,
    config_real,
    config_reals,
    progress_bar,
    pyplot,
    require,
    write_report,
)
from jwinit.experiments.io import save_figure, write_csv
from jwinit.probe import CORRELATION_PAIRS

__all__ = ["DEFAULTS", "run", "validate", "predicted_correlations", "extrapolate"]

#: The fields of a phase diagram and their defaults (Schoenholz et al. 2017's tanh grid).
DEFAULTS = {
    "activation": "tanh",
    "sigma_w2": tuple(round(0.5 + 0.25 * i, 4) for i in range(15)),  # 0.5 .. 4.0
    "sigma_b2": (0.0, 0.05, 0.1, 0.2, 0.3),
    "depth": 50,
    "widths": (512, 1024),  # two widths: the O(1/n) finite-width bias is extrapolated away
    "seeds": 6,
    "batch_size": 64,  # 32 input pairs per seed
    "seed": 0,
    "input_correlation": 0.5,
    "se_multiple": 5.0,  # agreement within 5 standard errors at every layer of every cell
}

WINDOW = 5  # layers on each side pooled for the across-seed variance


def validate(config: Any) -> None:
    """Check every field before anything is computed or written (errors name the field)."""
    require(config, "activation", "sigma_w2", "sigma_b2", "depth", "widths", "seeds", "batch_size",
            "seed", "input_correlation", "se_multiple")
    config_activation(config.activation, "activation")
    config_reals(config, "sigma_w2", low=0.0, low_open=True)
    config_reals(config, "sigma_b2", low=0.0)
    widths = config_ints(config, "widths", minimum=2)
    if len(widths) != 2 or widths[0] >= widths[1]:
        raise ValueError(f"`config.widths` must be two increasing widths (n1 < n2) for the "
                         f"finite-width extrapolation, got {tuple(config.widths)!r}.")
    config_int(config, "depth")
    config_int(config, "seeds", minimum=2)
    config_int(config, "batch_size", minimum=2)
    config_int(config, "seed", minimum=0)
    config_real(config, "input_correlation", low=-1.0, high=1.0)
    config_real(config, "se_multiple", low=1.0)


def predicted_correlations(activation: str, sw: np.ndarray, sb: np.ndarray, depth: int,
                           c0: float, q_x: float = 1.0) -> np.ndarray:
    """c^l for l = 1..depth on the grid (shape (*grid, depth)), in the probe's conventions,
    computed in float64."""
    with jax.enable_x64(True):
        sw = jnp.asarray(sw, jnp.float64)
        sb = jnp.asarray(sb, jnp.float64)
        q = sw * q_x + sb
        c = (sw * c0 + sb) / q
        out = [c]
        for _ in range(depth - 1):
            c = theory.c_map(activation, sw, sb, jnp.clip(c, -1.0, 1.0), q=q)
            q = theory.q_map(activation, sw, sb, q)
            out.append(c)
        return np.asarray(jnp.stack(out, -1), np.float64)


def _pooled_se(per_seed: np.ndarray) -> np.ndarray:
    """Standard error of the seed mean per layer, (seeds, depth) -> (depth,).

    The across-seed variance at a layer, from a handful of seeds, is itself noisy; the largest
    across-seed variance within +-WINDOW layers is used instead (conservative where the variance
    changes with depth, e.g. as c -> 1, and far less noisy). Floored at float32 resolution.
    """
    seeds, depth = per_seed.shape
    var = np.var(per_seed, axis=0, ddof=1)
    pooled = np.array([var[max(0, l - WINDOW): l + WINDOW + 1].max() for l in range(depth)])
    return np.maximum(np.sqrt(pooled / seeds), 8 * float(np.finfo(np.float32).eps))


def extrapolate(small: np.ndarray, large: np.ndarray, n1: int, n2: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """(c_ext, standard error) from per-seed (seeds, depth) correlations at widths n1 < n2."""
    w1, w2 = n1 / (n2 - n1), n2 / (n2 - n1)
    ext = w2 * large.mean(axis=0) - w1 * small.mean(axis=0)
    se = np.sqrt((w2 * _pooled_se(large)) ** 2 + (w1 * _pooled_se(small)) ** 2)
    return ext, se


def run(config: Any, workdir: str | pathlib.Path) -> dict[str, Any]:
    workdir = pathlib.Path(workdir)
    act = config.activation
    sws = [float(v) for v in config.sigma_w2]
    sbs = [float(v) for v in config.sigma_b2]
    grid = [(sw, sb) for sw in sws for sb in sbs]
    n1, n2 = (int(w) for w in config.widths)
    c0 = float(config.input_correlation)
    k = float(config.se_multiple)
    with progress_bar("probes", unit="probes") as update:
        rows = jsweep.sweep(
            pairs=[((sw, sb), act) for sw, sb in grid], depths=(config.depth,),
            widths=(n1, n2), seeds=config.seeds, batch_size=config.batch_size, key=config.seed,
            input_correlation=c0, statistics="forward", out=workdir / "results.jsonl",
            resume=True, progress=update,
        )
    per_seed: dict[tuple[float, float, int], list[np.ndarray]] = {}
    for r in rows:
        per_seed.setdefault((float(r["sigma_w2"]), float(r["sigma_b2"]), int(r["width"])),
                            []).append(np.asarray(r["correlation"], np.float64))
    sw_arr = np.array([g[0] for g in grid])
    sb_arr = np.array([g[1] for g in grid])
    pred = predicted_correlations(act, sw_arr, sb_arr, config.depth, c0)
    pd = theory.phase_diagram(act, jnp.asarray(sw_arr), jnp.asarray(sb_arr))
    summary, curves = [], {}
    for i, (sw, sb) in enumerate(grid):
        small = np.stack(per_seed[(sw, sb, n1)])
        large = np.stack(per_seed[(sw, sb, n2)])
        ext, se = extrapolate(small, large, n1, n2)
        z = np.abs(ext - pred[i]) / np.maximum(se, 1e-12)
        chi1, c_star, xi_c = float(pd.chi1[i]), float(pd.c_star[i]), float(pd.xi_c[i])
        curves[(sw, sb)] = (large.mean(0), small.mean(0), ext, se, pred[i])
        summary.append({
            "sigma_w2": sw, "sigma_b2": sb, "chi1": chi1,
            "phase": "ordered" if chi1 < 1 else "chaotic", "c_star": c_star, "xi_c": xi_c,
            f"c_last_width_{n2}": float(large.mean(0)[-1]),
            f"c_last_width_{n1}": float(small.mean(0)[-1]),
            "c_last_extrapolated": float(ext[-1]), "c_last_predicted": float(pred[i, -1]),
            "bias_at_width_n2": float(large.mean(0)[-1] - ext[-1]),
            "max_error_width_n2": float(np.max(np.abs(large.mean(0) - pred[i]))),
            "max_error_extrapolated": float(np.max(np.abs(ext - pred[i]))),
            "max_z": float(np.max(z)), "agrees": bool(np.max(z) <= k),
        })
    checks = _checks(summary, config, k)
    columns = list(summary[0])
    write_csv(workdir / "summary.csv", summary, columns)
    plots = _plot(config, sws, sbs, summary, curves, workdir / "plots")
    crit = [float(theory.critical_sigma_w2(act, sb)) for sb in sbs]
    pairs = min(config.batch_size // 2, CORRELATION_PAIRS)
    reproduced = write_report(
        workdir, title=f"Order-to-chaos phase diagram of {act} networks",
        paper="Schoenholz, Gilmer, Ganguli & Sohl-Dickstein 2017, \"Deep Information "
              "Propagation\" (Sec. 3, Figs. 1-2); Poole et al. 2016, \"Exponential expressivity "
              "in deep neural networks through transient chaos\" (Fig. 2).",
        setup=f"Depth {config.depth}; widths {n1} and {n2}; {config.seeds} seeds x {pairs} input "
              f"pairs of correlation c0 = {c0} per cell; {len(grid)} cells "
              f"(sigma_w2 in {sws[0]:g}..{sws[-1]:g}, sigma_b2 in {sbs}). Critical sigma_w2 "
              "(chi1 = 1) per sigma_b2: "
              + ", ".join(f"{sb:g}: {c:.4g}" for sb, c in zip(sbs, crit, strict=True)) + ". "
              f"Measured correlations are extrapolated to infinite width from the two widths "
              f"(Richardson; removes the O(1/n) finite-width bias) and compared with the "
              f"float64 mean-field c-map at every layer, within {k:g} standard errors (from the "
              "seeds: the largest across-seed variance within 11 layers).",
        not_covered="Schoenholz et al.'s trainability result (networks train up to a depth of "
                    "about 6 xi_c, Sec. 5) is a statement about training: "
                    "configs/schoenholz2017_trainability.py.",
        checks=checks, tables=[("All cells", summary, columns)], plots=plots)
    return {"cells": len(summary), "agreement": f"{sum(s['agrees'] for s in summary)}/"
            f"{len(summary)}", "reproduced": reproduced, "report": str(workdir / "report.md")}


def _checks(summary: list[dict[str, Any]], config: Any, k: float) -> list[dict[str, Any]]:
    out = []
    agree = sum(s["agrees"] for s in summary)
    worst = max(summary, key=lambda s: s["max_z"])
    out.append(check(
        "the correlation of two inputs follows the mean-field c-map layer by layer, in both "
        "phases", "Schoenholz et al. Sec. 3, Fig. 1",
        f"{agree} of {len(summary)} cells within {k:g} standard errors at every one of "
        f"{config.depth} layers (after the 1/n extrapolation); worst {worst['max_z']:.2f} s.e. "
        f"at sigma_w2 = {worst['sigma_w2']:g}, sigma_b2 = {worst['sigma_b2']:g}",
        agree == len(summary)))
    settled = [s for s in summary if math.isfinite(s["xi_c"]) and s["xi_c"] <= config.depth / 10]
    # With sigma_b2 = 0 the ordered phase collapses to q* = 0, where tanh is linear and the
    # c-map is the identity: correlations freeze instead of reaching 1 (the c-map check above
    # covers those cells); the claim is about sigma_b2 > 0.
    ordered = [s for s in settled if s["phase"] == "ordered" and s["sigma_b2"] > 0]
    # chaotic cells within 5 depth scales of c* by the last layer (exp(-5) of the way left)
    chaotic = [s for s in summary if s["phase"] == "chaotic" and math.isfinite(s["xi_c"])
               and s["xi_c"] <= config.depth / 5]
    if ordered:
        low = min(s["c_last_extrapolated"] for s in ordered)
        out.append(check(
            "ordered phase (chi1 < 1, sigma_b2 > 0): two inputs become identical, c -> 1",
            "Poole et al. Fig. 2; Schoenholz et al. Sec. 3",
            f"{len(ordered)} ordered cells with xi_c <= depth / 10: lowest last-layer "
            f"correlation {low:.5f} (predicted 1)",
            all(s["agrees"] and s["c_star"] == 1 and s["c_last_predicted"] > 1 - 1e-3
                for s in ordered)))
    if chaotic:
        gap = max(abs(s["c_last_extrapolated"] - s["c_star"]) for s in chaotic)
        top = max(s["c_star"] for s in chaotic)
        out.append(check(
            "chaotic phase (chi1 > 1): two inputs decorrelate to a fixed point c* < 1",
            "Poole et al. Fig. 2; Schoenholz et al. Sec. 3",
            f"{len(chaotic)} chaotic cells with xi_c <= depth / 5: last-layer correlations "
            f"within {gap:.3f} of c* (c* from {min(s['c_star'] for s in chaotic):.3f} to "
            f"{top:.3f})",
            all(s["agrees"] and s["c_star"] < 1 - 1e-3 for s in chaotic)))
    near = [s for s in summary if math.isfinite(s["xi_c"]) and s["xi_c"] > config.depth]
    if near:
        out.append(check(
            "near the critical line the depth scale xi_c diverges: correlations are still far "
            "from c* after many layers", "Schoenholz et al. Sec. 3, Fig. 2",
            f"{len(near)} cells with xi_c > depth (up to {max(s['xi_c'] for s in near):.3g} "
            f"layers), all following the slow c-map transient",
            all(s["agrees"] for s in near)))
    return out


def _plot(config: Any, sws: list[float], sbs: list[float], summary: list[dict[str, Any]],
          curves: dict, folder: pathlib.Path) -> list[pathlib.Path]:
    plt = pyplot()
    if plt is None:
        return []
    shape = (len(sws), len(sbs))
    meas = np.array([s["c_last_extrapolated"] for s in summary]).reshape(shape)
    pred = np.array([s["c_last_predicted"] for s in summary]).reshape(shape)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    sb_fine = np.linspace(min(sbs), max(sbs), 64)
    crit = np.asarray(jax.vmap(lambda b: theory.critical_sigma_w2(config.activation, b))(
        jnp.asarray(sb_fine, jnp.float32)))
    for ax, data, title in ((axes[0], meas, "measured (extrapolated to infinite width)"),
                            (axes[1], pred, "mean-field c-map")):
        im = ax.pcolormesh(sbs, sws, data, shading="nearest", vmin=0, vmax=1, cmap="viridis")
        ax.set_title(f"{title}\ncorrelation at layer {config.depth}", fontsize=10)
        ax.set_xlabel("bias variance sigma_b^2")
        ax.set_ylabel("weight variance sigma_w^2")
        ax.plot(sb_fine, crit, "w--", lw=2, label="critical line chi1 = 1 (theory)")
        ax.legend(loc="upper left", fontsize=8, framealpha=0.6)
    cbar = fig.colorbar(im, ax=axes, shrink=0.9)
    cbar.set_label(f"c^L: correlation of two inputs after {config.depth} layers "
                   f"(c^0 = {config.input_correlation:g})")
    out = [save_figure(fig, folder / "phase_diagram.png")]
    plt.close(fig)

    # layerwise curves of a few representative cells: ordered, near critical, chaotic
    picks = _representative(summary)
    fig, ax = plt.subplots(figsize=(8, 5.5), constrained_layout=True)
    layers = np.arange(1, config.depth + 1)
    n1, n2 = config.widths
    for s in picks:
        key = (s["sigma_w2"], s["sigma_b2"])
        large, small, ext, se, p = curves[key]
        name = f"sigma_w2={key[0]:g}, sigma_b2={key[1]:g} ({s['phase']}, xi_c={s['xi_c']:.3g})"
        (line,) = ax.plot(layers, ext, lw=1.5, label=f"measured, {name}")
        ax.fill_between(layers, ext - 2 * se, ext + 2 * se, color=line.get_color(), alpha=0.25)
        ax.plot(layers, p, "o", ms=3, color="k", zorder=5, markevery=max(1, config.depth // 25))
    ax.plot([], [], "o", ms=3, color="k", label="mean-field c-map (theory)")
    ax.fill_between([], [], [], color="grey", alpha=0.25,
                    label=f"+-2 s.e. over seeds (widths {n1}, {n2} extrapolated)")
    ax.set_xlabel("layer l")
    ax.set_ylabel("correlation c^l of two inputs")
    ax.set_title("Layerwise correlation: measured vs mean field")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    ax.grid(alpha=0.3)
    out.append(save_figure(fig, folder / "correlations.png"))
    plt.close(fig)
    return out


def _representative(summary: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ordered = [s for s in summary if s["phase"] == "ordered"]
    chaotic = [s for s in summary if s["phase"] == "chaotic"]
    picks = []
    if ordered:
        picks.append(min(ordered, key=lambda s: s["xi_c"]))
    near = [s for s in summary if math.isfinite(s["xi_c"]) and s["sigma_b2"] > 0]
    if near:  # the slowest convergence away from the degenerate sigma_b2 = 0 column
        picks.append(max(near, key=lambda s: s["xi_c"]))
    if chaotic:
        picks.append(max(chaotic, key=lambda s: s["sigma_w2"] - s["sigma_b2"]))
    unique = []
    for p in picks:
        if p not in unique:
            unique.append(p)
    return unique

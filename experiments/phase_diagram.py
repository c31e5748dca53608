"""The order-to-chaos phase diagram (Poole et al. 2016; Schoenholz et al. 2017), measured and
predicted.

On a grid of (sigma_w2, sigma_b2), random MLPs with W ~ N(0, sigma_w2 / fan_in) and
b ~ N(0, sigma_b2) map two inputs of correlation c0 to pre-activations whose correlation c^l
follows the mean-field c-map: it tends to 1 in the ordered phase (chi1 < 1) and to c* < 1 in the
chaotic phase (chi1 > 1), at the rate exp(-l / xi_c) where xi_c diverges on the critical line
chi1 = 1. The whole grid runs as one compiled, vmapped probe program (`jwinit.sweep` pairs).

The prediction uses the probe's conventions exactly: q^1 = sigma_w2 q_x + sigma_b2,
c^1 = (sigma_w2 c0 + sigma_b2) / q^1, then q^{l+1} = q_map(q^l), c^{l+1} = c_map(c^l; q^l).

Config fields: activation, sigma_w2 (tuple), sigma_b2 (tuple), depth, width, seeds, batch, seed,
input_correlation, tolerance (max |c_measured - c_predicted| over layers), min_agreement.
Writes results.jsonl, summary.csv, report.md, plots/phase_diagram.png.
"""

from __future__ import annotations

import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from experiments.common import (
    config_activation,
    config_int,
    config_real,
    config_reals,
    markdown_table,
    progress_bar,
    pyplot,
    require,
)
from experiments.io import save_figure, write_csv, write_text
from jwinit import sweep as jsweep
from jwinit import theory

__all__ = ["run", "validate", "predicted_correlations"]


def predicted_correlations(activation: str, sw: np.ndarray, sb: np.ndarray, depth: int,
                           c0: float, q_x: float = 1.0) -> np.ndarray:
    """c^l for l = 1..depth on the grid (shape (*grid, depth)), in the probe's conventions."""
    sw = jnp.asarray(sw, jnp.float32)
    sb = jnp.asarray(sb, jnp.float32)
    q = sw * q_x + sb
    c = (sw * c0 + sb) / q
    out = [c]
    for _ in range(depth - 1):
        c = theory.c_map(activation, sw, sb, jnp.clip(c, -1.0, 1.0), q=q)
        q = theory.q_map(activation, sw, sb, q)
        out.append(c)
    return np.asarray(jnp.stack(out, -1), np.float64)


def validate(config: Any) -> None:
    """Check every field before anything is computed or written (errors name the field)."""
    require(config, "activation", "sigma_w2", "sigma_b2", "depth", "width", "seeds", "batch",
            "seed", "input_correlation", "tolerance", "min_agreement")
    config_activation(config.activation, "activation")
    config_reals(config, "sigma_w2", low=0.0, low_open=True)
    config_reals(config, "sigma_b2", low=0.0)
    for name in ("depth", "width", "seeds", "batch"):
        config_int(config, name)
    config_int(config, "seed", minimum=0)
    config_real(config, "input_correlation", low=-1.0, high=1.0)
    config_real(config, "tolerance", low=0.0, low_open=True)
    config_real(config, "min_agreement", low=0.0, high=1.0)


def run(config: Any, workdir: str | pathlib.Path) -> dict[str, Any]:
    workdir = pathlib.Path(workdir)
    act = config.activation
    sws = [float(v) for v in config.sigma_w2]
    sbs = [float(v) for v in config.sigma_b2]
    grid = [(sw, sb) for sw in sws for sb in sbs]
    c0 = float(config.input_correlation)
    with progress_bar("probes") as update:
        rows = jsweep.sweep(
            pairs=[((sw, sb), act) for sw, sb in grid], depths=(config.depth,),
            widths=(config.width,), seeds=config.seeds, batch=config.batch, key=config.seed,
            input_correlation=c0, out=workdir / "results.jsonl", resume=True, progress=update,
        )
    measured: dict[tuple[float, float], list[np.ndarray]] = {}
    for r in rows:
        measured.setdefault((float(r["sigma_w2"]), float(r["sigma_b2"])), []).append(
            np.asarray(r["correlation"], np.float64))
    sw_arr = np.array([g[0] for g in grid])
    sb_arr = np.array([g[1] for g in grid])
    pred = predicted_correlations(act, sw_arr, sb_arr, config.depth, c0)
    pd = theory.phase_diagram(act, jnp.asarray(sw_arr, jnp.float32),
                              jnp.asarray(sb_arr, jnp.float32))
    summary = []
    for i, (sw, sb) in enumerate(grid):
        c_meas = np.mean(measured[(sw, sb)], axis=0)
        err = float(np.max(np.abs(c_meas - pred[i])))
        summary.append({
            "sigma_w2": sw, "sigma_b2": sb, "chi1": float(pd.chi1[i]),
            "phase": "ordered" if pd.chi1[i] < 1 else "chaotic",
            "c_star": float(pd.c_star[i]), "xi_c": float(pd.xi_c[i]),
            "c_last_measured": float(c_meas[-1]), "c_last_predicted": float(pred[i, -1]),
            "max_abs_error": err, "agrees": err <= config.tolerance,
        })
    agree = sum(s["agrees"] for s in summary) / len(summary)
    reproduced = agree >= config.min_agreement
    columns = list(summary[0])
    write_csv(workdir / "summary.csv", summary, columns)
    plots = _plot(config, sws, sbs, summary, workdir / "plots")
    crit = [float(theory.critical_sigma_w2(act, sb)) for sb in sbs]
    report = [
        f"# Order-to-chaos phase diagram: {act}",
        "",
        f"Depth {config.depth}, width {config.width}, {config.seeds} seeds x {config.batch} input "
        f"pairs, input correlation {c0}. Critical sigma_w2 (chi1 = 1) per sigma_b2: "
        + ", ".join(f"{sb:g}: {c:.4g}" for sb, c in zip(sbs, crit, strict=True)) + ".",
        "",
        f"**Reproduced: {'yes' if reproduced else 'no'}** -- the measured layer-wise correlation "
        f"follows the mean-field c-map within {config.tolerance} at every layer in "
        f"{agree:.0%} of the grid (required: {config.min_agreement:.0%}).",
        "",
        markdown_table(summary, columns),
        "",
        *[f"![{p.stem}](plots/{p.name})" for p in plots],
        "",
    ]
    write_text(workdir / "report.md", "\n".join(report))
    return {"cells": len(summary), "agreement": f"{agree:.0%}",
            "reproduced": "yes" if reproduced else "no", "report": str(workdir / "report.md")}


def _plot(config: Any, sws: list[float], sbs: list[float], summary: list[dict[str, Any]],
          folder: pathlib.Path) -> list[pathlib.Path]:
    plt = pyplot()
    if plt is None:
        return []
    shape = (len(sws), len(sbs))
    meas = np.array([s["c_last_measured"] for s in summary]).reshape(shape)
    pred = np.array([s["c_last_predicted"] for s in summary]).reshape(shape)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, data, title in ((axes[0], meas, "measured"), (axes[1], pred, "mean-field")):
        im = ax.pcolormesh(sbs, sws, data, shading="nearest", vmin=0, vmax=1, cmap="viridis")
        ax.set_title(f"correlation at layer {config.depth} ({title})")
        ax.set_xlabel("sigma_b2")
        ax.set_ylabel("sigma_w2")
        sb_fine = np.linspace(min(sbs), max(sbs), 64)
        crit = np.asarray(jax.vmap(lambda b: theory.critical_sigma_w2(config.activation, b))(
            jnp.asarray(sb_fine, jnp.float32)))
        ax.plot(sb_fine, crit, "w--", label="chi1 = 1")
        ax.legend(loc="upper left", fontsize=8)
    fig.colorbar(im, ax=axes, shrink=0.8)
    out = [save_figure(fig, folder / "phase_diagram.png")]
    plt.close(fig)
    return out

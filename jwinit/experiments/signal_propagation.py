"""Signal propagation through deep MLPs: which schemes keep forward and backward signal alive.

Config fields:
  experiment: 'signal_propagation'.
  pairs: ('he_normal+relu', 'normal(stddev=0.1)+relu', ...) -- or `schemes` x `activations`.
  depths, widths: tuples of ints.  seeds: int.  batch_size: int.  seed: base PRNG seed.
  bias: registry name of a bias initializer or None.  precision: None/'highest'/...
  expected: (('he_normal+relu', 'preserved', 'Sec. 2.2, eq. 10'), ...) -- the paper's result for
    a pair: the regime it claims, and where it says so.
  names: (('he_normal+relu', 'He (Var = 2 / fan_in)'), ...) -- readable names for plots and
    tables (optional).
  title, paper, description, not_covered: text for the report.

Writes to the workdir: results.jsonl (one row per scheme x activation x depth x width x seed,
appended as each compiled program finishes; a rerun resumes), summary.csv (the regime of each cell
next to its agreement with mean-field theory, `jwinit.sweep.SUMMARY_COLUMNS`), report.md, and
plots/forward.png, plots/backward.png (per-layer second moments: seed mean with the range over
seeds, and the mean-field prediction).
"""

from __future__ import annotations

import math
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jwinit import sweep as jsweep
from jwinit.activations import get_activation
from jwinit.experiments.common import (
    check,
    config_activation,
    config_int,
    config_ints,
    config_pairs,
    parse_pair,
    parse_scheme,
    progress_bar,
    pyplot,
    require,
    write_report,
)
from jwinit.experiments.io import save_figure, write_csv
from jwinit.probe import REGIME_FACTOR, VERDICTS, ProbeOptions
from jwinit.schemes import resolve_scheme

__all__ = ["DEFAULTS", "run", "validate", "grid_arguments", "cell_key"]

#: The fields of a signal-propagation experiment and their defaults: the grid is `pairs`
#: ('scheme+activation' strings) or `schemes` x `activations`; `names` gives display names,
#: `expected` the claimed regime of a pair.
DEFAULTS = {
    "title": "Signal propagation", "paper": "-", "not_covered": "",
    "description": "",
    "pairs": None, "schemes": None, "activations": None, "names": (), "expected": (),
    "depths": None, "widths": None, "seeds": 8, "batch_size": 512, "seed": 0, "bias": None,
    "precision": None,
}


def cell_key(scheme: str, activation: str) -> str:
    """Normalized 'scheme+activation' (spaces and quote styles ignored) for matching `expected`."""
    return f"{scheme}+{activation}".replace(" ", "").replace('"', "'")


def _row_key(pair: str) -> str:
    """The key the sweep's rows will carry for a config pair 'scheme+activation'."""
    scheme, act = parse_pair(pair)
    label = resolve_scheme(scheme, None, 8).label
    return cell_key(label, get_activation(act).label)


def validate(config: Any) -> None:
    """Check every field before anything is computed or written (errors name the field)."""
    require(config, "depths", "widths", "seeds", "batch_size")
    if config.get("pairs"):
        config_pairs(config, "pairs")
    else:
        require(config, "schemes", "activations")
        for s in config.schemes:
            try:
                parse_scheme(s)
            except (TypeError, ValueError) as e:
                raise type(e)(f"`config.schemes`: {e}") from None
        for a in config.activations:
            config_activation(a, "activations")
    config_ints(config, "depths")
    config_ints(config, "widths")
    config_int(config, "seeds")
    config_int(config, "batch_size")
    config_int(config, "seed", minimum=0)
    ProbeOptions(batch_size=config.batch_size, precision=config.get("precision", None))
    bias = config.get("bias", None)
    if bias is not None:
        legal = "None or the name of an initializer such as 'normal(stddev=0.05)'"
        if not isinstance(bias, str):
            raise TypeError(f"`config.bias` must be {legal}, got {bias!r}.")
        try:
            spec = parse_scheme(bias)
        except (TypeError, ValueError) as e:
            raise type(e)(f"`config.bias`: {e}") from None
        if isinstance(spec, tuple) and not isinstance(spec[0], str):
            raise ValueError(f"`config.bias` must be {legal}, got {bias!r}.")
    for item in config.get("expected", ()):
        if not (isinstance(item, tuple | list) and len(item) in (2, 3) and item[1] in VERDICTS):
            raise ValueError(f"`config.expected` entries must be ('scheme+activation', verdict"
                             f"[, where the paper says so]) with a verdict in {VERDICTS}, got "
                             f"{item!r}.")
        parse_pair(item[0])
    for item in config.get("names", ()):
        if not (isinstance(item, tuple | list) and len(item) == 2 and isinstance(item[1], str)):
            raise ValueError(f"`config.names` entries must be ('scheme+activation', 'name'), got "
                             f"{item!r}.")
        parse_pair(item[0])


def grid_arguments(config: Any) -> dict[str, Any]:
    """Translate a config into `jwinit.sweep.sweep` keyword arguments (validated up front)."""
    kw: dict[str, Any] = {
        "depths": tuple(config.depths),
        "widths": tuple(config.widths),
        "seeds": config.seeds,
        "batch_size": config.batch_size,
        "key": config.get("seed", 0),
        "precision": config.get("precision", None),
        "bias_init": None if config.get("bias", None) is None else parse_scheme(config.bias),
    }
    if config.get("pairs"):
        kw["pairs"] = [parse_pair(p) for p in config.pairs]
    else:
        kw["schemes"] = [parse_scheme(s) for s in config.schemes]
        kw["activations"] = list(config.activations)
    return kw


def _fmt_ratio(log: float | None, numerics: str = "ok") -> str:
    if log is None:
        return "-"
    if not math.isfinite(log):
        if log > 0:
            return "inf (float32 overflow)"
        return {"underflow": "0 (float32 underflow)", "zero": "0 (zero weights)"}.get(
            numerics, "0/0" if math.isnan(log) else "0")
    return f"{math.exp(log):.3g}" if abs(log) < 700 else f"e^{log:.0f}"


def run(config: Any, workdir: str | pathlib.Path) -> dict[str, Any]:
    workdir = pathlib.Path(workdir)
    kw = grid_arguments(config)
    with progress_bar("probes", unit="probes") as update:
        rows = jsweep.sweep(**kw, out=workdir / "results.jsonl", resume=True, progress=update)
    summary = jsweep.summarize(rows)
    names = {_row_key(k): v for k, v in config.get("names", ())}
    expected = {_row_key(item[0]): (item[1], item[2] if len(item) > 2 else "")
                for item in config.get("expected", ())}
    for s in summary:
        key = cell_key(s["scheme"], s["activation"])
        s["name"] = names.get(key, f"{s['scheme']} + {s['activation']}")
        want = expected.get(key)
        s["expected"] = None if want is None else want[0]
        s["reproduced"] = None if want is None else s["verdict"] == want[0]
        s["forward_ratio"] = _fmt_ratio(s["log_forward"], s["numerics"])
        s["backward_ratio"] = _fmt_ratio(s["log_backward"], s["numerics"])
    columns = ["name", "scheme", "activation", "depth", "width", "num_seeds", "verdict",
               "expected", "reproduced", *[c for c in jsweep.SUMMARY_COLUMNS if c not in (
                   "scheme", "activation", "depth", "width", "num_seeds", "verdict")]]
    write_csv(workdir / "summary.csv", summary, columns)
    plots = _plots(rows, summary, workdir / "plots")
    checks = []
    for s in summary:
        if s["expected"] is None:
            continue
        where = expected[cell_key(s["scheme"], s["activation"])][1]
        checks.append(check(
            f"{s['name']}: the signal is {s['expected']} through {s['depth']} layers",
            where or "-",
            f"{s['verdict']} (E[h^2] ratio last/first {s['forward_ratio']}, E[g^2] ratio "
            f"first/last {s['backward_ratio']}; theory: {s['theory_verdict'] or '-'}, "
            f"{s['phase'] or '-'} phase)", s["reproduced"]))
    with_theory = [s for s in summary if s["agrees_with_theory"] is not None]
    if with_theory:
        agree = sum(bool(s["agrees_with_theory"]) for s in with_theory)
        checks.append(check(
            "the measured forward and backward second moments follow the mean-field prediction",
            "Poole et al. 2016; Schoenholz et al. 2017",
            f"{agree} of {len(with_theory)} cells with a prediction within the finite-width "
            f"tolerance (+-{with_theory[0]['tolerance']:.2g} in log units)",
            agree == len(with_theory)))
    table = [{c: s.get(c) for c in ("name", "depth", "width", "verdict", "expected",
                                    "forward_ratio", "backward_ratio", "theory_verdict", "phase",
                                    "depth_scale", "agrees_with_theory", "numerics")}
             for s in summary]
    reproduced = write_report(
        workdir, title=config.get("title", "Signal propagation"),
        paper=config.get("paper", "-"),
        setup=f"{str(config.get('description', '')).strip()}\n\nGrid: depths "
              f"{list(kw['depths'])}, widths {list(kw['widths'])}, {config.seeds} seeds, batch "
              f"size {config.batch_size}, precision {kw['precision']}. Regime (from the "
              "measurement): at "
              "its steady per-layer rate (the slope over the last half of the layers) a signal "
              f"that would change more than {REGIME_FACTOR:g}x over the depth is vanishing or "
              "exploding, else preserved (`jwinit.probe.Assessment`). Separately, the measured "
              "log ratios are compared with `jwinit.theory.predict` within a finite-width "
              "tolerance.",
        not_covered=str(config.get("not_covered", "")),
        checks=checks, tables=[("Cells", table, list(table[0])),
                               ("All columns (summary.csv)", summary, columns)],
        plots=plots)
    return {"rows": len(rows), "cells": len(summary), "reproduced": reproduced,
            "report": str(workdir / "report.md")}


def _plots(rows: Sequence[Mapping[str, Any]], summary: list[dict[str, Any]],
           folder: pathlib.Path) -> list[pathlib.Path]:
    plt = pyplot()
    if plt is None:
        return []
    results = jsweep.results_from_rows(rows)
    names = {(s["scheme"], s["activation"], s["depth"], s["width"]): s["name"] for s in summary}
    out = []
    titles = (("forward", "forward signal: E[h_l^2] of the pre-activations"),
              ("backward", "backward signal: E[g_l^2] of the gradients"))
    for stat, title in titles:
        groups = sorted({(k[2], k[3]) for k in results})
        fig, axes = plt.subplots(1, len(groups), figsize=(7.5 * len(groups), 5), squeeze=False,
                                 constrained_layout=True)
        for ax, (depth, width) in zip(axes[0], groups, strict=True):
            for key, res in sorted(results.items()):
                if (key[2], key[3]) != (depth, width):
                    continue
                values = np.asarray(res.stat(stat), np.float64)
                layers = np.arange(1, key[2] + 1)
                with np.errstate(invalid="ignore"):
                    mean = np.mean(values, axis=0)
                    lo, hi = np.min(values, axis=0), np.max(values, axis=0)
                ok = np.isfinite(mean) & (mean > 0)
                if not ok.any():  # zero or overflowed from the first layer: nothing to draw
                    ax.plot([], [], " ", label=f"{names[key]}: not drawn (0 or inf)")
                    continue
                (line,) = ax.semilogy(layers[ok], mean[ok], lw=1.5, label=names[key])
                band = ok & (lo > 0) & np.isfinite(hi)
                ax.fill_between(layers[band], lo[band], hi[band], color=line.get_color(),
                                alpha=0.2)
                pred = res.prediction()
                if pred is not None:
                    p = pred[0] if stat == "forward" else pred[1]
                    good = np.isfinite(p) & (p > 0)
                    ax.semilogy(layers[good], p[good], "o", ms=3.5, mfc="none",
                                color=line.get_color(), zorder=5,
                                markevery=max(1, int(good.sum()) // 15))
            ax.plot([], [], "o", ms=3.5, mfc="none", color="k", label="mean-field prediction")
            ax.fill_between([], [], [], color="grey", alpha=0.2, label="range over seeds")
            ax.set_title(f"{title}\ndepth {depth}, width {width}", fontsize=10)
            ax.set_xlabel("layer l")
            ax.set_ylabel(("E[h_l^2]" if stat == "forward" else "E[g_l^2]") + " (log scale)")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7, loc="best")
        out.append(save_figure(fig, folder / f"{stat}.png"))
        plt.close(fig)
    return out

"""Signal propagation through deep MLPs: which schemes keep forward and backward signal alive.

Config fields:
  experiment: 'signal_propagation'.
  pairs: ('he_normal+relu', 'normal(stddev=0.1)+relu', ...) -- or `schemes` x `activations`.
  depths, widths: tuples of ints.  seeds: int.  batch: int.  seed: base PRNG seed.
  bias: registry name of a bias initializer or None.  precision: None/'highest'/...
  expected: (('he_normal+relu', 'preserved'), ...) -- the published result to reproduce.

Writes to the workdir: results.jsonl (one row per scheme x activation x depth x width x seed,
appended as each compiled program finishes; a rerun resumes), summary.csv (verdicts and log-ratios
vs theory), report.md, and plots/forward.png, plots/backward.png (per-layer second moments, seed
mean, with the mean-field prediction dashed).
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from experiments.common import (
    config_activation,
    config_int,
    config_ints,
    config_pairs,
    markdown_table,
    parse_pair,
    parse_scheme,
    progress_bar,
    pyplot,
    require,
)
from experiments.io import save_figure, write_csv, write_text
from jwinit import sweep as jsweep
from jwinit.activations import get_activation
from jwinit.probe import VERDICTS, ProbeOptions

__all__ = ["run", "validate", "grid_arguments", "cell_key"]


def cell_key(scheme: str, activation: str) -> str:
    """Normalized 'scheme+activation' (spaces and quote styles ignored) for matching `expected`."""
    return f"{scheme}+{activation}".replace(" ", "").replace('"', "'")


def _row_key(pair: str) -> str:
    """The key the sweep's rows will carry for a config pair 'scheme+activation'."""
    scheme, act = parse_pair(pair)
    label = jsweep.resolve_scheme(scheme, None, 8).label
    return cell_key(label, get_activation(act).label)


def validate(config: Any) -> None:
    """Check every field before anything is computed or written (errors name the field)."""
    require(config, "depths", "widths", "seeds", "batch")
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
    config_int(config, "batch")
    config_int(config, "seed", minimum=0)
    ProbeOptions(batch=config.batch, precision=config.get("precision", None))
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
        if not (isinstance(item, tuple | list) and len(item) == 2 and item[1] in VERDICTS):
            raise ValueError(f"`config.expected` entries must be ('scheme+activation', verdict) "
                             f"with a verdict in {VERDICTS}, got {item!r}.")
        parse_pair(item[0])


def grid_arguments(config: Any) -> dict[str, Any]:
    """Translate a config into `jwinit.sweep.sweep` keyword arguments (validated up front)."""
    kw: dict[str, Any] = {
        "depths": tuple(config.depths),
        "widths": tuple(config.widths),
        "seeds": config.seeds,
        "batch": config.batch,
        "key": config.get("seed", 0),
        "precision": config.get("precision", None),
        "bias_init": config.get("bias", None),
    }
    if config.get("pairs"):
        kw["pairs"] = [parse_pair(p) for p in config.pairs]
    else:
        kw["schemes"] = [parse_scheme(s) for s in config.schemes]
        kw["activations"] = list(config.activations)
    return kw


def run(config: Any, workdir: str | pathlib.Path) -> dict[str, Any]:
    workdir = pathlib.Path(workdir)
    kw = grid_arguments(config)
    with progress_bar("probes") as update:
        rows = jsweep.sweep(**kw, out=workdir / "results.jsonl", resume=True, progress=update)
    summary = jsweep.summarize(rows)
    expected = {_row_key(k): v for k, v in config.get("expected", ())}
    for s in summary:
        want = expected.get(cell_key(s["scheme"], s["activation"]))
        s["expected"] = want
        s["reproduced"] = None if want is None else s["verdict"] == want
    columns = ["scheme", "activation", "depth", "width", "num_seeds", "verdict", "expected",
               "reproduced", "log_forward", "theory_forward", "log_backward", "theory_backward",
               "tolerance", "agrees_with_theory"]
    write_csv(workdir / "summary.csv", summary, columns)
    plots = _plots(rows, workdir / "plots")
    checked = [s for s in summary if s["expected"] is not None]
    ok = sum(bool(s["reproduced"]) for s in checked)
    agree = [s for s in summary if s["agrees_with_theory"] is not None]
    report = [
        f"# {config.get('title', 'Signal propagation')}",
        "",
        str(config.get("description", "")).strip(),
        "",
        f"Grid: depths {list(kw['depths'])}, widths {list(kw['widths'])}, {config.seeds} seeds, "
        f"batch {config.batch}, precision {kw['precision']}.",
        "",
        f"**Reproduced: {ok} of {len(checked)} expected verdicts.** "
        f"Agreement with mean-field theory: {sum(bool(s['agrees_with_theory']) for s in agree)} "
        f"of {len(agree)} cells with a prediction.",
        "",
        "log_forward = log(E[h_L^2] / E[h_1^2]); log_backward = log(E[g_1^2] / E[g_L^2]); a scheme "
        "is preserved when both lie within the finite-width tolerance of 0 (or of the predicted "
        "transient).",
        "",
        markdown_table(summary, columns),
        "",
        *[f"![{p.stem}](plots/{p.name})" for p in plots],
        "",
    ]
    write_text(workdir / "report.md", "\n".join(report))
    return {"rows": len(rows), "cells": len(summary), "reproduced": f"{ok}/{len(checked)}",
            "report": str(workdir / "report.md")}


def _plots(rows: Sequence[Mapping[str, Any]], folder: pathlib.Path) -> list[pathlib.Path]:
    plt = pyplot()
    if plt is None:
        return []
    results = jsweep.results_from_rows(rows)
    out = []
    for stat, title in (("forward", "E[h_l^2] (forward)"), ("backward", "E[g_l^2] (backward)")):
        groups = sorted({(k[2], k[3]) for k in results})
        fig, axes = plt.subplots(1, len(groups), figsize=(6 * len(groups), 4), squeeze=False)
        for ax, (depth, width) in zip(axes[0], groups, strict=True):
            for (scheme, act, d, w), res in sorted(results.items()):
                if (d, w) != (depth, width):
                    continue
                y = np.nanmean(np.where(np.isfinite(res.stat(stat)), res.stat(stat), np.nan), 0)
                layers = np.arange(1, d + 1)
                (line,) = ax.semilogy(layers, y, label=f"{scheme} + {act}")
                pred = res.prediction()
                if pred is not None:
                    p = pred[0] if stat == "forward" else pred[1]
                    if np.all(np.isfinite(p)) and p.size == d:
                        ax.semilogy(layers, p, "--", color=line.get_color(), alpha=0.7)
            ax.set_title(f"{title}, depth {depth}, width {width}")
            ax.set_xlabel("layer")
            ax.grid(True, which="both", alpha=0.3)
        axes[0][0].legend(fontsize=7)
        out.append(save_figure(fig, folder / f"{stat}.png"))
        plt.close(fig)
    return out

"""Dynamical isometry: the spectrum of the input-output Jacobian, Gaussian vs orthogonal weights.

Saxe et al. 2014: in deep *linear* networks, orthogonal weights make J J^T the identity at every
depth (all singular values 1), while Gaussian weights of the same variance spread the spectrum,
its variance growing linearly with depth. Pennington, Schoenholz & Ganguli 2017: for tanh at the
edge of chaos with a small q*, orthogonal weights keep the spectrum concentrated (variance
L (mu_2 / mu_1^2 - 1), small), Gaussian weights do not (L (mu_2 / mu_1^2)); ReLU can never be
isometric. The measured eigenvalues of J J^T (J = d phi(h^L) / dx at inputs of second moment
input_q = q*, so the network starts at its fixed point) are held against
`jwinit.theory.jacobian_spectrum`.

Config fields: cases (('linear', 0.0), ('tanh', 1e-3), ...) as (activation, sigma_b2) -- the weight
variance is the critical one, theory.critical_sigma_w2(activation, sigma_b2); depths; width;
seeds; seed. Writes results.jsonl (the singular values per cell, appended as each cell
finishes: a rerun resumes), summary.csv, checks.json, report.md, plots/spectra.png.
"""

from __future__ import annotations

import math
import pathlib
from typing import Any

import numpy as np

import jwinit
from experiments.common import (
    config_activation,
    config_int,
    config_ints,
    progress_bar,
    pyplot,
    require,
    write_checks_report,
)
from experiments.io import save_figure, write_csv, write_json
from jwinit import theory
from jwinit._cells import ResumableCells
from jwinit._checks import check_real

__all__ = ["run", "validate", "weights_for"]

WEIGHTS = ("gaussian", "orthogonal")


def weights_for(kind: str, sigma_w2: float) -> Any:
    """W with Var = sigma_w2 / fan_in: Gaussian, or scaled orthogonal (W W^T = sigma_w2 I)."""
    if kind == "gaussian":
        return jwinit.variance_scaling(sigma_w2, "fan_in", "normal")
    if kind == "orthogonal":
        return jwinit.orthogonal(scale=math.sqrt(sigma_w2))
    raise ValueError(f"`weights` must be one of {WEIGHTS}, got {kind!r}.")


def validate(config: Any) -> None:
    """Check every field before anything is computed or written (errors name the field)."""
    require(config, "cases", "depths", "width", "seeds", "seed")
    if not isinstance(config.cases, tuple | list) or not config.cases:
        raise TypeError(f"`config.cases` must be a non-empty tuple of (activation, sigma_b2), got "
                        f"{config.cases!r}.")
    for case in config.cases:
        if not (isinstance(case, tuple | list) and len(case) == 2):
            raise TypeError(f"`config.cases` entries must be (activation, sigma_b2), got {case!r}.")
        config_activation(case[0], "cases")
        check_real(case[1], "config.cases sigma_b2", low=0.0)
    config_ints(config, "depths")
    config_int(config, "width")
    config_int(config, "seeds")
    config_int(config, "seed", minimum=0)


def run(config: Any, workdir: str | pathlib.Path) -> dict[str, Any]:
    workdir = pathlib.Path(workdir)
    summary, spectra = [], {}
    done = ResumableCells(workdir / "results.jsonl",
                          ("activation", "sigma_b2", "weights", "depth", "width", "seeds", "seed"))
    total = len(config.cases) * len(WEIGHTS) * len(config.depths)
    with progress_bar("Jacobian spectra") as update:
        update(0, total)
        for act, sb2 in config.cases:
            sb2 = float(sb2)
            sw2 = float(theory.critical_sigma_w2(act, sb2))
            q_star = float(theory.fixed_point(act, sw2, sb2)) if sb2 > 0 else 1.0
            # x plays the role of phi(h^0): E[x^2] = (q* - sigma_b2) / sigma_w2 puts h^1 at q*.
            input_q = (q_star - sb2) / sw2 if sb2 > 0 else 1.0
            bias = jwinit.normal(math.sqrt(sb2)) if sb2 > 0 else None
            for kind in WEIGHTS:
                for depth in config.depths:
                    cell = {"activation": act, "sigma_b2": sb2, "weights": kind,
                            "depth": int(depth), "width": int(config.width),
                            "seeds": int(config.seeds), "seed": int(config.seed)}
                    if cell not in done:  # a rerun resumes: finished cells are read back
                        s = jwinit.jacobian_singular_values(
                            config.seed, weights_for(kind, sw2), act, depth=depth,
                            width=config.width, num_seeds=config.seeds, bias_init=bias,
                            output="activation", input_q=input_q,
                        )
                        done.add([{**cell,
                                   "singular_values": np.asarray(s, np.float64).tolist()}])
                    s = np.asarray(done.get(cell)["singular_values"], np.float64)
                    lam = np.asarray(s, np.float64) ** 2
                    th = theory.jacobian_spectrum(act, sw2, sb2, depth, weights=kind)
                    spectra[f"{act}/{kind}/{depth}"] = s
                    summary.append({
                        "activation": act, "sigma_w2": sw2, "sigma_b2": sb2, "q_star": q_star,
                        "weights": kind, "depth": depth, "mean": float(lam.mean()),
                        "theory_mean": float(th.mean), "variance": float(lam.var()),
                        "theory_variance": float(th.variance),
                        "max_abs_sv_minus_1": float(np.max(np.abs(np.asarray(s) - 1))),
                    })
                    update(len(summary), total)
    checks = _checks(summary)
    columns = list(summary[0])
    write_csv(workdir / "summary.csv", summary, columns)
    write_json(workdir / "checks.json", checks)
    plots = _plot(spectra, config, workdir / "plots")
    reproduced = write_checks_report(
        workdir, title="Dynamical isometry: Gaussian vs orthogonal weights",
        intro=f"Width {config.width}, {config.seeds} seeds, depths {list(config.depths)}; weight "
              "variance at the edge of chaos; inputs at q*.",
        checks=checks, summary=summary, columns=columns, plots=plots)
    return {"cases": len(summary), "reproduced": reproduced,
            "report": str(workdir / "report.md")}


def _checks(summary: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def rows(act, kind):
        return sorted((r for r in summary if r["activation"] == act and r["weights"] == kind),
                      key=lambda r: r["depth"])

    checks = []
    lin_o = rows("linear", "orthogonal")
    if lin_o:
        worst = max(r["max_abs_sv_minus_1"] for r in lin_o)
        checks.append({"claim": "linear + orthogonal: every singular value is 1 at every depth "
                                "(Saxe et al. 2014)", "detail": f"max |s - 1| = {worst:.2e}",
                       "passed": worst < 1e-3})
    lin_g = rows("linear", "gaussian")
    if len(lin_g) >= 2:
        a, b = lin_g[0], lin_g[-1]
        growth = b["variance"] / a["variance"]
        want = b["depth"] / a["depth"]
        checks.append({"claim": "linear + Gaussian: the spectral variance grows linearly with "
                                "depth", "detail": f"x{growth:.2f} for depth x{want:g}",
                       "passed": 0.6 * want <= growth <= 1.6 * want})
    for act in sorted({r["activation"] for r in summary} - {"linear"}):
        g, o = rows(act, "gaussian"), rows(act, "orthogonal")
        if g and o:
            ratio = g[-1]["variance"] / max(o[-1]["variance"], 1e-300)
            checks.append({
                "claim": f"{act} at criticality: orthogonal weights give a narrower Jacobian "
                         "spectrum than Gaussian (Pennington et al. 2017)",
                "detail": f"variance ratio Gaussian/orthogonal {ratio:.3g} at depth "
                          f"{g[-1]['depth']}",
                "passed": ratio > 2.0,
            })
            rel = [abs(r["mean"] / r["theory_mean"] - 1) for r in g + o]
            checks.append({
                "claim": f"{act}: mean eigenvalue of J J^T matches chi1^L (mean-field)",
                "detail": f"max relative error {max(rel):.3f}",
                "passed": max(rel) < 0.25,
            })
    return checks


def _plot(spectra: dict[str, np.ndarray], config: Any, folder: pathlib.Path) -> list[pathlib.Path]:
    plt = pyplot()
    if plt is None:
        return []
    acts = sorted({k.split("/")[0] for k in spectra})
    depth = max(config.depths)
    fig, axes = plt.subplots(1, len(acts), figsize=(5.5 * len(acts), 4), squeeze=False)
    for ax, act in zip(axes[0], acts, strict=True):
        for kind in WEIGHTS:
            s = np.asarray(spectra[f"{act}/{kind}/{depth}"]).ravel()
            ax.hist(np.log10(np.maximum(s, 1e-12)), bins=60, alpha=0.6, label=kind)
        ax.set_title(f"{act}, depth {depth}: log10 singular values of J")
        ax.legend()
    out = [save_figure(fig, folder / "spectra.png")]
    plt.close(fig)
    return out

"""Dynamical isometry: the spectrum of the input-output Jacobian, Gaussian vs orthogonal weights.

Saxe et al. 2014: in deep *linear* networks, orthogonal weights make J J^T the identity at every
depth (all singular values 1), while Gaussian weights of the same variance spread the spectrum,
its variance growing linearly with depth. Pennington, Schoenholz & Ganguli 2017: at the edge of
chaos the mean eigenvalue of J J^T is chi1^L = 1 and free probability gives its variance,
L m1^2 (mu_2 / mu_1^2 - 1 - s_1) with s_1 = -1 for Gaussian and 0 for orthogonal weights: for
tanh with a small q* orthogonal weights keep the spectrum concentrated, Gaussian weights do not;
ReLU can never be isometric (variance L even with orthogonal weights). The eigenvalues of J J^T
(J = d phi(h^L) / dx at inputs of second moment input_q = q*, so the network starts at its fixed
point) are measured in float64 (a Gaussian product's singular values spread over 1e7 and more,
beyond float32's resolution) and held against `jwinit.theory.jacobian_spectrum`.

Per (activation, weights, depth) cell the per-network mean and variance of the eigenvalues are
averaged over the seeds; their standard errors come from the seeds. With few seeds and skewed
per-network moments (Gaussian products: a few seeds dominate) the standard error is itself
uncertain, so a moment agrees with the theory when |measured - theory| / SE stays below the
Student-t quantile with seeds - 1 degrees of freedom at a Bonferroni level over all the moments
tested: were the theory exact, the chance that any cell fails is `family_error`.

Config fields: cases (('linear', 0.0), ('tanh', 1e-3), ...) as (activation, sigma_b2) -- the
weight variance is the critical one, theory.critical_sigma_w2(activation, sigma_b2); depths;
width; seeds; seed; family_error. Writes results.jsonl (the singular values per cell, appended as
each cell finishes: a rerun resumes), summary.csv, checks.json, report.md, plots/spectra.png.
"""

from __future__ import annotations

import math
import pathlib
from typing import Any

import numpy as np

import jwinit
from jwinit import theory
from jwinit._checks import check_real
from jwinit.experiments.common import (
    agreement_threshold,
    check,
    config_activation,
    config_int,
    config_ints,
    config_real,
    progress_bar,
    pyplot,
    require,
    write_report,
)
from jwinit.experiments.io import save_figure, write_csv, write_json
from jwinit.results import ResumableCells

__all__ = ["DEFAULTS", "run", "validate", "weights_for"]

#: The fields of an isometry experiment and their defaults.
DEFAULTS = {
    # (activation, sigma_b2); sigma_w2 is the critical one. tanh with sigma_b2 = 1e-3 has
    # sigma_w2 = 1.189 and q* = 0.107 (small q*: the near-linear regime of Pennington et al.);
    # ReLU at He's sigma_w2 = 2.
    "cases": (("linear", 0.0), ("tanh", 1e-3), ("relu", 0.0)),
    "depths": (4, 16, 64),
    "width": 512,
    # 12 seeds: the Gaussian-vs-orthogonal rank test has p = 1 / C(24, 12) = 3.7e-7 by chance,
    # and the per-cell agreement threshold (Student-t, 11 degrees of freedom, Bonferroni over the
    # 36 moments, 1% family-wise) is 5.2 standard errors.
    "seeds": 12, "seed": 0, "family_error": 0.01,
}

WEIGHTS = ("gaussian", "orthogonal")
EPS64 = float(np.finfo(np.float64).eps)


def weights_for(kind: str, sigma_w2: float) -> Any:
    """W with Var = sigma_w2 / fan_in: Gaussian, or scaled orthogonal (W W^T = sigma_w2 I)."""
    if kind == "gaussian":
        return jwinit.variance_scaling(sigma_w2, "fan_in", "normal")
    if kind == "orthogonal":
        return jwinit.orthogonal(scale=math.sqrt(sigma_w2))
    raise ValueError(f"`weights` must be one of {WEIGHTS}, got {kind!r}.")


def validate(config: Any) -> None:
    """Check every field before anything is computed or written (errors name the field)."""
    require(config, "cases", "depths", "width", "seeds", "seed", "family_error")
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
    config_int(config, "seeds", minimum=2)
    config_int(config, "seed", minimum=0)
    config_real(config, "family_error", low=0.0, high=0.5, low_open=True)


def _moments(s: np.ndarray, floor: float) -> dict[str, Any]:
    """Seed means and standard errors of the per-network mean and variance of s^2 (the errors
    floored at `floor`, the float64 rounding of the spectrum), with the per-seed variances."""
    lam = s**2
    m1, var = lam.mean(axis=1), lam.var(axis=1)
    k = math.sqrt(lam.shape[0])
    return {"mean": float(m1.mean()), "mean_se": max(float(m1.std(ddof=1) / k), floor),
            "variance": float(var.mean()), "variance_se": max(float(var.std(ddof=1) / k), floor),
            "seed_variances": var}


def _rounding(depth: int, width: int) -> float:
    """Float64 rounding bound of the singular values of a product of `depth` (width x width)
    matrices: each matmul rounds by at most sqrt(n) eps relative (pairwise sums of n terms), and
    the SVD adds n eps. Four times that."""
    return 4 * (depth * math.sqrt(width) + width) * EPS64


def run(config: Any, workdir: str | pathlib.Path) -> dict[str, Any]:
    workdir = pathlib.Path(workdir)
    tests = 2 * len(config.cases) * len(WEIGHTS) * len(config.depths)
    k = agreement_threshold(config.seeds, tests, config.family_error)
    summary, spectra, seed_variances = [], {}, {}
    done = ResumableCells(workdir / "results.jsonl",
                          ("activation", "sigma_b2", "weights", "depth", "width", "seeds", "seed"))
    total = len(config.cases) * len(WEIGHTS) * len(config.depths)
    with progress_bar("Jacobian spectra") as update:
        finished = len(done)  # the workdir holds this config's cells only (see io.py)
        update(finished, total)
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
                            width=config.width, seeds=config.seeds, bias_init=bias,
                            output="activation", input_q=input_q, dtype="float64",
                        )
                        done.add([{**cell,
                                   "singular_values": np.asarray(s, np.float64).tolist()}])
                        finished += 1
                        update(finished, total)
                    s = np.asarray(done.get(cell)["singular_values"], np.float64)
                    th = theory.jacobian_spectrum(act, sw2, sb2, depth, weights=kind)
                    spectra[(act, kind, depth)] = s
                    mom = _moments(s, _rounding(depth, config.width))
                    seed_variances[(act, kind, depth)] = mom.pop("seed_variances")
                    th_mean, th_var = float(th.mean), float(th.variance)
                    z_mean = abs(mom["mean"] - th_mean) / max(mom["mean_se"], 1e-300)
                    z_var = abs(mom["variance"] - th_var) / max(mom["variance_se"], 1e-300)
                    summary.append({
                        "activation": act, "sigma_w2": sw2, "sigma_b2": sb2, "q_star": q_star,
                        "weights": kind, "depth": depth, **mom, "theory_mean": th_mean,
                        "theory_variance": th_var, "z_mean": z_mean, "z_variance": z_var,
                        "agrees": bool(z_mean <= k and z_var <= k),
                        "max_abs_sv_minus_1": float(np.max(np.abs(s - 1))),
                    })
    checks = _checks(summary, seed_variances, config, k)
    columns = list(summary[0])
    write_csv(workdir / "summary.csv", summary, columns)
    write_json(workdir / "checks.json", checks)
    plots = _plot(spectra, summary, config, workdir / "plots")
    reproduced = write_report(
        workdir, title="Dynamical isometry: Gaussian vs orthogonal weights",
        paper="Pennington, Schoenholz & Ganguli 2017, \"Resurrecting the sigmoid in deep "
              "learning through dynamical isometry: theory and practice\" (Sec. 2-3, Fig. 1); "
              "Saxe, McClelland & Ganguli 2014 (deep linear networks).",
        setup=f"Width {config.width}, {config.seeds} seeds, depths {list(config.depths)}; weight "
              "variance at the edge of chaos (critical sigma_w2 of each (activation, sigma_b2)); "
              "inputs at q*; Jacobians and their singular values in float64. Moments of the "
              "eigenvalues of J J^T are compared with free probability "
              f"(`jwinit.theory.jacobian_spectrum`) within {k:.2f} standard errors from the "
              f"seeds (the Student-t quantile for {config.seeds} seeds, Bonferroni over the "
              f"{tests} moments, family-wise false alarm {config.family_error:g}).",
        not_covered="Pennington et al.'s training-speed result (isometric tanh networks train "
                    "faster, Sec. 4) is a statement about training and is not run here.",
        checks=checks, tables=[("All cells", summary, columns)], plots=plots)
    return {"cases": len(summary), "reproduced": reproduced,
            "report": str(workdir / "report.md")}


def _checks(summary: list[dict[str, Any]], seed_variances: dict[tuple[str, str, int], np.ndarray],
            config: Any, k: float) -> list[dict[str, Any]]:
    def rows(act, kind):
        return sorted((r for r in summary if r["activation"] == act and r["weights"] == kind),
                      key=lambda r: r["depth"])

    checks = []
    lin_o = rows("linear", "orthogonal")
    if lin_o:
        worst = max(r["max_abs_sv_minus_1"] for r in lin_o)
        bound = _rounding(max(config.depths), config.width)
        checks.append(check(
            "linear + orthogonal: every singular value of the Jacobian is exactly 1, at every "
            "depth", "Saxe et al. 2014, Sec. 3; Pennington et al. Sec. 2",
            f"max |s - 1| = {worst:.2e} (float64 rounding bound {bound:.1e})", worst <= bound))
    cells_ok = [r for r in summary if r["agrees"]]
    worst = max(summary, key=lambda r: max(r["z_mean"], r["z_variance"]))
    checks.append(check(
        "the mean eigenvalue of J J^T is chi1^L and its variance follows free probability, for "
        "both weight ensembles", "Pennington et al. Sec. 3, eqs. 13-17",
        f"{len(cells_ok)} of {len(summary)} cells within {k:.2f} standard errors (worst: "
        f"{worst['activation']}, {worst['weights']}, depth {worst['depth']}, "
        f"{max(worst['z_mean'], worst['z_variance']):.2f} s.e.)",
        len(cells_ok) == len(summary)))
    for act in sorted({r["activation"] for r in summary}):
        g, o = rows(act, "gaussian"), rows(act, "orthogonal")
        if not (g and o) or act == "linear":
            continue
        deep_g, deep_o = g[-1], o[-1]
        # Gaussian spectra are heavy-tailed (their seed standard errors are large); the claim is
        # tested by ranks: every Gaussian network's spectrum is wider than every orthogonal one's.
        # Were the two ensembles alike, that would happen with probability 1 / C(2S, S).
        vg = seed_variances[(act, "gaussian", deep_g["depth"])]
        vo = seed_variances[(act, "orthogonal", deep_o["depth"])]
        separated = bool(vg.min() > vo.max())
        p_value = 1 / math.comb(len(vg) + len(vo), len(vg))
        if act == "relu":
            checks.append(check(
                "ReLU is never isometric: even with orthogonal weights the spectral variance "
                "grows like the depth (L), Gaussian 2L", "Pennington et al. Sec. 3.3",
                f"orthogonal variance {deep_o['variance']:.3g} +- {deep_o['variance_se']:.2g} at "
                f"depth {deep_o['depth']} (theory {deep_o['theory_variance']:.3g})",
                deep_o["agrees"] and deep_o["theory_variance"] >= 0.5 * deep_o["depth"]))
            continue
        checks.append(check(
            f"{act} at criticality: orthogonal weights keep the Jacobian spectrum concentrated, "
            "Gaussian weights spread it", "Pennington et al. Sec. 3, Fig. 1",
            f"depth {deep_g['depth']}: variance {deep_g['variance']:.3g} (Gaussian) vs "
            f"{deep_o['variance']:.3g} (orthogonal), theory {deep_g['theory_variance']:.3g} vs "
            f"{deep_o['theory_variance']:.3g}; each of {len(vg)} Gaussian networks wider than "
            f"each orthogonal one: {separated} (p = {p_value:.1e} by chance)",
            separated and deep_o["agrees"] and deep_g["agrees"]))
    return checks


def _plot(spectra: dict[tuple[str, str, int], np.ndarray], summary: list[dict[str, Any]],
          config: Any, folder: pathlib.Path) -> list[pathlib.Path]:
    plt = pyplot()
    if plt is None:
        return []
    acts = list(dict.fromkeys(a for a, _, _ in spectra))
    depth = max(config.depths)
    fig, axes = plt.subplots(1, len(acts), figsize=(5.2 * len(acts), 4.2), squeeze=False,
                             constrained_layout=True)
    colours = {"gaussian": "tab:red", "orthogonal": "tab:blue"}
    for ax, act in zip(axes[0], acts, strict=True):
        values = {kind: spectra[(act, kind, depth)].ravel() for kind in WEIGHTS}
        # Below the largest singular value times n eps64 a singular value is rounding, not
        # physics: those are counted, not drawn.
        floor = max(v.max() for v in values.values()) * config.width * EPS64
        logs = {kind: np.log10(v[v > floor]) for kind, v in values.items()}
        lo = min(v.min() for v in logs.values() if v.size)
        hi = max(v.max() for v in logs.values() if v.size)
        bins = np.linspace(lo - 0.05, hi + 0.05, 80)  # shared bins: a spike at 1 stays a spike
        for kind in WEIGHTS:
            row = next(r for r in summary if r["activation"] == act and r["weights"] == kind
                       and r["depth"] == depth)
            hidden = 1 - logs[kind].size / values[kind].size
            note = f", {100 * hidden:.0f}% below float64 resolution" if hidden else ""
            ax.hist(logs[kind], bins=bins, histtype="stepfilled", alpha=0.35,
                    weights=np.full(logs[kind].size, 1 / values[kind].size),
                    color=colours[kind], label=f"{kind}: var(s^2) = {row['variance']:.3g}{note}")
            ax.hist(logs[kind], bins=bins, histtype="step", color=colours[kind],
                    weights=np.full(logs[kind].size, 1 / values[kind].size))
            ax.plot([], [], " ", label=f"  theory var(s^2) = {row['theory_variance']:.3g}")
        th_mean = next(r["theory_mean"] for r in summary if r["activation"] == act)
        ax.axvline(0.5 * math.log10(th_mean), color="k", ls="--", lw=1,
                   label="theory: mean s^2 = chi1^L = 1")
        ax.set_xlabel("log10 singular value s of the input-output Jacobian")
        ax.set_ylabel("fraction of singular values per bin (log scale)")
        ax.set_yscale("log")
        ax.set_title(f"{act} at criticality, depth {depth}, width {config.width}")
        ax.legend(fontsize=7, loc="upper left")
    out = [save_figure(fig, folder / "spectra.png")]
    plt.close(fig)
    return out

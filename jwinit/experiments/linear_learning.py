"""Learning dynamics of deep linear networks: time to learn vs depth, orthogonal vs Gaussian init.

Saxe, McClelland & Ganguli 2014, "Exact solutions to the nonlinear dynamics of learning in deep
linear neural networks", Sec. 3-4: a deep linear network ``P = W_L ... W_1`` trained by gradient
descent on whitened inputs learns, with random *orthogonal* weights (P is an isometry, every
layer's Jacobian is norm-preserving), in a time that stays finite as depth grows -- the optimal
learning rate falls like 1/L and the number of steps saturates -- while with *scaled random
Gaussian* weights of the same variance (Var(W) = 1 / fan_in: norm-preserving only on average) the
product's spectrum spreads with depth, some directions start exponentially small, and learning
slows down sharply or stalls.

The task: a teacher map ``M`` (N x N, entries N(0, 1/N)), loss with whitened inputs
``E_x 1/2 |(M - P) x|^2 / N = |M - P|_F^2 / (2 N)``, full-batch gradient descent from the scheme's
initialization. For each (scheme, depth, seed) the learning rates ``lr = c / depth`` for every
``c`` in the grid `lr_times_depth` (the paper's optimal rate falls like 1 / depth) run in lock step
until one reaches a relative error ``|M - P|_F^2 / |M|_F^2 <= criterion`` (or `max_steps`); the
*time to criterion* is that number of steps: the learning rate is optimized per depth, as in the
paper.

Config fields: experiment 'linear_learning'; schemes (registry scheme strings, e.g.
'orthogonal' and "variance_scaling(scale=1.0, mode='fan_in', distribution='normal')"); depths
(number of weight matrices); width; lr_times_depth (a grid); criterion; max_steps; seeds; seed;
orthogonal_scheme and gaussian_scheme (which of `schemes` the checks compare) and the checks'
bounds saturation_growth, gaussian_slowdown, lr_spread.
Writes results.jsonl (one line per (scheme, depth), appended as each finishes: a rerun resumes),
summary.csv, checks.json, report.md and plots/time_vs_depth.png, plots/learning_curves.png.
"""

from __future__ import annotations

import functools
import math
import pathlib
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jwinit import registry
from jwinit.experiments.common import (
    check,
    config_int,
    config_ints,
    config_real,
    config_reals,
    parse_scheme,
    progress_bar,
    pyplot,
    require,
    write_report,
)
from jwinit.experiments.io import save_figure, write_csv, write_json
from jwinit.results import ResumableCells

__all__ = ["DEFAULTS", "run", "time_to_criterion", "teacher"]

#: The fields of a linear-learning experiment and their defaults (Saxe et al. 2013's comparison).
DEFAULTS = {
    "schemes": ("orthogonal", "variance_scaling(scale=1.0, mode='fan_in', distribution='normal')"),
    "orthogonal_scheme": "orthogonal",
    "gaussian_scheme": "variance_scaling(scale=1.0, mode='fan_in', distribution='normal')",
    "depths": (2, 4, 8, 16, 32, 64), "width": 32,
    # learning rate = c / depth, c from 1 to 10^1.75 = 56 in 15 steps of x1.33
    "lr_times_depth": tuple(float(x) for x in np.logspace(0.0, 1.75, 15)),
    "criterion": 1e-2,  # relative error |M - P|^2 / |M|^2
    "max_steps": 1000, "seeds": 4, "seed": 0,
    # The checks' bounds default to the learning-rate grid's resolution r = 10^(1.75/14) = 1.33
    # (steps(L) / steps(L/2) <= r at the deep end: `saturation_growth`; optimal lr x depth within
    # r^2: `lr_spread`). Gaussian vs orthogonal at the largest depth: at least
    # `gaussian_slowdown` times slower, or never reaching the criterion.
    "saturation_growth": None, "lr_spread": None, "gaussian_slowdown": 3.0,
}


def teacher(key: jax.Array, width: int) -> jax.Array:
    """The target map M, entries N(0, 1/width) (float32)."""
    return jax.random.normal(key, (width, width), jnp.float32) / math.sqrt(width)


def _product(ws: jax.Array) -> jax.Array:
    """W_L ... W_1 for a (L, N, N) stack (layer 0 acts first), multiplied as a balanced tree.

    Each level is one batched matmul of neighbouring pairs, so the forward and backward passes
    are log2(L) sequential steps rather than L.
    """
    while ws.shape[0] > 1:
        odd = ws[-1:] if ws.shape[0] % 2 else None
        even = ws[: ws.shape[0] - ws.shape[0] % 2]
        ws = jnp.matmul(even[1::2], even[0::2], precision=lax.Precision.HIGHEST)
        if odd is not None:
            ws = jnp.concatenate([ws, odd], axis=0)
    return ws[0]


@functools.partial(jax.jit, static_argnames=("max_steps",))
def _train(ws: jax.Array, m: jax.Array, lrs: jax.Array, criterion: jax.Array, max_steps: int
           ) -> tuple[jax.Array, jax.Array]:
    """Gradient descent from `ws`, one run per learning rate in `lrs`, in lock step.

    The runs stop together at the first step where any of them reaches `criterion` (no other
    learning rate can then be faster), or after `max_steps`. A run that diverges (non-finite, or a
    relative error above 1e6) is frozen.

    Returns (steps to reach `criterion` per learning rate, inf where it was not reached; the
    relative-error curve per learning rate, (len(lrs), max_steps + 1), NaN after the stop).
    """
    n = m.shape[0]
    m_norm2 = jnp.sum(m * m)

    def rel_error(w: jax.Array) -> jax.Array:
        d = m - _product(w)
        return jnp.sum(d * d) / m_norm2

    def loss(w: jax.Array) -> jax.Array:
        return rel_error(w) * m_norm2 / (2 * n)

    def alive(e: jax.Array) -> jax.Array:
        return jnp.isfinite(e) & (e < 1e6)

    grads = jax.vmap(jax.grad(loss))
    errors = jax.vmap(rel_error)
    w0 = jnp.broadcast_to(ws, (lrs.shape[0], *ws.shape))
    e0 = errors(w0)
    curve = jnp.full((lrs.shape[0], max_steps + 1), jnp.nan, jnp.float32).at[:, 0].set(e0)

    def cond(state):
        _, t, e, _ = state
        return (t < max_steps) & ~jnp.any(alive(e) & (e <= criterion)) & jnp.any(alive(e))

    def body(state):
        w, t, e, curve = state
        live = alive(e)
        step = lrs[:, None, None, None] * grads(w)
        w = jnp.where(live[:, None, None, None], w - step, w)
        e = jnp.where(live, errors(w), e)
        return w, t + 1, e, curve.at[:, t + 1].set(jnp.where(live, e, jnp.nan))

    _, t, e, curve = lax.while_loop(cond, body, (w0, jnp.asarray(0), e0, curve))
    reached = alive(e) & (e <= criterion)
    return jnp.where(reached, t.astype(jnp.float32), jnp.inf), curve


def _or(value: Any, default: float) -> Any:
    return default if value is None else value


def time_to_criterion(kernel_init: Any, depth: int, width: int, learning_rates: Sequence[float],
                      *, criterion: float, max_steps: int, key: jax.Array
                      ) -> dict[str, Any]:
    """Train one deep linear network (initialized by `kernel_init`) at every learning rate.

    Returns a dict: 'steps' (per learning rate; inf: not reached), 'best_steps', 'best_lr'
    (None when nothing reached the criterion), 'initial_error', 'final_error' (the smallest
    relative error at the stop) and 'curve' (relative error per step of the best run).
    """
    k_m, k_w = jax.random.split(key)
    m = teacher(k_m, width)
    ws = jnp.stack([kernel_init(jax.random.fold_in(k_w, layer), (width, width), jnp.float32)
                    for layer in range(depth)])
    lrs = jnp.asarray(learning_rates, jnp.float32)
    steps, curves = _train(ws, m, lrs, jnp.asarray(criterion, jnp.float32), int(max_steps))
    steps, curves = np.asarray(steps, np.float64), np.asarray(curves, np.float64)
    # each run's error where it stopped (the curve is NaN after the stop)
    last = np.array([c[np.isfinite(c)][-1] if np.isfinite(c).any() else np.inf for c in curves])
    # the fastest run, or when none reached the criterion the one that got closest
    best = int(np.argmin(steps)) if np.isfinite(steps).any() else int(np.argmin(last))
    return {"steps": steps, "best_steps": float(steps[best]),
            "best_lr": float(learning_rates[best]) if np.isfinite(steps[best]) else None,
            "initial_error": float(curves[0, 0]), "final_error": float(last.min()),
            "curve": curves[best]}


def validate(config: Any) -> tuple[list[tuple[str, Any]], list[int], list[float]]:
    """Check every field (errors name it); returns (schemes, depths, learning-rate grid)."""
    require(config, "schemes", "depths", "width", "lr_times_depth", "criterion", "max_steps",
            "seeds", "seed")
    schemes = [(str(s), parse_scheme(s)) for s in config.schemes]
    for text, spec in schemes:
        if isinstance(spec, tuple) and not isinstance(spec[0], str):
            raise ValueError(f"`config.schemes` must name initializers (e.g. 'orthogonal'); "
                             f"{text!r} is a mean-field pair, which has no weights to train.")
    depths = list(config_ints(config, "depths"))
    lrs = list(config_reals(config, "lr_times_depth", low=0.0, low_open=True))
    config_real(config, "criterion", low=0.0, high=1.0, low_open=True, high_open=True)
    for name in ("width", "max_steps", "seeds"):
        config_int(config, name)
    config_int(config, "seed", minimum=0)
    for name in ("saturation_growth", "gaussian_slowdown", "lr_spread"):
        if config.get(name) is not None:  # None: the grid resolution (see `run`)
            config_real(config, name, low=1.0)
    return schemes, depths, lrs


def _build(spec: Any) -> Any:
    if isinstance(spec, tuple):
        name, kwargs = spec
        return registry.make(name, **kwargs)
    return registry.make(spec)


def run(config: Any, workdir: str | pathlib.Path) -> dict[str, Any]:
    workdir = pathlib.Path(workdir)
    schemes, depths, lrs = validate(config)
    cells = ResumableCells(workdir / "results.jsonl",
                           ("scheme", "depth", "width", "seeds", "seed", "criterion", "max_steps",
                            "lr_times_depth"))
    fixed = {"width": int(config.width), "seeds": int(config.seeds), "seed": int(config.seed),
             "criterion": float(config.criterion), "max_steps": int(config.max_steps),
             "lr_times_depth": lrs}
    done: dict[tuple[str, int], dict[str, Any]] = {}
    base = jax.random.key(int(config.seed))
    total = len(schemes) * len(depths)
    with progress_bar("deep linear training") as update:
        update(len(cells), total)  # the workdir holds this config's cells only (see io.py)
        for label, spec in schemes:
            init = _build(spec)
            for depth in depths:
                cell = {"scheme": label, "depth": depth, **fixed}
                if cell in cells:
                    done[(label, depth)] = cells.get(cell)
                    continue
                per_seed = [
                    time_to_criterion(init, depth, int(config.width), [c / depth for c in lrs],
                                      criterion=float(config.criterion),
                                      max_steps=int(config.max_steps),
                                      key=jax.random.fold_in(base, s))
                    for s in range(int(config.seeds))
                ]
                row = {
                    **cell,
                    "steps": [r["best_steps"] for r in per_seed],
                    "best_lr": [r["best_lr"] for r in per_seed],
                    "initial_error": [r["initial_error"] for r in per_seed],
                    "final_error": [r["final_error"] for r in per_seed],
                    "curve": [float(v) if np.isfinite(v) else None
                              for v in per_seed[0]["curve"]],
                }
                cells.add([row])
                done[(label, depth)] = row
                update(len(cells), total)

    summary = []
    for label, _ in schemes:
        for depth in depths:
            row = done[(label, depth)]
            steps = np.asarray(row["steps"], np.float64)
            lr = [x * depth for x in row["best_lr"] if x is not None]
            summary.append({
                "scheme": label, "depth": depth,
                "median_steps": float(np.median(steps)),
                "reached": f"{int(np.isfinite(steps).sum())}/{len(steps)}",
                "median_best_lr_x_depth": float(np.median(lr)) if lr else None,
                "median_initial_error": float(np.median(row["initial_error"])),
                "median_final_error": float(np.median(row["final_error"])),
            })
    checks = _checks(summary, [s for s, _ in schemes], config, lrs)
    columns = list(summary[0])
    write_csv(workdir / "summary.csv", summary, columns)
    write_json(workdir / "checks.json", checks)
    plots = _plot(done, [s for s, _ in schemes], depths, config, workdir / "plots")
    reproduced = write_report(
        workdir, title="Deep linear networks: time to learn vs depth",
        paper="Saxe, McClelland & Ganguli 2014 (arXiv 2013), \"Exact solutions to the nonlinear "
              "dynamics of learning in deep linear neural networks\" (Secs. 3-4).",
        setup=f"Width {config.width}, teacher entries N(0, 1/{config.width}), whitened inputs, "
              f"full-batch gradient descent; time = fewest steps over {len(lrs)} learning rates "
              f"(c / depth, c from {min(lrs):.3g} to {max(lrs):.3g}) to a relative error "
              f"{config.criterion:g} (at most {config.max_steps} steps; inf: not reached); "
              f"median over {config.seeds} seeds.",
        not_covered="The Jacobian side of the paper (every singular value of an orthogonal "
                    "linear chain is 1) is in configs/pennington2017.py.",
        checks=checks, tables=[("All cells", summary, columns)], plots=plots)
    return {"cells": len(summary), "reproduced": reproduced,
            "report": str(workdir / "report.md")}


def _checks(summary: list[dict[str, Any]], schemes: list[str], config: Any,
            grid: list[float]) -> list[dict[str, Any]]:
    """The paper's claims, for the configured 'orthogonal' and 'gaussian' schemes.

    Times are measured on a geometric grid of learning rates, so a time is only known to the
    grid's ratio r (the best rate may lie anywhere between two grid points): "saturates" means
    the deepest doubling costs at most `saturation_growth` (default: r), and the optimal rate
    "falls like 1 / depth" means lr x depth stays within `lr_spread` (default: r^2, one grid step
    of either end) while inside the grid.
    """
    def times(scheme: str) -> list[tuple[int, float]]:
        return sorted((r["depth"], r["median_steps"]) for r in summary if r["scheme"] == scheme)

    ratio = (max(grid) / min(grid)) ** (1 / max(len(grid) - 1, 1)) if len(grid) > 1 else 1.0
    orth = config.get("orthogonal_scheme")
    gauss = config.get("gaussian_scheme")
    checks = []
    if orth in schemes:
        t = times(orth)
        if not all(math.isfinite(v) for _, v in t):
            checks.append(check("orthogonal: every depth learns within max_steps",
                                "Saxe et al. Sec. 4", f"times {t}", False))
        elif len(t) >= 3:  # saturation needs at least three depths
            (d1, t1), (d2, t2) = t[-2], t[-1]
            growth = t2 / t1
            bound = float(_or(config.get("saturation_growth"), ratio))
            checks.append(check(
                "orthogonal: the time to learn saturates with depth (optimal learning rate; a "
                "doubling of the depth at the deep end costs nothing)",
                "Saxe et al. Sec. 4 (depth-independent learning times)",
                f"{t1:g} steps at depth {d1}, {t2:g} at depth {d2}: x{growth:.2f} for depth "
                f"x{d2 / d1:g} (bound x{bound:.3g}, the learning-rate grid's resolution)",
                growth <= bound * (1 + 1e-9)))
        cs = [r["median_best_lr_x_depth"] for r in summary if r["scheme"] == orth]
        if cs and None not in cs:
            spread = max(cs) / min(cs)
            bound = float(_or(config.get("lr_spread"), ratio**2))
            inside = min(grid) < min(cs) and max(cs) < max(grid)
            checks.append(check(
                "orthogonal: the optimal learning rate falls like 1 / depth",
                "Saxe et al. Sec. 4",
                f"optimal lr x depth from {min(cs):.3g} to {max(cs):.3g} (x{spread:.2f}, bound "
                f"x{bound:.3g}; inside the grid: {inside})",
                spread <= bound * (1 + 1e-9) and inside))
    if orth in schemes and gauss in schemes:
        to, tg = times(orth), times(gauss)
        d, t_o = to[-1]
        t_g = dict(tg).get(d, math.nan)
        factor = float(_or(config.get("gaussian_slowdown"), 3.0))
        checks.append(check(
            "scaled Gaussian (Var = 1/fan_in) learns far more slowly than orthogonal at the "
            "largest depth, or not at all", "Saxe et al. Sec. 4 (random Gaussian init)",
            f"depth {d}: Gaussian {t_g:g} steps, orthogonal {t_o:g} (factor {t_g / t_o:.3g}; "
            f"required >= {factor:g})", bool(t_g >= factor * t_o)))
        shallow = min(r for r, _ in to)
        t_os, t_gs = dict(to)[shallow], dict(tg).get(shallow, math.nan)
        checks.append(check(
            "at the smallest depth both initializations learn in comparable time",
            "Saxe et al. Sec. 4", f"depth {shallow}: Gaussian {t_gs:g}, orthogonal {t_os:g} "
            f"steps (factor < {factor:g})", bool(math.isfinite(t_gs) and t_gs <= factor * t_os)))
    return checks


def _plot(done: dict[tuple[str, int], dict[str, Any]], schemes: list[str], depths: list[int],
          config: Any, folder: pathlib.Path) -> list[pathlib.Path]:
    plt = pyplot()
    if plt is None:
        return []
    out = []
    fig, ax = plt.subplots(figsize=(6, 4))
    cap = float(config.max_steps)
    for s in schemes:
        ys = [float(np.median(done[(s, d)]["steps"])) for d in depths]
        ax.plot(depths, [min(y, cap * 1.2) for y in ys], "o-", label=s)
    ax.axhline(cap, color="grey", lw=0.8, ls=":", label="max_steps (not reached above)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("depth (weight matrices)")
    ax.set_ylabel("steps to criterion (best learning rate)")
    ax.legend(fontsize=7)
    out.append(save_figure(fig, folder / "time_vs_depth.png"))
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    deepest = max(depths)
    for s in schemes:
        curve = np.asarray([np.nan if v is None else v for v in done[(s, deepest)]["curve"]])
        ax.plot(np.arange(curve.size), curve, label=s)
    ax.axhline(float(config.criterion), color="grey", lw=0.8, ls=":")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("relative error |M - P|^2 / |M|^2")
    ax.set_title(f"depth {deepest}, best learning rate, seed 0")
    ax.legend(fontsize=7)
    out.append(save_figure(fig, folder / "learning_curves.png"))
    plt.close(fig)
    return out

"""Learning-rate transfer across depth (Dey et al. 2025, "Don't be lazy: CompleteP enables
compute-efficient deep transformers", Fig. 1 and Sec. 5): a pre-norm `jwinit.models.Decoder` at
depths L = 2 ... 16, trained with AdamW over a 2x grid of learning rates under the standard
parametrization (SP) and a depth parametrization (`jwinit.recipes.depth_multipliers`: the branch
multiplier (L/L0)^-alpha, and `depth_optimizer`'s per-group learning rates and epsilons). Under
CompleteP the best learning rate should not move with the depth; under SP it drifts down, because
a learning rate that is stable at small depth becomes unstable at large depth. Checked: the
depth parametrization's best learning rate stays within one grid step, and at the largest
learning rate SP's loss rises with depth while the depth parametrization's does not (the
mechanism of SP's drift); SP's best learning rate at each depth is reported next to them (at a
small scale it need not have moved a whole grid step yet).

The task: next-token prediction on a fixed random Markov chain over `vocab` tokens
(`jwinit.experiments.depth_coord_check.markov_tokens`: each token's successors from a
Dirichlet(0.1) row), new batches every step, the same batches for every learning rate of a seed.
A run's loss is the mean training loss of its last `tail` steps (a run whose loss is not finite
counts as infinite); the best learning rate of (parametrization, depth) is the one with the
lowest mean over seeds.

Config fields: depths, parametrizations, base_layers, dim, heads, mlp_dim, vocab, length,
batch_size, steps, tail, learning_rates (a 2x grid, as exponents of 2), seeds, seed; title,
paper, not_covered. Writes results.jsonl (one row per parametrization, depth, learning rate and
seed, appended as each depth finishes: a rerun resumes), summary.csv, checks.json, report.md,
plots/depth_lr_transfer.png.
"""

from __future__ import annotations

import math
import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jwinit
from jwinit.experiments._decoder import programs, rules, setup_text
from jwinit.experiments.common import (
    check,
    config_int,
    config_ints,
    progress_bar,
    pyplot,
    require,
    write_report,
)
from jwinit.experiments.depth_coord_check import markov_tokens
from jwinit.experiments.io import save_figure, write_csv, write_json
from jwinit.recipes import DEPTH_ALPHAS, depth_multipliers, depth_optimizer
from jwinit.results import ResumableCells

__all__ = ["DEFAULTS", "run", "validate"]

DEFAULTS = {
    "title": "Learning-rate transfer across depth", "paper": "-", "not_covered": "",
    "depths": (2, 4, 8, 16), "parametrizations": ("sp", "completep"), "base_layers": 2,
    "dim": 32, "heads": 4, "mlp_dim": 64, "vocab": 64, "length": 16, "batch_size": 16,
    "steps": 200, "tail": 20, "learning_rates": tuple(range(-10, -3)), "seeds": 2, "seed": 0,
}


def validate(config: Any) -> None:
    """Check every field before anything is computed or written (errors name the field)."""
    require(config, *[k for k in DEFAULTS if k not in ("title", "paper", "not_covered")])
    depths = config_ints(config, "depths")
    if len(set(depths)) < 2:
        raise ValueError(f"`config.depths` needs at least 2 different depths, got {depths}.")
    ps = config.parametrizations
    if not isinstance(ps, tuple | list) or not ps or any(p not in DEPTH_ALPHAS for p in ps):
        raise ValueError(f"`config.parametrizations` must be a non-empty tuple of "
                         f"{tuple(DEPTH_ALPHAS)}, got {ps!r}.")
    for name in ("base_layers", "dim", "heads", "mlp_dim", "length", "batch_size", "steps",
                 "tail", "seeds"):
        config_int(config, name)
    config_int(config, "vocab", minimum=2)
    config_int(config, "seed", minimum=0)
    if config.tail > config.steps:
        raise ValueError(f"`config.tail` ({config.tail}) must be at most `config.steps` "
                         f"({config.steps}).")
    if config.dim % config.heads:
        raise ValueError(f"`config.dim` ({config.dim}) must be divisible by `config.heads` "
                         f"({config.heads}).")
    exps = config.learning_rates
    if (not isinstance(exps, tuple | list) or len(exps) < 3
            or not all(isinstance(e, int) and not isinstance(e, bool) for e in exps)
            or list(exps) != list(range(exps[0], exps[0] + len(exps)))):
        raise ValueError("`config.learning_rates` must be at least 3 consecutive integer "
                         f"exponents of 2 (a 2x grid), got {exps!r}.")


def _depth_runs(config: Any, layers: int) -> list[dict[str, Any]]:
    """Every (parametrization, learning rate, seed) run at one depth, vmapped in one program
    (the optimizer's hyperparameters and the branch multiplier are per-run inputs)."""
    from flax import linen as nn

    from jwinit.models import Decoder

    _, step = programs(config.vocab, config.dim, config.heads, config.mlp_dim, layers)
    runs = [(p, e, s) for p in config.parametrizations for e in config.learning_rates
            for s in range(config.seeds)]
    model = Decoder(vocab_size=config.vocab, dim=config.dim, layers=layers, heads=config.heads,
                    mlp_dim=config.mlp_dim)
    data = {s: markov_tokens(config.vocab, config.length + 1, config.steps * config.batch_size,
                             seed=config.seed + 1000 * s + 1).reshape(config.steps,
                                                                        config.batch_size, -1)
            for s in range(config.seeds)}
    first = jnp.asarray(data[0][0])
    # a run's initial weights depend on its seed only: drawn once per seed
    keys = {s: jax.random.fold_in(jax.random.key(config.seed), s) for s in range(config.seeds)}
    init = {s: nn.unbox(jwinit.init_params(model, k, first, rules()))["params"]
            for s, k in keys.items()}
    params, states, branch = [], [], []
    for p, e, s in runs:
        w = init[s]
        tx = depth_optimizer(p, 2.0**e, layers, base_layers=config.base_layers)
        with jax.numpy_dtype_promotion("standard"):
            states.append(tx.init(w))
        params.append(w)
        branch.append(depth_multipliers(p, layers, base_layers=config.base_layers).branch)
    stack = lambda trees: jax.tree.map(lambda *a: jnp.stack(a), *trees)  # noqa: E731
    w, st, b = stack(params), stack(states), jnp.asarray(branch, jnp.float32)
    # (steps, runs, batch, length), on the device once; the steps are dispatched without
    # waiting for their losses (read back together at the end)
    tokens = jnp.asarray(np.stack([data[s] for _, _, s in runs], axis=1))
    many = jax.jit(jax.vmap(step, in_axes=(0, 0, 0, 0)))
    values = []
    for t in range(config.steps):
        w, st, value = many(w, st, tokens[t], b)
        values.append(value)
    losses = np.asarray(jnp.stack(values), np.float64)
    out = []
    for i, (p, e, s) in enumerate(runs):
        curve = losses[:, i]
        tail = curve[-int(config.tail):]
        out.append({"parametrization": p, "depth": layers, "lr_exponent": int(e), "seed": s,
                    "final_loss": float(tail.mean()) if np.all(np.isfinite(tail)) else math.inf,
                    "first_loss": float(curve[0]),
                    "loss_every_10": [float(v) for v in curve[::10]]})
    return out


#: The config fields a row depends on besides its cell: a rerun with any of them changed
#: computes its rows again instead of reading back rows of another setup.
_SETUP = ("dim", "heads", "mlp_dim", "vocab", "length", "batch_size", "steps", "tail",
          "base_layers")


def _cell_keys(config: Any) -> dict[str, Any]:
    return {**{f: int(config[f]) for f in _SETUP}, "config_seed": int(config.seed)}


def run(config: Any, workdir: str | pathlib.Path) -> dict[str, Any]:
    workdir = pathlib.Path(workdir)
    keys = ("parametrization", "depth", "lr_exponent", "seed", *_SETUP, "config_seed")
    done = ResumableCells(workdir / "results.jsonl", keys)
    extra = _cell_keys(config)
    cells = [{"parametrization": p, "depth": int(d), "lr_exponent": int(e), "seed": s, **extra}
             for d in config.depths for p in config.parametrizations
             for e in config.learning_rates for s in range(config.seeds)]
    with progress_bar("learning-rate transfer across depth", unit="depths") as update:
        for k, d in enumerate(config.depths):
            update(k, len(config.depths))
            mine = [c for c in cells if c["depth"] == int(d)]
            if all(c in done for c in mine):
                continue
            done.add([{**row, **extra} for row in _depth_runs(config, int(d))])
        update(len(config.depths), len(config.depths))
    rows = [done.get(c) for c in cells]
    summary = _summary(rows, config)
    checks = _checks(summary, config)
    columns = list(summary[0])
    write_csv(workdir / "summary.csv", summary, columns)
    write_json(workdir / "checks.json", checks)
    plots = _plot(rows, summary, config, workdir / "plots")
    reproduced = write_report(
        workdir, title=config.title, paper=config.paper,
        setup=setup_text(config) + ", branch multiplier and AdamW (b2 0.95) by "
              "`depth_multipliers` / "
              f"`depth_optimizer` with base depth {config.base_layers}; learning rates 2^e for "
              f"e in {list(config.learning_rates)}; {config.steps} steps of next-token "
              f"prediction on a random Markov chain over {config.vocab} tokens, sequences of "
              f"{config.length}, batch {config.batch_size}, {config.seeds} seeds (the same "
              f"batches for every run of a seed). A run's loss: the mean training loss of its "
              f"last {config.tail} steps; the best learning rate: the lowest mean over seeds.",
        not_covered=config.not_covered, checks=checks,
        tables=[("Best learning rate and loss by parametrization and depth", summary, columns)],
        plots=plots)
    return {"runs": len(rows), "reproduced": reproduced, "report": str(workdir / "report.md")}


def _mean_loss(rows: list[dict[str, Any]], p: str, d: int, e: int) -> float:
    vals = [r["final_loss"] for r in rows if r["parametrization"] == p and r["depth"] == d
            and r["lr_exponent"] == e]
    return float(np.mean(vals)) if all(math.isfinite(v) for v in vals) else math.inf


def _summary(rows: list[dict[str, Any]], config: Any) -> list[dict[str, Any]]:
    out = []
    top = int(config.learning_rates[-1])
    for p in config.parametrizations:
        for d in config.depths:
            losses = {int(e): _mean_loss(rows, p, int(d), int(e)) for e in config.learning_rates}
            best = min(losses, key=lambda e: losses[e])
            out.append({"parametrization": p, "depth": int(d), "best_lr": 2.0**best,
                        "best_lr_exponent": best, "best_loss": losses[best],
                        "loss_at_largest_lr": losses[top],
                        "losses_by_exponent": " ".join(f"{losses[int(e)]:.3f}"
                                                       for e in config.learning_rates)})
    return out


def _checks(summary: list[dict[str, Any]], config: Any) -> list[dict[str, Any]]:
    out = []
    depths = [int(d) for d in config.depths]

    def series(p: str, field: str) -> list[Any]:
        return [r[field] for d in depths for r in summary
                if r["parametrization"] == p and r["depth"] == d]

    edges = int(config.learning_rates[0]), int(config.learning_rates[-1])

    def bests(p: str) -> str:
        return ", ".join(f"L={d}: 2^{e}" for d, e in zip(depths, series(p, "best_lr_exponent"),
                                                         strict=True))

    # SP's drift of the optimum is reported with the others' checks, not checked: at this scale
    # it need not have reached a grid step yet (the loss check below is its mechanism)
    sp = f"; SP's best, for comparison: {bests('sp')}" if "sp" in config.parametrizations else ""
    for p in config.parametrizations:
        if p == "sp":
            continue
        best = series(p, "best_lr_exponent")
        inside = all(edges[0] < e < edges[1] for e in best)
        out.append(check(
            f"{p}: the best learning rate stays within one grid step (2x) across depths "
            f"{depths}, inside the grid", "Dey et al. 2025, Fig. 1, Sec. 5 (learning rates "
            "transfer across depth)", f"best: {bests(p)}{sp}",
            inside and max(best) - min(best) <= 1))
    top = 2.0 ** edges[1]
    for p in config.parametrizations:
        at_top = series(p, "loss_at_largest_lr")
        ratio = at_top[-1] / at_top[0] if math.isfinite(at_top[0]) else math.nan
        said = ", ".join(f"L={d}: {v:.3f}" for d, v in zip(depths, at_top, strict=True))
        if p == "sp":
            out.append(check(
                f"SP: at the largest learning rate ({top:g}) the loss rises with depth (deepest "
                "over shallowest >= 1.1): the stable range shrinks, which moves the optimum down",
                "Dey et al. 2025, Sec. 2 and Fig. 1", f"{said}; ratio {ratio:.3f}",
                not math.isfinite(ratio) or ratio >= 1.1))
        else:
            out.append(check(
                f"{p}: at the largest learning rate ({top:g}) the loss does not rise with depth "
                "(deepest over shallowest <= 1.02)", "Dey et al. 2025, Fig. 1",
                f"{said}; ratio {ratio:.3f}", math.isfinite(ratio) and ratio <= 1.02))
    return out


def _plot(rows: list[dict[str, Any]], summary: list[dict[str, Any]], config: Any,
          folder: pathlib.Path) -> list[pathlib.Path]:
    plt = pyplot()
    if plt is None:
        return []
    from matplotlib import cm, colors

    ps = list(config.parametrizations)
    depths = [int(d) for d in config.depths]
    norm = colors.LogNorm(vmin=min(depths), vmax=max(depths))
    cmap = plt.get_cmap("viridis")
    fig, axes = plt.subplots(1, len(ps), figsize=(5.6 * len(ps), 4.3), squeeze=False,
                             sharey=True, constrained_layout=True)
    lrs = [2.0 ** int(e) for e in config.learning_rates]
    for ax, p in zip(axes[0], ps, strict=True):
        for d in depths:
            mean, lo, hi = [], [], []
            for e in config.learning_rates:
                v = [r["final_loss"] for r in rows if r["parametrization"] == p
                     and r["depth"] == d and r["lr_exponent"] == int(e)]
                v = [x if math.isfinite(x) else math.nan for x in v]
                mean.append(float(np.mean(v)))
                lo.append(float(np.min(v)))
                hi.append(float(np.max(v)))
            c = cmap(norm(d))
            ax.plot(lrs, mean, "o-", color=c, ms=3, lw=1.4)
            ax.fill_between(lrs, lo, hi, color=c, alpha=0.2)
            best = next(r for r in summary if r["parametrization"] == p and r["depth"] == d)
            ax.plot(best["best_lr"], best["best_loss"], marker="*", ms=12, color=c,
                    markeredgecolor="k")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("learning rate (AdamW, as tuned at the base depth)")
        ax.set_ylabel(f"training loss, mean of the last {config.tail} steps")
        ax.set_title(f"{p}: loss against learning rate by depth (band: seeds; star: best)",
                     fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        bar = fig.colorbar(cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax,
                           label="depth L (blocks)")
        bar.set_ticks(depths, labels=[str(d) for d in depths])
        bar.ax.minorticks_off()
    out = [save_figure(fig, folder / "depth_lr_transfer.png")]
    plt.close(fig)
    return out

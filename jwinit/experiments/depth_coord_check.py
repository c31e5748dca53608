"""The coordinate check across depth: a pre-norm Decoder at depths L = 2 ... 32 under the standard
parametrization (SP), depth-muP and CompleteP (`jwinit.recipes.depth_multipliers`).

At init the residual stream's second moment is E[h_0^2] + L b^2 c (b the branch multiplier, c
the per-block increment: 1 + E[silu(g)^2] with N(0, 1/fan_in) weights after an RMSNorm), so its
RMS grows like sqrt(L) under SP, stays flat under depth-muP (b^2 L = L0) and falls to the
embedding's under CompleteP (b^2 L = L0^2 / L). After a few Adam steps (`depth_optimizer`: the
blocks' learning rate m^(alpha - 1), epsilon m^-alpha) the change of the stream RMS(h_t - h_0)
should not depend on L under CompleteP (Dey et al. 2025, Fig. 7) and grow with L under SP, where
every block moves by the same amount and adds to the same stream.

The task: next-token prediction on sequences of a fixed random Markov chain over `vocab` tokens
(each token's successors drawn from a Dirichlet(0.1) row, `seed`), new batches every step. The
stream is read after the last block: at init on every token alone (a sequence of one token:
attention is then its value path, and the sum above is exact in expectation), and in training on
a fixed probe batch of sequences.

Config fields: depths, parametrizations, base_layers, dim, heads, mlp_dim, vocab, length,
batch_size, steps, learning_rate, seeds, seed; title, paper, not_covered. Writes results.jsonl
(one row per parametrization, depth and seed, appended as each finishes: a rerun resumes),
summary.csv, checks.json, report.md, plots/depth_coord_check.png.
"""

from __future__ import annotations

import math
import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jwinit
from jwinit import theory
from jwinit.experiments._decoder import programs, rules, setup_text
from jwinit.experiments.common import (
    check,
    config_int,
    config_ints,
    config_real,
    progress_bar,
    pyplot,
    require,
    write_report,
)
from jwinit.experiments.io import save_figure, write_csv, write_json
from jwinit.recipes import DEPTH_ALPHAS, depth_multipliers, depth_optimizer
from jwinit.results import ResumableCells

__all__ = ["DEFAULTS", "run", "validate", "markov_tokens"]

DEFAULTS = {
    "title": "Coordinate check across depth", "paper": "-", "not_covered": "",
    "depths": (2, 4, 8, 16, 32), "parametrizations": ("sp", "depth_mup", "completep"),
    "base_layers": 2, "dim": 64, "heads": 4, "mlp_dim": 128, "vocab": 64, "length": 16,
    "batch_size": 32, "steps": 10, "learning_rate": 3e-3, "seeds": 3, "seed": 0,
}


def validate(config: Any) -> None:
    """Check every field before anything is computed or written (errors name the field)."""
    require(config, *[k for k in DEFAULTS if k not in ("title", "paper", "not_covered")])
    depths = config_ints(config, "depths")
    if len(set(depths)) < 3:
        raise ValueError(f"`config.depths` needs at least 3 different depths for a slope, got "
                         f"{depths}.")
    ps = config.parametrizations
    if not isinstance(ps, tuple | list) or not ps or any(p not in DEPTH_ALPHAS for p in ps):
        raise ValueError(f"`config.parametrizations` must be a non-empty tuple of "
                         f"{tuple(DEPTH_ALPHAS)}, got {ps!r}.")
    for name in ("base_layers", "dim", "heads", "mlp_dim", "length", "batch_size", "steps",
                 "seeds"):
        config_int(config, name)
    config_int(config, "vocab", minimum=2)
    config_int(config, "seed", minimum=0)
    if config.dim % config.heads:
        raise ValueError(f"`config.dim` ({config.dim}) must be divisible by `config.heads` "
                         f"({config.heads}).")
    config_real(config, "learning_rate", low=0.0, low_open=True)


def markov_tokens(vocab: int, length: int, n: int, *, seed: int = 0) -> np.ndarray:
    """`n` token sequences of `length` from a fixed random Markov chain over `vocab` tokens:
    row i of the transition matrix is Dirichlet(0.1) (a few likely successors), the chain and
    the start tokens drawn from ``numpy.random.default_rng(seed)``. int32 (n, length)."""
    rng = np.random.default_rng(seed)
    transition = rng.dirichlet(np.full(vocab, 0.1), size=vocab)
    cumulative = np.cumsum(transition, axis=1)
    out = np.empty((n, length), np.int32)
    out[:, 0] = rng.integers(0, vocab, n)
    for t in range(1, length):
        u = rng.random(n)[:, None]
        out[:, t] = np.minimum((u > cumulative[out[:, t - 1]]).sum(axis=1), vocab - 1)
    return out


def _one(config: Any, name: str, layers: int, seed: int) -> dict[str, Any]:
    from flax import linen as nn

    from jwinit.models import Decoder

    b = depth_multipliers(name, layers, base_layers=config.base_layers).branch
    stream, step = programs(config.vocab, config.dim, config.heads, config.mlp_dim, layers)
    data = markov_tokens(config.vocab, config.length + 1,
                         (config.steps + 1) * config.batch_size, seed=config.seed + 1000 * seed)
    probe = jnp.asarray(data[: config.batch_size])
    batches = data[config.batch_size:].reshape(config.steps, config.batch_size, -1)
    model = Decoder(vocab_size=config.vocab, dim=config.dim, layers=layers, heads=config.heads,
                    mlp_dim=config.mlp_dim)
    key = jax.random.fold_in(jax.random.key(config.seed), seed)
    params = nn.unbox(jwinit.init_params(model, key, probe, rules()))["params"]
    init_embedding = params["embed"]["embedding"]
    tx = depth_optimizer(name, config.learning_rate, layers, base_layers=config.base_layers)
    with jax.numpy_dtype_promotion("standard"):
        opt_state = tx.init(params)
    bb = jnp.float32(b)
    # at init on every token alone (attention is then its value path: the analytic sum holds)
    single = np.asarray(stream(params, jnp.arange(config.vocab, dtype=jnp.int32)[:, None], bb),
                        np.float64)
    h0 = np.asarray(stream(params, probe, bb), np.float64)
    change, losses = [], []
    for t in range(config.steps):
        params, opt_state, value = step(params, opt_state, jnp.asarray(batches[t]), bb)
        h = np.asarray(stream(params, probe, bb), np.float64)
        change.append(float(np.sqrt(np.mean((h - h0) ** 2))))
        losses.append(float(value))
    emb = np.asarray(init_embedding, np.float64)
    return {"rms_init": float(np.sqrt(np.mean(single**2))),
            "rms_init_sequences": float(np.sqrt(np.mean(h0**2))), "rms_change": change,
            "loss": losses,
            "branch_multiplier": b, "finite": bool(np.all(np.isfinite(change))),
            "embedding_ms": float(np.mean(emb**2))}


def _slope(depths: list[int], values: list[float]) -> float:
    return float(np.polyfit(np.log(depths), np.log(values), 1)[0])


def run(config: Any, workdir: str | pathlib.Path) -> dict[str, Any]:
    workdir = pathlib.Path(workdir)
    # every field a row depends on: a rerun with any of them changed computes its rows again
    setup = {"dim": int(config.dim), "steps": int(config.steps),
             "learning_rate": float(config.learning_rate),
             "base_layers": int(config.base_layers), "heads": int(config.heads),
             "mlp_dim": int(config.mlp_dim), "vocab": int(config.vocab),
             "length": int(config.length), "batch_size": int(config.batch_size),
             "config_seed": int(config.seed)}
    keys = ("parametrization", "depth", "seed", *setup)
    done = ResumableCells(workdir / "results.jsonl", keys)
    cells = [(p, int(d), s) for p in config.parametrizations for d in config.depths
             for s in range(config.seeds)]
    with progress_bar("depth coordinate check", unit="runs") as update:
        finished = len(done)
        update(finished, len(cells))
        for p, d, s in cells:
            cell = {"parametrization": p, "depth": d, "seed": s, **setup}
            if cell in done:
                continue
            done.add([{**cell, **_one(config, p, d, s)}])
            finished += 1
            update(finished, len(cells))
    rows = [done.get({"parametrization": p, "depth": d, "seed": s, **setup})
            for p, d, s in cells]
    c = 1.0 + float(theory.q_map("silu", 1.0, 0.0, 1.0))  # 1 + E[silu(g)^2], g ~ N(0, 1)
    summary = []
    for p in config.parametrizations:
        for d in config.depths:
            rs = [r for r in rows if r["parametrization"] == p and r["depth"] == d]
            b = rs[0]["branch_multiplier"]
            predicted = [math.sqrt(r["embedding_ms"] + d * b * b * c) for r in rs]
            summary.append({
                "parametrization": p, "depth": d, "branch_multiplier": b,
                "rms_init": float(np.mean([r["rms_init"] for r in rs])),
                "rms_init_sequences": float(np.mean([r["rms_init_sequences"] for r in rs])),
                "rms_init_theory": float(np.mean(predicted)),
                "rms_change_last": float(np.mean([r["rms_change"][-1] for r in rs])),
                "rms_change_sd": float(np.std([r["rms_change"][-1] for r in rs], ddof=1))
                if len(rs) > 1 else math.nan,
                "loss_first": float(np.mean([r["loss"][0] for r in rs])),
                "loss_last": float(np.mean([r["loss"][-1] for r in rs])),
                "finite": all(r["finite"] for r in rs)})
    checks = _checks(summary, config)
    columns = list(summary[0])
    write_csv(workdir / "summary.csv", summary, columns)
    write_json(workdir / "checks.json", checks)
    plots = _plot(rows, summary, config, workdir / "plots")
    reproduced = write_report(
        workdir, title=config.title, paper=config.paper,
        setup=setup_text(config) + " and branch multiplier `depth_multipliers(p, L, base_layers="
              f"{config.base_layers}).branch`; {config.steps} AdamW steps (learning rate "
              f"{config.learning_rate:g}, the blocks' rate and epsilon by `depth_optimizer`'s "
              f"rules) of next-token prediction on a random Markov chain over {config.vocab} "
              f"tokens, sequences of {config.length}, batch {config.batch_size}; "
              f"{config.seeds} seeds. The stream is read after the last block on a fixed probe "
              "batch; slopes are least-squares fits of log RMS against log L.",
        not_covered=config.not_covered, checks=checks,
        tables=[("Every cell (means over seeds)", summary, columns)], plots=plots)
    return {"runs": len(rows), "reproduced": reproduced, "report": str(workdir / "report.md")}


def _checks(summary: list[dict[str, Any]], config: Any) -> list[dict[str, Any]]:
    depths = [int(d) for d in config.depths]

    def series(p: str, field: str) -> list[float]:
        return [r[field] for d in depths for r in summary
                if r["parametrization"] == p and r["depth"] == d]

    out = []
    worst = max(abs(r["rms_init"] / r["rms_init_theory"] - 1) for r in summary)
    out.append(check(
        "the residual stream's RMS at init is sqrt(E[h_0^2] + L b^2 c) at every depth and "
        "parametrization (c = 1 + E[silu(g)^2])", "Dey et al. 2025, Sec. 3; Yang et al. 2024",
        f"largest relative deviation of the seed mean {worst:.3f} (each token alone; limit "
        "0.05, the finite-width spread at dim 64 being about 0.01)", worst <= 0.05))
    ps = list(config.parametrizations)
    init = {p: _slope(depths, series(p, "rms_init")) for p in ps}
    change = {p: _slope(depths, series(p, "rms_change_last")) for p in ps}
    said = ", ".join(f"{p} {init[p]:+.3f}" for p in ps)
    if "sp" in init:
        out.append(check("SP: the stream's RMS at init grows with depth (like sqrt(L) for large "
                         "L)", "Dey et al. 2025, Sec. 2", f"log-log slopes: {said}",
                         init["sp"] >= 0.3))
    for p in ("depth_mup", "completep"):
        if p in init:
            out.append(check(f"{p}: the stream's RMS at init does not grow with depth",
                             "Dey et al. 2025, Table 1; Yang et al. 2024",
                             f"log-log slopes: {said}", init[p] <= 0.05))
    said = ", ".join(f"{p} {change[p]:+.3f}" for p in ps)
    if "completep" in change:
        out.append(check(
            f"CompleteP: RMS(h_t - h_0) after {config.steps} Adam steps does not depend on the "
            "depth (log-log slope near 0)", "Dey et al. 2025, Fig. 7 (depth coordinate check)",
            f"slopes: {said} (|slope| <= 0.15 passes)", abs(change["completep"]) <= 0.15))
    if "sp" in change:
        out.append(check(
            f"SP: RMS(h_t - h_0) after {config.steps} Adam steps grows with depth",
            "Dey et al. 2025, Fig. 7", f"slopes: {said} (>= 0.3 passes)", change["sp"] >= 0.3))
    return out


def _plot(rows: list[dict[str, Any]], summary: list[dict[str, Any]], config: Any,
          folder: pathlib.Path) -> list[pathlib.Path]:
    plt = pyplot()
    if plt is None:
        return []
    depths = [int(d) for d in config.depths]
    colours = {"sp": "tab:red", "depth_mup": "tab:green", "completep": "tab:blue"}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.3), constrained_layout=True)
    for p in config.parametrizations:
        s = [r for d in depths for r in summary if r["parametrization"] == p and r["depth"] == d]
        colour = colours.get(p, "k")
        ax = axes[0]
        for d in depths:
            seeds = [r["rms_init"] for r in rows if r["parametrization"] == p
                     and r["depth"] == d]
            ax.scatter([d] * len(seeds), seeds, color=colour, s=8, alpha=0.5)
        ax.plot(depths, [r["rms_init"] for r in s], "o-", color=colour, label=f"{p} (measured)")
        ax.plot(depths, [r["rms_init_theory"] for r in s], "--", color=colour,
                label=f"{p} theory sqrt(E[h0^2] + L b^2 c)")
        ax = axes[1]
        for d in depths:
            seeds = [r["rms_change"][-1] for r in rows if r["parametrization"] == p
                     and r["depth"] == d]
            ax.scatter([d] * len(seeds), seeds, color=colour, s=8, alpha=0.5)
        ax.plot(depths, [r["rms_change_last"] for r in s], "o-", color=colour, label=p)
    for ax, title, ylabel in (
            (axes[0], "at init", "RMS of the residual stream after the last block"),
            (axes[1], f"after {config.steps} AdamW steps",
             "RMS(h_t - h_0) after the last block")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("depth L (blocks)")
        ax.set_ylabel(ylabel)
        ax.set_title(f"Depth coordinate check, {title} (dots: seeds)")
        ax.legend(fontsize=7)
    out = [save_figure(fig, folder / "depth_coord_check.png")]
    plt.close(fig)
    return out

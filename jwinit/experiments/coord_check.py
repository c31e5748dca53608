"""The muP coordinate check (Yang et al. 2022, Tensor Programs V, Sec. 4 / App. D.1, as the `mup`
package plots it): how large is every layer's activation coordinate after t optimizer steps, as a
function of width, in the standard parametrization (SP) and in muP?

For each parametrization and width, an MLP (`jwinit.models.MLP`) is initialized (SP: every kernel
N(0, 1/fan_in), one learning rate; muP: `jwinit.mup_rules` through `jwinit.init_params` and the
per-role learning rates of `jwinit.mup_optimizer`, base width `base_width`) and trained for `steps`
optimizer steps on random mini-batches of the shipped data. Before every step and after the last,
on a fixed batch of training examples, the root mean square of every Dense layer's output (its
pre-activation; the last one is the logits) and of every kernel's loss gradient are recorded. In
muP every coordinate stays O(1) as the width grows (flat lines against width); in SP with Adam the
hidden and output coordinates grow with width after the first step. The width dependence is
measured as the slope of log2 RMS against log2 width, per seed.

Config fields:
  experiment: 'coord_check'.
  data: 'digits' or a path to an .npz (`jwinit.data.load`); depth (hidden layers), widths (a
    tuple), base_width (muP's tuning width), activation.
  optimizer: 'adam' or 'sgd'; learning_rate (SP's, and muP's base rate); steps; batch_size;
    eval_batch (examples of the fixed measurement batch); seeds; seed.
  family_error: the probability that any check of a claim fails by chance when its statement
    holds (Student-t bounds on the seed mean of the slope, Bonferroni over the claim's cells).
  claims: each (kind, reference, parametrization, layers, steps, *values); layers: 'input',
    'hidden', 'output', 'after_input' or 'all_but_output'; steps: a tuple of step numbers or 'all';
    for every listed layer and step, with m the seed mean of the slope and SE its standard error:
    ('slope_at_least', ref, p, layers, steps, value): m - t SE >= value (the one-sided lower
      confidence bound: the coordinates grow at least that fast);
    ('slope_within', ref, p, layers, steps, center, tol): |m - center| + t SE <= tol (the whole
      confidence interval inside the band: width-independent to that tolerance);
    ('slope_agrees', ref, p, layers, steps, center): |m - center| <= t SE (the theory's exact
      slope, within the sampling error).
  title, paper, not_covered: text for the report.

Writes: results.jsonl (one row per parametrization and width, resumable), summary.csv (slopes per
parametrization, step and layer: median and range over seeds), checks.json, report.md,
plots/coord_check.png (activations) and plots/grad_coords.png (kernel gradients).
"""

from __future__ import annotations

import math
import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from jwinit.experiments.common import (
    agreement_threshold,
    check,
    config_activation,
    config_choice,
    config_claim,
    config_data,
    config_int,
    config_ints,
    config_real,
    lower_bound_threshold,
    progress_bar,
    pyplot,
    require,
    write_report,
)
from jwinit.experiments.io import save_figure, write_csv, write_json
from jwinit.results import ResumableCells

__all__ = ["DEFAULTS", "run", "validate", "CLAIMS", "PARAMETRIZATIONS", "slopes"]

#: The fields of a coordinate check and their defaults (Yang et al. 2022's check of an MLP on the
#: shipped digits: SP against muP, widths 64 to 2048 around base width 64, 3 Adam steps).
DEFAULTS = {
    "title": "Coordinate check", "paper": "-", "not_covered": "",
    "data": "digits", "depth": 3, "widths": (64, 128, 256, 512, 1024, 2048), "base_width": 64,
    "activation": "relu", "optimizer": "adam", "learning_rate": 0.01, "steps": 3,
    "batch_size": 64, "eval_batch": 64, "seeds": 16, "seed": 0, "family_error": 0.01,
    "claims": (),
}

PARAMETRIZATIONS = ("SP", "muP")
OPTIMIZERS = ("adam", "sgd")
LAYER_SETS = ("input", "hidden", "output", "after_input", "all_but_output")
#: Claim kind -> number of arguments after the reference.
CLAIMS = {"slope_at_least": 4, "slope_within": 5, "slope_agrees": 4}


def validate(config: Any) -> None:
    """Check every field before anything is computed or written (errors name the field)."""
    require(config, "data", "depth", "widths", "base_width", "activation", "optimizer",
            "learning_rate", "steps", "batch_size", "eval_batch", "seeds", "seed",
            "family_error", "claims")

    config_data(config)
    depth = config_int(config, "depth", minimum=1)
    widths = config_ints(config, "widths")
    if len(widths) < 2 or len(set(widths)) != len(widths):
        raise ValueError(f"`config.widths` must hold at least 2 distinct widths, got {widths!r}.")
    config_int(config, "base_width")
    config_activation(config.activation, "activation")
    config_choice(config, "optimizer", OPTIMIZERS)
    config_real(config, "learning_rate", low=0.0)
    steps = config_int(config, "steps")
    config_int(config, "batch_size")
    config_int(config, "eval_batch", minimum=2)
    config_int(config, "seeds", minimum=3)
    config_int(config, "seed", minimum=0)
    config_real(config, "family_error", low=0.0, high=1.0, high_open=True)
    for claim in config.claims:
        config_claim(claim, CLAIMS)
        _, _, param, layers, at, *_ = claim
        if param not in PARAMETRIZATIONS:
            raise ValueError(f"`config.claims`: {param!r} in {claim!r} must be one of "
                             f"{PARAMETRIZATIONS}.")
        if layers not in LAYER_SETS:
            raise ValueError(f"`config.claims`: layers {layers!r} in {claim!r} must be one of "
                             f"{LAYER_SETS}.")
        _steps_of(at, steps, claim)
    del depth


def _steps_of(at: Any, steps: int, claim: Any = None) -> list[int]:
    if at == "all":
        return list(range(steps + 1))
    if not isinstance(at, tuple | list) or not at or not all(
            isinstance(t, int) and not isinstance(t, bool) and 0 <= t <= steps for t in at):
        raise ValueError(f"`config.claims`: steps {at!r} in {claim!r} must be 'all' or a tuple of "
                         f"step numbers in [0, {steps}].")
    return list(at)


def _layers_of(which: str, depth: int) -> list[int]:
    return {"input": [0], "hidden": list(range(1, depth)), "output": [depth],
            "after_input": list(range(1, depth + 1)),
            "all_but_output": list(range(depth))}[which]


# ------------------------------------------------------------------------------------------------
# one (parametrization, width) cell


def _cell(config: Any, data: Any, param: str, width: int) -> dict[str, Any]:
    """Activation and gradient RMS, arrays (seeds, steps + 1, depth + 1)."""
    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    import optax

    import jwinit

    depth, steps = int(config.depth), int(config.steps)
    model = jwinit.models.MLP(depth=depth, width=width, output_dim=data.output_dim,
                              activation=config.activation)
    factory = optax.adam if config.optimizer == "adam" else optax.sgd
    lr = float(config.learning_rate)
    output = rf"^Dense_{depth}/"
    x_train = jnp.asarray(data.x_train)
    y_train = jnp.asarray(data.y_train)
    x_eval = x_train[: int(config.eval_batch)]
    y_eval = y_train[: int(config.eval_batch)]
    if param == "muP":
        rules = jwinit.mup_rules(int(config.base_width), width, output=output)
        tx = jwinit.mup_optimizer(factory, lr, int(config.base_width), width, output=output,
                                  kind=config.optimizer)
    else:
        rules = {r"kernel$": jwinit.variance_scaling(1.0, "fan_in", "normal"),
                 r"bias$": jwinit.zeros()}
        tx = factory(lr)
    base = jax.random.key(int(config.seed))
    keys = [jax.random.fold_in(base, s) for s in range(int(config.seeds))]
    params = [jwinit.init_params(model, k, x_eval, rules)["params"] for k in keys]
    params = jax.tree.map(lambda *xs: jnp.stack(xs), *params)
    data_keys = jnp.stack([jax.random.fold_in(k, 1) for k in keys])
    layers = [f"Dense_{i}" for i in range(depth + 1)]

    def loss(p, x, y):
        out = model.apply({"params": p}, x)
        return optax.softmax_cross_entropy_with_integer_labels(out, y).mean()

    def measure(p):
        _, inter = model.apply({"params": p}, x_eval, mutable=["intermediates"],
                               capture_intermediates=lambda m, _: isinstance(m, nn.Dense))
        acts = jnp.stack([jnp.sqrt(jnp.mean(jnp.square(inter["intermediates"][n]["__call__"][0])))
                          for n in layers])
        g = jax.grad(loss)(p, x_eval, y_eval)
        grads = jnp.stack([jnp.sqrt(jnp.mean(jnp.square(g[n]["kernel"]))) for n in layers])
        return acts, grads

    def one_seed(p, key):
        state = tx.init(p)

        def step(carry, t):
            p, state = carry
            record = measure(p)
            idx = jax.random.randint(jax.random.fold_in(key, t), (int(config.batch_size),), 0,
                                     x_train.shape[0])
            g = jax.grad(loss)(p, x_train[idx], y_train[idx])
            updates, state = tx.update(g, state, p)
            return (optax.apply_updates(p, updates), state), record

        (p, _), (acts, grads) = jax.lax.scan(step, (p, state), jnp.arange(steps))
        last_a, last_g = measure(p)
        return (jnp.concatenate([acts, last_a[None]]), jnp.concatenate([grads, last_g[None]]))

    with jax.numpy_dtype_promotion("standard"):
        acts, grads = jax.jit(jax.vmap(one_seed))(params, data_keys)
    return {"activation_rms": np.asarray(acts, np.float64).tolist(),
            "gradient_rms": np.asarray(grads, np.float64).tolist()}


def slopes(widths: Sequence[int], rms: np.ndarray) -> np.ndarray:
    """Least-squares slope of log2 RMS against log2 width; `rms` (widths, seeds, steps, layers)
    -> (seeds, steps, layers). A zero or non-finite RMS gives NaN."""
    x = np.log2(np.asarray(widths, np.float64))
    x = x - x.mean()
    with np.errstate(all="ignore"):  # log2(0) = -inf: that slope is NaN, below
        y = np.log2(np.asarray(rms, np.float64))
        slope = np.tensordot(x, y - y.mean(axis=0), axes=(0, 0)) / np.sum(x * x)
    return np.where(np.all(np.isfinite(y), axis=0), slope, np.nan)


# ------------------------------------------------------------------------------------------------
# the run


def run(config: Any, workdir: str | pathlib.Path) -> dict[str, Any]:
    from jwinit.data import load

    validate(config)
    workdir = pathlib.Path(workdir)
    data = load(config.data)
    widths = [int(w) for w in config.widths]
    depth, steps = int(config.depth), int(config.steps)
    fixed = {"depth": depth, "base_width": int(config.base_width),
             "activation": config.activation, "optimizer": config.optimizer,
             "learning_rate": float(config.learning_rate), "steps": steps,
             "batch_size": int(config.batch_size), "eval_batch": int(config.eval_batch),
             "seeds": int(config.seeds), "seed": int(config.seed), "data": config.data}
    cells = ResumableCells(workdir / "results.jsonl", ("parametrization", "width", *fixed))
    done: dict[tuple[str, int], dict[str, Any]] = {}
    total = len(PARAMETRIZATIONS) * len(widths)
    with progress_bar("coordinate check") as update:
        update(len(cells), total)
        for param in PARAMETRIZATIONS:
            for width in widths:
                cell = {"parametrization": param, "width": width, **fixed}
                if cell in cells:
                    done[(param, width)] = cells.get(cell)
                    continue
                row = {**cell, **_cell(config, data, param, width)}
                cells.add([row])
                done[(param, width)] = row
                update(len(cells), total)

    rms = {p: np.asarray([done[(p, w)]["activation_rms"] for w in widths]) for p in
           PARAMETRIZATIONS}
    grad = {p: np.asarray([done[(p, w)]["gradient_rms"] for w in widths]) for p in
            PARAMETRIZATIONS}
    slope = {p: slopes(widths, rms[p]) for p in PARAMETRIZATIONS}
    gslope = {p: slopes(widths, grad[p]) for p in PARAMETRIZATIONS}
    summary = []
    for p in PARAMETRIZATIONS:
        for t in range(steps + 1):
            for layer in range(depth + 1):
                s, g = slope[p][:, t, layer], gslope[p][:, t, layer]
                summary.append({
                    "parametrization": p, "step": t, "layer": _layer_name(layer, depth),
                    "activation_slope_median": float(np.median(s)),
                    "activation_slope_min": float(np.min(s)),
                    "activation_slope_max": float(np.max(s)),
                    "gradient_slope_median": float(np.median(g)),
                    f"activation_rms_at_width_{widths[-1]}": float(
                        np.median(rms[p][-1, :, t, layer])),
                })
    columns = list(summary[0])
    write_csv(workdir / "summary.csv", summary, columns)
    checks = [_check(c, slope, depth, steps, float(config.family_error)) for c in config.claims]
    write_json(workdir / "checks.json", checks)
    plots = _plots(rms, grad, widths, config, workdir / "plots")
    reproduced = write_report(
        workdir, title=config.title, paper=config.paper,
        setup=(f"{data.summary()} ({config.data}). MLP: {depth} hidden layers "
               f"({config.activation}), widths {widths}, base width {config.base_width}. SP: "
               f"every kernel N(0, 1/fan_in), biases zero, {config.optimizer} at learning rate "
               f"{config.learning_rate:g} for every parameter. muP: `jwinit.mup_rules` (readout "
               "N(0, base_width / (width fan_in))) and `jwinit.mup_optimizer` (Tensor Programs V, "
               f"Table 3). {steps} steps, batch {config.batch_size}; RMS of every Dense output "
               f"and kernel gradient on the first {config.eval_batch} training examples, before "
               f"every step and after the last; {config.seeds} seeds. Slope = least-squares "
               "slope of log2 RMS against log2 width, per seed."),
        not_covered=config.not_covered, checks=checks,
        tables=[("Slopes of log2 RMS against log2 width (over seeds)", summary, columns)],
        plots=plots)
    return {"cells": total, "reproduced": reproduced, "report": str(workdir / "report.md")}


def _layer_name(layer: int, depth: int) -> str:
    role = "input" if layer == 0 else "readout" if layer == depth else "hidden"
    return f"Dense_{layer} ({role})"


def _check(claim: Sequence[Any], slope: dict[str, np.ndarray], depth: int, steps: int,
           family_error: float) -> dict[str, Any]:
    kind, ref, param, which, at, *values = claim
    layers, ts = _layers_of(which, depth), _steps_of(at, steps)
    s = slope[param][:, ts][:, :, layers]  # (seeds, steps, layers)
    seeds, cells = s.shape[0], s.shape[1] * s.shape[2]
    mean = s.mean(axis=0)
    se = s.std(axis=0, ddof=1) / math.sqrt(seeds)
    where = f"{which} layers ({', '.join(_layer_name(i, depth) for i in layers)}), steps {ts}"
    shown = (f"seed means {np.round(mean, 3).tolist()} (per step, per layer), standard errors "
             f"up to {float(np.nanmax(se)):.3f}, {seeds} seeds")
    finite = bool(np.all(np.isfinite(s)))
    if kind == "slope_at_least":
        (value,) = values
        t = lower_bound_threshold(seeds, cells, family_error)
        low = mean - t * se
        return check(f"{param}: activation coordinates grow with width: slope of log2 RMS vs "
                     f"log2 width at least {value:g}, {where}", ref,
                     f"smallest lower bound (mean - {t:.2f} SE) {float(np.nanmin(low)):.3f}; "
                     f"{shown}", finite and bool(np.all(low >= value)))
    t = agreement_threshold(seeds, cells, family_error)
    if kind == "slope_within":
        center, tol = values
        reach = np.abs(mean - center) + t * se
        return check(f"{param}: width-independent coordinates: the slope of log2 RMS vs log2 "
                     f"width within {tol:g} of {center:g}, {where}", ref,
                     f"largest |mean - {center:g}| + {t:.2f} SE: {float(np.nanmax(reach)):.3f}; "
                     f"{shown}", finite and bool(np.all(reach <= tol)))
    (center,) = values
    z = np.abs(mean - center) / np.maximum(se, 1e-12)
    return check(f"{param}: the slope of log2 RMS vs log2 width is the theory's {center:g}, "
                 f"{where}", ref,
                 f"largest |mean - {center:g}| / SE: {float(np.nanmax(z)):.2f} (threshold "
                 f"{t:.2f}); {shown}", finite and bool(np.all(z <= t)))


def _plots(rms: dict[str, np.ndarray], grad: dict[str, np.ndarray], widths: list[int],
           config: Any, folder: pathlib.Path) -> list[pathlib.Path]:
    plt = pyplot()
    if plt is None:
        return []
    depth, steps = int(config.depth), int(config.steps)
    out = []
    for values, name, what in ((rms, "coord_check.png", "RMS of the layer's output"),
                               (grad, "grad_coords.png", "RMS of the kernel's gradient")):
        fig, axes = plt.subplots(len(PARAMETRIZATIONS), steps + 1,
                                 figsize=(3.4 * (steps + 1), 3.3 * len(PARAMETRIZATIONS)),
                                 squeeze=False, sharex=True, constrained_layout=True)
        colors = plt.get_cmap("viridis")(np.linspace(0, 0.9, depth + 1))
        for row, p in enumerate(PARAMETRIZATIONS):
            for t in range(steps + 1):
                ax = axes[row][t]
                for layer in range(depth + 1):
                    v = values[p][:, :, t, layer]  # (widths, seeds)
                    med = np.median(v, axis=1)
                    ax.plot(widths, med, "o-", ms=3, color=colors[layer],
                            label=_layer_name(layer, depth))
                    ax.fill_between(widths, v.min(axis=1), v.max(axis=1), color=colors[layer],
                                    alpha=0.2)
                if name == "coord_check.png" and p == "muP" and t == 0:
                    ref = np.median(values[p][0, :, 0, depth]) * (np.asarray(widths) /
                                                                   widths[0]) ** -0.5
                    ax.plot(widths, ref, "k--", lw=1, label="theory: readout ~ width^-1/2")
                ax.set_xscale("log", base=2)
                ax.set_yscale("log")
                ax.set_title(f"{p}, step {t}", fontsize=9)
                ax.set_xlabel("width")
                if t == 0:
                    ax.set_ylabel(what)
                ax.grid(True, which="both", alpha=0.3)
        axes[0][0].fill_between([], [], [], color="grey", alpha=0.2, label="range over seeds")
        axes[0][0].legend(fontsize=7, loc="best")
        axes[-1][0].legend(fontsize=7, loc="best")
        fig.suptitle(f"Coordinate check: {config.optimizer}, learning rate "
                     f"{config.learning_rate:g}, base width {config.base_width} (median over "
                     f"{config.seeds} seeds; flat = width-independent)", fontsize=10)
        out.append(save_figure(fig, folder / name))
        plt.close(fig)
    return out

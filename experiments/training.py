"""Training: does a network initialized this way then learn, how fast, and how well.

Every (activation, init, learning rate, seed) run of an MLP is trained with optax on shipped data
(`jwinit.data`) by `jwinit.train.train`: one compiled program per activation. Each run is shown
next to what was known at initialization: the probe's regime for that (init, activation, depth,
width) and the mean-field depth scale xi_c.

Config fields:
  experiment: 'training'.
  data: 'digits', 'teacher' or a path to an .npz (see `jwinit.data.load`).
  depth, width: the MLP's hidden layers and units (`jwinit.models.MLP`); activations: a tuple.
  inits: (('display name', 'scheme'), ...), the scheme as `jwinit.sweep` writes it
    ('he_normal', 'normal(stddev=0.01)', '(2.0, 0.05)' for a mean-field pair, 'zeros').
  optimizer: 'sgd', 'momentum' (SGD with `momentum`) or 'adam'; learning_rates; steps;
    batch_size; eval_every; seeds; seed.
  target_loss: the train loss a run must reach to count as trained (steps to it are reported).
  signal: record per-layer activation statistics during training (plots/activations.png).
  claims: the paper's claims, each (kind, reference, *arguments):
    ('reaches', ref, init, activation, within): at the init's best learning rate every seed
      reaches `target_loss` by step `within`;
    ('stalls', ref, init, activation, multiple, other): at every learning rate and seed the
      init's loss stays within 0.05 of chance (ln of the number of classes) for `multiple` times
      the steps `other` needs (its slowest seed at its best learning rate);
    ('faster', ref, init_a, init_b, activation): a reaches the target in fewer steps than b at
      their best learning rates (median over seeds), and b is faster at no learning rate;
    ('saturates', ref, init, activation, learning_rate, below, within): the top hidden layer's
      mean activation falls below `below` by step `within` in every seed while every lower
      hidden layer's stays at or above 0.4 (needs signal);
    ('better_activation', ref, init, activation_a, activation_b): a's median final train loss
      at its best learning rate is below b's;
    ('symmetric', ref, init, activation): after training every kernel but the readout has
      numerical rank <= 1 (sigma_2 <= 1e-6 sigma_1) in every run;
    ('accuracy_below', ref, init, activation, fraction, other): the init's best median test
      accuracy is at most `fraction` of other's.
  A run's best learning rate: fewest median steps to the target, then lowest median final loss.
  title, paper, description, not_covered: text for the report.

Writes: results.jsonl (one row per activation, init, learning rate, seed and evaluation),
summary.csv (per activation, init and learning rate), checks.json, report.md,
plots/curves.png (train loss and test accuracy by init: median and seed range), and with
`signal` plots/activations.png. Training state is checkpointed per activation after every chunk
(checkpoints/<activation>.npz): a rerun resumes.
"""

from __future__ import annotations

import functools
import math
import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from experiments.common import (
    check,
    config_activation,
    config_choice,
    config_int,
    config_real,
    config_reals,
    progress_bar,
    pyplot,
    require,
    write_report,
)
from experiments.io import save_figure, write_csv, write_json, write_text
from jwinit._jsonl import dumps

__all__ = ["run", "validate", "CLAIMS", "optimizer_of", "best_learning_rate"]

OPTIMIZERS = ("sgd", "momentum", "adam")
#: Claim kind -> number of arguments after the reference.
CLAIMS = {"reaches": 3, "stalls": 4, "faster": 3, "saturates": 5, "better_activation": 3,
          "symmetric": 2, "accuracy_below": 4}
#: A loss within this of chance (ln classes) counts as "at chance".
CHANCE_BAND = 0.05


def optimizer_of(config: Any) -> Any:
    import optax

    if config.optimizer == "sgd":
        return optax.sgd
    if config.optimizer == "momentum":
        return functools.partial(optax.sgd, momentum=float(config.momentum))
    return optax.adam


def _inits(config: Any) -> list[tuple[str, str]]:
    values = config.inits
    if not isinstance(values, tuple | list) or not values:
        raise TypeError(f"`config.inits` must be a non-empty tuple of (name, scheme), got "
                        f"{values!r}.")
    out = []
    for item in values:
        if not (isinstance(item, tuple | list) and len(item) == 2
                and all(isinstance(v, str) for v in item)):
            raise TypeError(f"`config.inits` entries must be ('display name', 'scheme'), got "
                            f"{item!r}.")
        out.append((item[0], item[1]))
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise ValueError(f"`config.inits` has repeated display names: {names}.")
    return out


def validate(config: Any) -> None:
    """Check every field before anything is computed or written (errors name the field)."""
    require(config, "data", "depth", "width", "activations", "inits", "optimizer",
            "learning_rates", "steps", "batch_size", "eval_every", "seeds", "seed",
            "target_loss", "signal", "claims")
    from jwinit.data import DATASETS
    from jwinit.train._inits import resolve_inits

    if not isinstance(config.data, str) or not (config.data in DATASETS
                                                or config.data.endswith(".npz")):
        raise ValueError(f"`config.data` must be one of {DATASETS} or a path to an .npz file, "
                         f"got {config.data!r}.")
    config_int(config, "depth", minimum=0)
    config_int(config, "width")
    acts = config.activations
    if not isinstance(acts, tuple | list) or not acts:
        raise TypeError(f"`config.activations` must be a non-empty tuple, got {acts!r}.")
    for a in acts:
        config_activation(a, "activations")
    inits = _inits(config)
    resolve_inits(dict(inits))  # unknown names fail here
    config_choice(config, "optimizer", OPTIMIZERS)
    if config.optimizer == "momentum":
        config_real(config, "momentum", low=0.0, high=1.0, high_open=True)
    config_reals(config, "learning_rates", low=0.0)
    steps = config_int(config, "steps")
    config_int(config, "batch_size")
    every = config_int(config, "eval_every")
    if steps % every:
        raise ValueError(f"`config.steps` ({steps}) must be a multiple of `config.eval_every` "
                         f"({every}).")
    config_int(config, "seeds")
    config_int(config, "seed", minimum=0)
    config_real(config, "target_loss", low=0.0)
    names = {n for n, _ in inits}
    for claim in config.claims:
        if not isinstance(claim, tuple | list) or not claim or claim[0] not in CLAIMS:
            raise ValueError(f"`config.claims`: each claim is (kind, reference, ...) with kind in "
                             f"{sorted(CLAIMS)}, got {claim!r}.")
        if len(claim) != 2 + CLAIMS[claim[0]]:
            raise ValueError(f"`config.claims`: a {claim[0]!r} claim takes "
                             f"{CLAIMS[claim[0]]} arguments after the reference, got {claim!r}.")
        for v in claim[2:]:
            if isinstance(v, str) and v not in names and v not in acts:
                raise ValueError(f"`config.claims`: {v!r} in {claim!r} is neither an init of "
                                 f"`config.inits` ({sorted(names)}) nor an activation.")
        if claim[0] == "saturates" and not config.signal:
            raise ValueError("`config.claims`: a 'saturates' claim needs `config.signal = True`.")


# ------------------------------------------------------------------------------------------------
# the run


def _dataset(config: Any) -> Any:
    from jwinit.data import load

    return load(config.data)


def _at_init(kernel: Any, bias: Any, activation: str, depth: int, width: int) -> dict[str, Any]:
    """What is known before training: the probe's regime and the theory's depth scale."""
    import jwinit
    from jwinit import theory

    out: dict[str, Any] = {"probe_regime": "-", "xi_c": math.nan, "sigma_w2": math.nan}
    if depth < 2:
        return out
    r = jwinit.probe_mlp(0, kernel, activation, depth=depth, width=width, batch=256,
                         num_seeds=4, bias_init=bias, statistics="second_moments")
    out["probe_regime"] = r.verdict()
    sw2 = float(jwinit.describe(kernel, (width, width)).variance) * width
    sb2 = 0.0 if bias is None else float(jwinit.describe(bias, (width,)).variance)
    out["sigma_w2"] = sw2
    if sw2 > 0:
        try:
            out["xi_c"] = float(theory.depth_scales(activation, sw2, sb2)[1])
        except ValueError:
            pass
    return out


def run(config: Any, workdir: str | pathlib.Path) -> dict[str, Any]:
    import jwinit
    from jwinit.train._inits import ZERO, resolve_inits

    workdir = pathlib.Path(workdir)
    data = _dataset(config)
    inits = _inits(config)
    specs = {s.name: s for s in resolve_inits(dict(inits))}
    acts = list(config.activations)
    depth, width = int(config.depth), int(config.width)
    steps = int(config.steps)
    results: dict[str, Any] = {}
    with progress_bar("training", unit="steps") as update:
        for k, act in enumerate(acts):
            model = jwinit.models.MLP(depth=depth, width=width, output_dim=data.output_dim,
                                      activation=act)

            def progress(done, total, k=k):
                update(k * steps + done, len(acts) * steps)

            results[act] = jwinit.train.train(
                model, data, inits={n: s for n, s in inits}, optimizer=optimizer_of(config),
                learning_rates=list(config.learning_rates), steps=steps,
                seeds=int(config.seeds), batch_size=int(config.batch_size),
                eval_every=int(config.eval_every), key=int(config.seed),
                signal=bool(config.signal),
                checkpoint=workdir / "checkpoints" / f"{act}.npz", progress=progress)

    at_init = {}
    for act in acts:
        for name, spec in specs.items():
            kernel = spec.rule_for("Dense_1/kernel")
            bias = spec.rule_for("Dense_1/bias")
            kernel = jwinit.zeros() if kernel is ZERO else kernel
            bias = None if bias is ZERO or bias is None else bias
            at_init[(act, name)] = _at_init(kernel, bias, act, depth, width)

    rows = []
    for act, r in results.items():
        rows += [{"activation": act, **row} for row in r.rows()]
    write_text(workdir / "results.jsonl", "".join(dumps(row) + "\n" for row in rows))
    summary = _summary(results, at_init, float(config.target_loss))
    columns = list(summary[0])
    write_csv(workdir / "summary.csv", summary, columns)
    checks = [_check(c, results, summary, config, data) for c in config.claims]
    write_json(workdir / "checks.json", checks)
    plots = _plots(results, summary, config, data, workdir / "plots")
    seconds = {act: (round(r.compile_seconds, 1), round(r.seconds, 1))
               for act, r in results.items()}
    reproduced = write_report(
        workdir, title=config.title, paper=config.paper,
        setup=(f"{data.summary()} ({config.data}). MLP: {depth} hidden layers of {width} units "
               f"({', '.join(acts)}), zero biases unless the init sets them; optimizer "
               f"{config.optimizer}" + (f" (momentum {config.momentum})"
                                       if config.optimizer == "momentum" else "")
               + f", learning rates {list(config.learning_rates)}, batch {config.batch_size}, "
               f"{steps} steps, {config.seeds} seeds, evaluated every {config.eval_every} steps. "
               f"Trained = train loss <= {config.target_loss:g}. Each activation's runs are one "
               f"compiled program (compile / total seconds: {seconds}). At init: the probe's "
               "regime (`jwinit.probe_mlp`, 4 seeds, batch 256) and the mean-field depth scale "
               "xi_c of (sigma_w2, sigma_b2)."),
        not_covered=config.not_covered, checks=checks,
        tables=[("Runs by init and learning rate (medians over seeds)", summary, columns)],
        plots=plots)
    return {"runs": sum(len(r.runs) for r in results.values()), "reproduced": reproduced,
            "report": str(workdir / "report.md")}


# ------------------------------------------------------------------------------------------------
# summaries and claims


def _median(values: Sequence[float]) -> float:
    v = np.asarray(values, np.float64)
    return float(np.median(v)) if v.size else math.nan


def _summary(results: dict[str, Any], at_init: dict[tuple[str, str], dict[str, Any]],
             target: float) -> list[dict[str, Any]]:
    out = []
    for act, r in results.items():
        per_run = r.summaries(target_loss=target)
        for init in r.inits:
            for lr in r.learning_rates:
                runs = [per_run[i] for i in r.select(init=init, learning_rate=lr)]
                st = [x["steps_to_target_loss"] for x in runs]
                out.append({
                    "activation": act, "init": init, "learning_rate": lr,
                    "median_steps_to_target": _median(st),
                    "seeds_reaching_target": f"{sum(math.isfinite(s) for s in st)}/{len(st)}",
                    "median_final_train_loss": _median([x["final_train_loss"] for x in runs]),
                    "median_final_test_accuracy": _median(
                        [x["final_test_accuracy"] for x in runs]),
                    "diverged": f"{sum(x['diverged'] for x in runs)}/{len(runs)}",
                    "probe_regime_at_init": at_init[(act, init)]["probe_regime"],
                    "xi_c_at_init": at_init[(act, init)]["xi_c"],
                })
        for init in r.inits:
            best = best_learning_rate([s for s in out if s["activation"] == act
                                       and s["init"] == init])
            for s in out:
                if s["activation"] == act and s["init"] == init:
                    s["best_learning_rate"] = s["learning_rate"] == best
    return out


def best_learning_rate(rows: Sequence[dict[str, Any]]) -> float:
    """The learning rate with the fewest median steps to the target, then the lowest median final
    train loss (NaN losses last)."""
    def key(s):
        loss = s["median_final_train_loss"]
        return (s["median_steps_to_target"], loss if math.isfinite(loss) else math.inf)

    return min(rows, key=key)["learning_rate"]


def _rows(summary, act, init):
    return [s for s in summary if s["activation"] == act and s["init"] == init]


def _best(summary, act, init):
    return next(s for s in _rows(summary, act, init) if s["best_learning_rate"])


def _check(claim: Sequence[Any], results: dict[str, Any], summary: list[dict[str, Any]],
           config: Any, data: Any) -> dict[str, Any]:
    kind, ref, *args = claim
    target = float(config.target_loss)
    if kind == "reaches":
        init, act, within = args
        r = results[act]
        b = _best(summary, act, init)
        idx = r.select(init=init, learning_rate=b["learning_rate"])
        st = [r.summaries(target_loss=target)[i]["steps_to_target_loss"] for i in idx]
        return check(f"{init} ({act}) trains: every seed reaches train loss {target:g} within "
                     f"{within} steps", ref,
                     f"at learning rate {b['learning_rate']:g}: steps {st}",
                     all(s <= within for s in st))
    if kind == "stalls":
        init, act, multiple, other = args
        r = results[act]
        b = _best(summary, act, other)
        idx = r.select(init=other, learning_rate=b["learning_rate"])
        other_steps = max(r.summaries(target_loss=target)[i]["steps_to_target_loss"]
                          for i in idx)
        chance = math.log(data.num_classes)
        leave = []
        for i in r.select(init=init):
            below = np.flatnonzero(~(r.train_loss[i] >= chance - CHANCE_BAND))
            leave.append(float(r.eval_steps[below[0]]) if below.size else math.inf)
        need = multiple * other_steps
        first = min(leave)
        left = (f"first leaves chance at step {first:g} (earliest of its {len(leave)} runs)"
                if math.isfinite(first) else
                f"never leaves chance in {int(r.eval_steps[-1])} steps (any of its "
                f"{len(leave)} runs)")
        return check(f"{init} ({act}) stalls at chance-level loss (within {CHANCE_BAND} of "
                     f"ln {data.num_classes} = {chance:.3f}) for at least {multiple}x the steps "
                     f"{other} needs to reach loss {target:g}, at every learning rate and seed",
                     ref, f"{other} needs {other_steps:g} steps (slowest seed, best learning "
                     f"rate); {init} {left}", math.isfinite(other_steps) and first >= need)
    if kind == "faster":
        a, b_, act = args
        ba, bb = _best(summary, act, a), _best(summary, act, b_)
        slower_somewhere = [
            ra["learning_rate"] for ra, rb in zip(_rows(summary, act, a), _rows(summary, act, b_),
                                                  strict=True)
            if rb["median_steps_to_target"] < ra["median_steps_to_target"]]
        return check(f"{a} trains faster than {b_} ({act})", ref,
                     f"median steps to loss {target:g} at the best learning rates: "
                     f"{ba['median_steps_to_target']:g} (lr {ba['learning_rate']:g}) vs "
                     f"{bb['median_steps_to_target']:g} (lr {bb['learning_rate']:g}); learning "
                     f"rates where {b_} is faster: {slower_somewhere or 'none'}",
                     ba["median_steps_to_target"] < bb["median_steps_to_target"]
                     and not slower_somewhere)
    if kind == "saturates":
        init, act, lr, below, within = args
        r = results[act]
        means = r.signal_of("input_mean")  # (runs, E, layers): layer l's input = hidden l's output
        idx = r.select(init=init, learning_rate=lr)
        top = means[idx][:, :, -1]
        lower = means[idx][:, :, 1:-1]
        when = [float(r.eval_steps[np.flatnonzero(t < below)[0]]) if np.any(t < below)
                else math.inf for t in top]
        floor = float(np.nanmin(lower)) if lower.size else math.nan
        return check(f"{init} ({act}): the top hidden layer saturates toward 0 early in "
                     f"training (mean activation below {below:g} within {within} steps) while "
                     "the lower layers do not (mean >= 0.4)", ref,
                     f"learning rate {lr:g}: top layer below {below:g} at steps {when}; lowest "
                     f"mean of a lower layer {floor:.3f}",
                     all(w <= within for w in when) and floor >= 0.4)
    if kind == "better_activation":
        init, a, b_ = args
        la, lb = _best(summary, a, init), _best(summary, b_, init)
        return check(f"{a} networks train better than {b_} networks ({init})", ref,
                     f"median final train loss at the best learning rates: "
                     f"{la['median_final_train_loss']:.3g} ({a}) vs "
                     f"{lb['median_final_train_loss']:.3g} ({b_})",
                     la["median_final_train_loss"] < lb["median_final_train_loss"])
    if kind == "symmetric":
        init, act = args
        r = results[act]
        worst = 0.0
        for i in r.select(init=init):
            for layer in range(int(config.depth)):
                w = np.asarray(r.params[f"Dense_{layer}"]["kernel"][i], np.float64)
                s = np.linalg.svd(w, compute_uv=False)
                ratio = 0.0 if s[0] == 0 else s[1] / s[0]
                worst = max(worst, ratio)
        return check(f"{init} ({act}) cannot break the symmetry between hidden units: every "
                     "hidden kernel stays of rank <= 1", ref,
                     f"largest sigma_2 / sigma_1 over {len(r.select(init=init))} runs and "
                     f"{config.depth} kernels: {worst:.2e}", worst <= 1e-6)
    if kind == "accuracy_below":
        init, act, fraction, other = args
        acc = max(s["median_final_test_accuracy"] for s in _rows(summary, act, init))
        ref_acc = max(s["median_final_test_accuracy"] for s in _rows(summary, act, other))
        return check(f"{init} ({act}) ends far less accurate than {other}: at most "
                     f"{fraction:g}x its test accuracy", ref,
                     f"best median test accuracy {acc:.3f} vs {ref_acc:.3f}",
                     acc <= fraction * ref_acc)
    raise ValueError(f"unknown claim kind {kind!r}")


# ------------------------------------------------------------------------------------------------
# plots


def _plots(results: dict[str, Any], summary: list[dict[str, Any]], config: Any, data: Any,
           folder: pathlib.Path) -> list[pathlib.Path]:
    plt = pyplot()
    if plt is None:
        return []
    out = []
    acts = list(results)
    fig, axes = plt.subplots(len(acts), 2, figsize=(12, 4.2 * len(acts)), squeeze=False,
                             constrained_layout=True)
    for row, act in enumerate(acts):
        r = results[act]
        ax_l, ax_a = axes[row]
        for init in r.inits:
            lr = _best(summary, act, init)["learning_rate"]
            idx = r.select(init=init, learning_rate=lr)
            for ax, values in ((ax_l, r.train_loss[idx]), (ax_a, r.test_accuracy[idx])):
                with np.errstate(all="ignore"):
                    med = np.nanmedian(values, axis=0) if np.any(np.isfinite(values)) else \
                        np.full(values.shape[1], np.nan)
                    lo, hi = np.nanmin(values, axis=0), np.nanmax(values, axis=0)
                (line,) = ax.plot(r.eval_steps, med, lw=1.6, label=f"{init} (lr {lr:g})")
                ax.fill_between(r.eval_steps, lo, hi, color=line.get_color(), alpha=0.2)
        if data.task == "classification":
            ax_l.axhline(math.log(data.num_classes), color="k", ls=":", lw=1,
                         label=f"chance: ln {data.num_classes}")
            ax_a.axhline(1 / data.num_classes, color="k", ls=":", lw=1, label="chance")
        ax_l.set_yscale("log")
        ax_l.set_ylabel("train loss (cross-entropy, log scale)")
        ax_a.set_ylabel("test accuracy")
        for ax in (ax_l, ax_a):
            ax.set_xlabel("optimizer step")
            ax.grid(True, which="both", alpha=0.3)
            ax.fill_between([], [], [], color="grey", alpha=0.2, label="range over seeds")
            ax.legend(fontsize=7, loc="best")
        ax_l.set_title(f"{act}, depth {config.depth}, width {config.width}: train loss "
                       "(median over seeds, best learning rate of each init)", fontsize=9)
        ax_a.set_title(f"{act}: test accuracy", fontsize=9)
    out.append(save_figure(fig, folder / "curves.png"))
    plt.close(fig)
    if config.signal:
        out.append(_activation_plot(plt, results, summary, config, folder))
    return out


def _activation_plot(plt: Any, results: dict[str, Any], summary: list[dict[str, Any]],
                     config: Any, folder: pathlib.Path) -> pathlib.Path:
    """Glorot & Bengio's Fig. 2: each hidden layer's mean activation (and its standard deviation
    over batch and units) during training."""
    from matplotlib import cm, colors

    acts = list(results)
    inits = results[acts[0]].inits
    depth = int(config.depth)
    fig, axes = plt.subplots(len(acts), len(inits), figsize=(5.5 * len(inits), 4 * len(acts)),
                             squeeze=False, constrained_layout=True)
    norm = colors.Normalize(vmin=1, vmax=max(depth, 2))
    cmap = plt.get_cmap("viridis")
    for row, act in enumerate(acts):
        r = results[act]
        mean, sq = r.signal_of("input_mean"), r.signal_of("input_second_moment")
        for col, init in enumerate(inits):
            ax = axes[row][col]
            lr = _best(summary, act, init)["learning_rate"]
            idx = r.select(init=init, learning_rate=lr)
            for layer in range(1, depth + 1):  # the input of Dense_l is hidden layer l's output
                m = np.nanmedian(mean[idx][:, :, layer], axis=0)
                sd = np.sqrt(np.maximum(np.nanmedian(sq[idx][:, :, layer], axis=0) - m**2, 0))
                c = cmap(norm(layer))
                ax.plot(r.eval_steps, m, color=c, lw=1.5)
                ax.fill_between(r.eval_steps, m - sd, m + sd, color=c, alpha=0.12)
            ax.set_xlabel("optimizer step")
            ax.set_ylabel("mean activation of the hidden layer (+- std)")
            ax.set_title(f"{act}, {init} (lr {lr:g}; median over seeds)", fontsize=9)
            ax.grid(True, alpha=0.3)
            fig.colorbar(cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="hidden layer",
                         ticks=range(1, depth + 1))
    path = save_figure(fig, folder / "activations.png")
    plt.close(fig)
    return path

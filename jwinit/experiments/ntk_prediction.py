"""Predicting gradient descent from the NTK at init: the largest stable learning rate, the loss
curve, and where the prediction ends (catapults, feature learning).

For each width and initialization, MLPs are trained by plain full-batch gradient descent on the
first `examples` training digits as regression on one-hot targets (the mean squared error over
examples and outputs), and `jwinit.trainability` predicts from each seed's network at init:

* the largest stable learning rate of the linearized model, lr_max = n k / lambda_max (n
  examples, k outputs; lambda_max the largest eigenvalue of the empirical NTK traced over
  outputs), measured as the largest learning rate on the grid lr_max x `multipliers` whose loss
  falls at every one of the first `monotone_steps` steps;
* the training at `curve_multiplier` x lr_max for `curve_steps` steps, against the
  linearized model's: the residual r_t = f_t(x) - y against ``report.residual_curve``
  (V diag((1 - 2 lr lambda / (n k))^t) V^T r_0), and the loss against ``report.loss_curve``.
  The departure is max_t |r_t - r_t^lin| / |r_0| (Frobenius norms), the quantity Lee et al.
  2019 (Thm. 2.1) bound by O(width^-1/2): the wider the network, the closer it trains to its
  linearization. The loss curves' largest relative gap is reported too (it grows as the loss
  falls, where a small absolute gap is a large relative one);
* above lr_max the linearized model diverges; a finite network may instead catapult (the loss
  rises, the NTK shrinks, and the loss falls again; Lewkowycz et al. 2020). Each seed is also
  trained `catapult_steps` steps at `catapult_multipliers` x lr_max and classified 'monotone',
  'catapult' (rises above its start, ends finite and below it) or 'diverged'.

The infinite-width kernel of the same network (`jwinit.theory.kernel_fn` in the standard
parameterization at that width, the expected empirical NTK; the input layer's variance given
separately, as an orthogonal init on the rectangular input layer has Var = gain^2 / width) gives
its own lr_max, side by side (None for an init whose readout variance differs from the hidden
layers').
One compiled program per (width, init) trains every seed and learning rate of a phase, vmapped.

Config fields: data; examples; depth; widths; inits ((label, 'scheme+activation') pairs; biases
zero); seeds; seed; multipliers; monotone_steps; catapult_multipliers; catapult_steps;
curve_multiplier; curve_steps; lr_factor (the prediction's allowed factor); follow_tolerance
(the wide net's largest departure from the linearized model); lazy_ratio (how much further the
narrow net departs); title, paper, not_covered.

Writes: results.jsonl (one row per width, init and seed: the spectrum, both predictions, the
grid's and the catapult runs' losses, the trained and predicted curves), summary.csv (per width
and init), checks.json, report.md and plots/learning_rates.png, plots/loss_curves.png,
plots/departure.png, plots/catapult.png. A rerun resumes after the last finished (width, init).
"""

from __future__ import annotations

import pathlib
from typing import Any

import numpy as np

from jwinit.experiments.common import (
    check,
    config_int,
    config_ints,
    config_one_hot_subset,
    config_real,
    config_reals,
    finished_rows,
    gradient_descent,
    parse_pair,
    progress_bar,
    pyplot,
    require,
    write_report,
)
from jwinit.experiments.io import save_figure, write_csv, write_json

__all__ = ["DEFAULTS", "run", "validate", "classify"]

#: The fields of an NTK-prediction experiment and their defaults (the issue's setup on the
#: shipped digits).
DEFAULTS = {
    "title": "NTK predictions of gradient descent", "paper": "-",
    "not_covered": "",
    "data": "digits", "examples": 64, "depth": 3, "widths": (64, 1024),
    "inits": (("He", "he_normal+relu"), ("LeCun", "lecun_normal+relu"),
              ("orthogonal", "orthogonal(scale=1.4142135623730951)+relu"),
              ("chaotic tanh", "variance_scaling(scale=4.0, mode='fan_in', "
                               "distribution='normal')+tanh")),
    "seeds": 2, "seed": 0,
    # 2^(k/4), k = -4..6: from half the prediction to 2.8x it
    "multipliers": tuple(float(2 ** (k / 4)) for k in range(-4, 7)),
    "monotone_steps": 20,
    # a catapult's loss is back below its start within about 8 steps (measured at width 1024)
    "catapult_multipliers": (1.5, 2.0, 3.0, 4.0), "catapult_steps": 30,
    "curve_multiplier": 0.1, "curve_steps": 200,
    "lr_factor": 2.0, "follow_tolerance": 0.1, "lazy_ratio": 2.0,
}

#: The outcomes of a run above lr_max.
OUTCOMES = ("monotone", "catapult", "diverged")


def validate(config: Any) -> None:
    require(config, "data", "examples", "depth", "widths", "inits", "seeds", "seed",
            "multipliers", "monotone_steps", "catapult_multipliers", "catapult_steps",
            "curve_multiplier", "curve_steps", "lr_factor", "follow_tolerance", "lazy_ratio")
    from jwinit.schemes import resolve_scheme

    config_one_hot_subset(config)
    config_int(config, "depth", minimum=1)
    widths = config_ints(config, "widths")
    if len(widths) != 2 or widths[0] >= widths[1]:
        raise ValueError(f"`config.widths` must be two widths, narrow then wide, got {widths}.")
    _inits(config, resolve_scheme)
    config_int(config, "seeds")
    config_int(config, "seed", minimum=0)
    config_reals(config, "multipliers", low=0.0, low_open=True)
    config_int(config, "monotone_steps", minimum=2)
    config_reals(config, "catapult_multipliers", low=1.0, low_open=True)
    config_int(config, "catapult_steps", minimum=2)
    config_real(config, "curve_multiplier", low=0.0, high=1.0, low_open=True, high_open=True)
    config_int(config, "curve_steps")
    config_real(config, "lr_factor", low=1.0, low_open=True)
    config_real(config, "follow_tolerance", low=0.0, low_open=True)
    config_real(config, "lazy_ratio", low=1.0)


def _inits(config: Any, resolve: Any) -> list[tuple[str, Any, str]]:
    """[(label, kernel initializer, activation)] from `config.inits`, checked."""
    values = config.inits
    if not isinstance(values, tuple | list) or not values:
        raise TypeError(f"`config.inits` must be a non-empty tuple of (label, "
                        f"'scheme+activation') pairs, got {values!r}.")
    out = []
    for item in values:
        if not (isinstance(item, tuple | list) and len(item) == 2
                and all(isinstance(v, str) for v in item)):
            raise TypeError(f"`config.inits` entries must be (label, 'scheme+activation') "
                            f"pairs, got {item!r}.")
        try:
            scheme, act = parse_pair(item[1])
            kernel = resolve(scheme, None, 8, argument="config.inits").kernel
        except (TypeError, ValueError) as e:
            raise type(e)(f"`config.inits`: {e}") from None
        out.append((item[0], kernel, act))
    if len({label for label, _, _ in out}) != len(out):
        raise ValueError(f"`config.inits` labels must be distinct, got {[o[0] for o in out]}.")
    return out


def classify(losses: np.ndarray, monotone_steps: int) -> str:
    """'monotone' (falls at each of the first `monotone_steps` steps and ends below its start),
    'catapult' (not monotone, but finite and ending below where it started) or 'diverged'."""
    losses = np.asarray(losses, np.float64)
    if not np.all(np.isfinite(losses)) or losses[-1] >= losses[0]:
        return "diverged"
    if np.all(np.diff(losses[:monotone_steps + 1]) <= 0):
        return "monotone"
    return "catapult"


def _layer_variances(kernel: Any, d: int, width: int, k: int) -> tuple[float, float, float]:
    """Var(W) x fan_in of the input (d, width), a hidden (width, width) and the readout
    (width, k) layer, exactly from `jwinit.describe` (an orthogonal init on a rectangular layer
    has Var = gain^2 / max(fan_in, fan_out))."""
    import jwinit

    return (jwinit.describe(kernel, (d, width)).variance * d,
            jwinit.describe(kernel, (width, width)).variance * width,
            jwinit.describe(kernel, (width, k)).variance * width)


def _measure(config: Any, data: Any, width: int, label: str, kernel: Any, act: str
             ) -> list[dict[str, Any]]:
    """Every seed's row for one (width, init)."""
    import jax
    import jax.numpy as jnp

    import jwinit
    from jwinit import theory

    n, k = int(config.examples), data.output_dim
    x = jnp.asarray(data.x_train[:n])
    y = jax.nn.one_hot(jnp.asarray(data.y_train[:n]), k)
    model = jwinit.models.MLP(depth=int(config.depth), width=width, output_dim=k,
                              activation=act)
    rules = {r"kernel$": kernel, r"bias$": jwinit.zeros()}
    keys = jax.random.split(jax.random.key(int(config.seed)), int(config.seeds))
    variables = [jwinit.init_params(model, key, x, rules) for key in keys]
    sw2 = _layer_variances(kernel, x.shape[1], width, k)
    infinite = None
    if np.isclose(sw2[1], sw2[2], rtol=1e-6):  # the kernel has one sigma_w2 after the input
        infinite = theory.kernel_fn(act, int(config.depth), sw2[1], 0.0,
                                    parameterization="standard", width=width,
                                    input_sigma_w2=sw2[0])
    reports = [jwinit.trainability(model, var, x, y, kernel=infinite) for var in variables]
    params = jax.tree.map(lambda *a: jnp.stack(a), *[var["params"] for var in variables])
    lr = np.array([r.lr_max for r in reports])
    mults = np.asarray(config.multipliers, np.float64)
    cats = np.asarray(config.catapult_multipliers, np.float64)
    mono_steps, cat_steps = int(config.monotone_steps), int(config.catapult_steps)
    curve_steps = int(config.curve_steps)

    def lrs(m: np.ndarray) -> Any:
        return jnp.asarray(lr[:, None] * m[None, :], jnp.float32)

    grid = np.asarray(gradient_descent(model, x, y, mono_steps)(params, lrs(mults)), np.float64)
    catapult = np.asarray(gradient_descent(model, x, y, cat_steps)(params, lrs(cats)), np.float64)
    trained, residuals = gradient_descent(model, x, y, curve_steps, outputs=True)(
        params, lrs(np.array([float(config.curve_multiplier)])))
    trained = np.asarray(trained, np.float64)[:, 0]
    residuals = np.asarray(residuals, np.float64)[:, 0]
    rows = []
    for s, r in enumerate(reports):
        falls = [bool(np.all(np.isfinite(g)) and np.all(np.diff(g) <= 0)) for g in grid[s]]
        measured = float(lr[s] * mults[falls].max()) if any(falls) else float("nan")
        curve_lr = float(lr[s] * config.curve_multiplier)
        predicted = r.loss_curve(curve_lr, curve_steps)
        linear = r.residual_curve(curve_lr, curve_steps)
        distance = np.linalg.norm((residuals[s] - linear).reshape(curve_steps + 1, -1), axis=1)
        departure = float(np.max(distance) / np.linalg.norm(linear[0]))
        loss_departure = float(np.max(np.abs(trained[s] - predicted) / predicted))
        rows.append({
            "width": width, "init": label, "activation": act, "seed": s,
            "sigma_w2_input": sw2[0], "sigma_w2": sw2[1], "sigma_w2_readout": sw2[2],
            "examples": n, "outputs": k,
            "lambda_max": r.lambda_max, "lambda_min": r.lambda_min, "condition": r.condition,
            "lr_predicted": r.lr_max,
            "lambda_max_infinite": None if r.infinite is None else r.infinite.lambda_max,
            "lr_predicted_infinite": None if r.infinite is None else r.infinite.lr_max,
            "lr_measured": measured, "ratio": measured / r.lr_max,
            "multipliers": mults.tolist(), "falls": falls, "grid_losses": grid[s].tolist(),
            "catapult_multipliers": cats.tolist(),
            "outcomes": [classify(c, mono_steps) for c in catapult[s]],
            "catapult_peaks": [float(np.max(c) / c[0]) for c in catapult[s]],
            "catapult_losses": catapult[s].tolist(),
            "curve_learning_rate": float(lr[s] * config.curve_multiplier),
            "trained_curve": trained[s].tolist(), "predicted_curve": predicted.tolist(),
            "departure": departure, "loss_departure": loss_departure,
        })
    return rows


def run(config: Any, workdir: str | pathlib.Path) -> dict[str, Any]:
    from jwinit.data import load
    from jwinit.results import append_rows
    from jwinit.schemes import resolve_scheme

    workdir = pathlib.Path(workdir)
    data = load(config.data)
    inits = _inits(config, resolve_scheme)
    widths = [int(w) for w in config.widths]
    out = workdir / "results.jsonl"
    rows = finished_rows(out, ("width", "init"), int(config.seeds))
    done = {(r["width"], r["init"]) for r in rows}
    todo = [(w, init) for w in widths for init in inits if (w, init[0]) not in done]
    total = len(widths) * len(inits)
    with progress_bar("networks", unit="networks") as update:
        update(total - len(todo), total)
        for i, (w, (label, kernel, act)) in enumerate(todo):
            new = _measure(config, data, w, label, kernel, act)
            append_rows(out, new)  # a (width, init) is on disk whole or not at all
            rows += new
            update(total - len(todo) + i + 1, total)
    summary = _summary(rows, inits, widths)
    columns = list(summary[0])
    write_csv(workdir / "summary.csv", summary, columns)
    checks = _checks(summary, config, widths)
    write_json(workdir / "checks.json", checks)
    plots = _plots(rows, config, inits, widths, workdir / "plots")
    reproduced = write_report(
        workdir, title=config.title, paper=config.paper,
        setup=(f"{data.summary()} ({config.data}); the first {config.examples} training "
               f"examples, one-hot targets, the mean squared error over examples and outputs, "
               f"plain full-batch gradient descent. MLPs of depth {config.depth} (hidden "
               f"layers), widths {widths}, zero biases; {config.seeds} seeds per network. "
               f"Predicted (jwinit.trainability): lr_max = n k / lambda_max of each seed's "
               f"empirical NTK, and of the infinite-width kernel at that width "
               f"(jwinit.theory.kernel_fn, standard parameterization). Measured: the largest "
               f"lr_max x {{{', '.join(f'{m:.3g}' for m in config.multipliers)}}} whose loss "
               f"falls at each of the first {config.monotone_steps} steps; the trained loss "
               f"curve at {config.curve_multiplier:g} lr_max over {config.curve_steps} steps "
               f"against the linearized model's (departure: max_t |r_t - r_t^lin| / |r_0| of the "
               f"residuals r = f(x) - y); {config.catapult_steps} steps at "
               f"{', '.join(f'{m:g}' for m in config.catapult_multipliers)} x lr_max "
               f"classified {', '.join(OUTCOMES)}."),
        not_covered=config.not_covered, checks=checks,
        tables=[("Per width and init (medians over seeds where a range is not given)", summary,
                 columns)], plots=plots)
    return {"networks": len(summary), "reproduced": reproduced,
            "report": str(workdir / "report.md")}


def _summary(rows: list[dict[str, Any]], inits: list[tuple[str, Any, str]], widths: list[int]
             ) -> list[dict[str, Any]]:
    out = []
    for w in widths:
        for label, _, act in inits:
            rs = [r for r in rows if r["width"] == w and r["init"] == label]
            ratios = np.array([r["ratio"] for r in rs])
            outcomes = {}
            for m_i, m in enumerate(rs[0]["catapult_multipliers"]):
                seen = sorted({r["outcomes"][m_i] for r in rs})
                outcomes[f"{m:g}x"] = "/".join(seen)
            out.append({
                "width": w, "init": label, "activation": act,
                "lr_predicted": float(np.median([r["lr_predicted"] for r in rs])),
                "lr_predicted_infinite": (
                    None if rs[0]["lr_predicted_infinite"] is None
                    else float(np.median([r["lr_predicted_infinite"] for r in rs]))),
                "lr_measured": float(np.median([r["lr_measured"] for r in rs])),
                "ratio_min": float(np.min(ratios)), "ratio_max": float(np.max(ratios)),
                "condition": float(np.median([r["condition"] for r in rs])),
                "departure_max": float(np.max([r["departure"] for r in rs])),
                "loss_departure_max": float(np.max([r["loss_departure"] for r in rs])),
                **{f"above lr_max {m}": o for m, o in outcomes.items()},
            })
    return out


def _checks(summary: list[dict[str, Any]], config: Any, widths: list[int]
            ) -> list[dict[str, Any]]:
    narrow, wide = widths
    factor, tol, lazy = (float(config.lr_factor), float(config.follow_tolerance),
                         float(config.lazy_ratio))
    by = {(s["width"], s["init"]): s for s in summary}
    labels = [s["init"] for s in summary if s["width"] == wide]
    within = {lab: 1 / factor <= by[wide, lab]["ratio_min"] and by[wide, lab]["ratio_max"]
              <= factor for lab in labels}
    follows = {lab: by[wide, lab]["departure_max"] <= tol for lab in labels}
    departs = {lab: by[narrow, lab]["departure_max"] >= lazy * by[wide, lab]["departure_max"]
               for lab in labels}
    cat_keys = [k for k in summary[0] if k.startswith("above lr_max")]
    outcomes = {lab: {k.split()[-1]: by[wide, lab][k] for k in cat_keys} for lab in labels}
    relu = [s["init"] for s in summary if s["width"] == wide and s["activation"] == "relu"]
    catapult_ok = all(any("catapult" in o for o in outcomes[lab].values())
                      and not any("diverged" in o for o in outcomes[lab].values())
                      for lab in relu)
    return [
        check(f"at width {wide} the largest learning rate whose loss falls monotonically is "
              f"within {factor:g}x of the NTK's n k / lambda_max, for every init",
              "Lee et al. 2019, Sec. 2.4 (eta_critical = 2 / lambda_max in their convention); "
              "Lewkowycz et al. 2020",
              "; ".join(f"{lab}: {by[wide, lab]['ratio_min']:.2f}-"
                        f"{by[wide, lab]['ratio_max']:.2f}x" for lab in labels),
              all(within.values())),
        check(f"at {config.curve_multiplier:g}x the predicted rate, the width-{wide} network "
              f"trains as its linearization: max_t |r_t - r_t^lin| / |r_0| <= {tol:g}",
              "Lee et al. 2019, Thm. 2.1 and Fig. 1 (wide networks evolve as linear models)",
              "; ".join(f"{lab}: {by[wide, lab]['departure_max']:.3f}" for lab in labels),
              all(follows.values())),
        check(f"the width-{narrow} network departs from its linearization at least {lazy:g}x "
              f"more than the width-{wide} one (theory: O(width^-1/2), "
              f"{(wide / narrow) ** 0.5:g}x)",
              "Lee et al. 2019, Thm. 2.1 (lazy training at large width); Chizat et al. 2019",
              "; ".join(f"{lab}: {by[narrow, lab]['departure_max']:.3f} against "
                        f"{by[wide, lab]['departure_max']:.3f} (width^-"
                        f"{_exponent(by, lab, narrow, wide):.2f})" for lab in labels),
              all(departs.values())),
        check(f"above lr_max, wide ReLU networks catapult (the loss rises, then falls below its "
              f"start) rather than diverge, at every multiplier tried up to "
              f"{max(config.catapult_multipliers):g}x", "Lewkowycz et al. 2020, Sec. 2-3",
              "; ".join(f"{lab}: " + ", ".join(f"{m} {o}" for m, o in outcomes[lab].items())
                        for lab in labels),
              catapult_ok),
    ]


def _exponent(by: dict, label: str, narrow: int, wide: int) -> float:
    """a in departure ~ width^-a, from the two widths."""
    ratio = by[narrow, label]["departure_max"] / by[wide, label]["departure_max"]
    return float(np.log(ratio) / np.log(wide / narrow))


def _plots(rows: list[dict[str, Any]], config: Any, inits: list[tuple[str, Any, str]],
           widths: list[int], folder: pathlib.Path) -> list[pathlib.Path]:
    plt = pyplot()
    if plt is None:
        return []
    colours = {label: f"C{i}" for i, (label, _, _) in enumerate(inits)}
    markers = dict(zip(widths, ("s", "o"), strict=True))
    out = []

    fig, ax = plt.subplots(figsize=(6.4, 5.2), constrained_layout=True)
    for r in rows:
        ax.scatter(r["lr_predicted"], r["lr_measured"], color=colours[r["init"]],
                   marker=markers[r["width"]], s=40, alpha=0.8)
    lo = min(min(r["lr_predicted"], r["lr_measured"]) for r in rows) / 2
    hi = max(max(r["lr_predicted"], r["lr_measured"]) for r in rows) * 2
    line = np.array([lo, hi])
    f = float(config.lr_factor)
    ax.plot(line, line, "k--", lw=1, label="theory: measured = n k / lambda_max")
    ax.fill_between(line, line / f, line * f, color="grey", alpha=0.15,
                    label=f"within {f:g}x")
    for label in colours:
        ax.scatter([], [], color=colours[label], label=label)
    for w, mk in markers.items():
        ax.scatter([], [], color="k", marker=mk, label=f"width {w}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("predicted largest stable learning rate, n k / lambda_max (NTK at init)")
    ax.set_ylabel(f"measured: largest lr whose loss falls for {config.monotone_steps} steps")
    ax.set_title("Largest stable learning rate: predicted from the NTK and measured\n"
                 "(every seed)", fontsize=10)
    ax.legend(fontsize=7)
    out.append(save_figure(fig, folder / "learning_rates.png"))
    plt.close(fig)

    fig, axes = plt.subplots(1, len(inits), figsize=(4 * len(inits), 3.8), squeeze=False,
                             constrained_layout=True)
    for ax, (label, _, _) in zip(axes[0], inits, strict=True):
        for w, style in zip(widths, (":", "-"), strict=True):
            rs = [r for r in rows if r["width"] == w and r["init"] == label]
            trained = np.array([r["trained_curve"] for r in rs])
            pred = np.array([r["predicted_curve"] for r in rs])
            t = np.arange(trained.shape[1])
            colour = "C0" if w == widths[1] else "C3"
            ax.fill_between(t, trained.min(0), trained.max(0), color=colour, alpha=0.25)
            ax.plot(t, np.median(trained, 0), style, color=colour, label=f"trained, width {w}")
            ax.plot(t, np.median(pred, 0), "--", color="k" if w == widths[1] else "0.5",
                    lw=1, label=f"NTK prediction, width {w}")
        ax.set_yscale("log")
        ax.set_xlabel("gradient descent step")
        ax.set_ylabel("train loss (MSE)")
        ax.set_title(f"{label}, lr = {config.curve_multiplier:g} lr_max", fontsize=10)
        ax.legend(fontsize=7)
    fig.suptitle("Loss curves against the linearized (NTK) prediction; band: seed range")
    out.append(save_figure(fig, folder / "loss_curves.png"))
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6.4, 5.0), constrained_layout=True)
    for label, colour in colours.items():
        rs = [r for r in rows if r["init"] == label]
        ax.scatter([r["width"] for r in rs], [r["departure"] for r in rs], color=colour,
                   alpha=0.7, label=f"{label} (each seed)")
        means = [np.mean([r["departure"] for r in rs if r["width"] == w]) for w in widths]
        ax.plot(widths, means, color=colour, lw=1)
    anchor = np.mean([r["departure"] for r in rows if r["width"] == widths[1]])
    w = np.array(widths, float)
    ax.plot(w, anchor * (w / w[1]) ** -0.5, "k--", lw=1.2,
            label="theory: O(width^-1/2) (Lee et al. 2019)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("width (hidden units per layer)")
    ax.set_ylabel("max_t |r_t - r_t^lin| / |r_0|")
    ax.set_title(f"Departure from the linearized model at {config.curve_multiplier:g} lr_max "
                 f"over {config.curve_steps} steps", fontsize=10)
    ax.legend(fontsize=7)
    out.append(save_figure(fig, folder / "departure.png"))
    plt.close(fig)

    wide = widths[1]
    fig, axes = plt.subplots(1, len(inits), figsize=(4 * len(inits), 3.8), squeeze=False,
                             constrained_layout=True)
    cmap = plt.get_cmap("viridis")
    for ax, (label, _, _) in zip(axes[0], inits, strict=True):
        rs = [r for r in rows if r["width"] == wide and r["init"] == label]
        cats = rs[0]["catapult_multipliers"]
        for i, m in enumerate(cats):
            losses = np.array([r["catapult_losses"][i] for r in rs])
            losses = np.where(np.isfinite(losses), losses, np.nan)
            colour = cmap(i / max(len(cats) - 1, 1))
            for s, curve in enumerate(losses):
                ax.plot(curve / curve[0], color=colour, lw=1,
                        label=f"{m:g} lr_max: {rs[0]['outcomes'][i]}" if s == 0 else None)
        ax.axhline(1.0, color="k", lw=0.8, ls="--", label="the loss at init")
        ax.set_yscale("log")
        ax.set_xlabel("gradient descent step")
        ax.set_ylabel("train loss / loss at init")
        ax.set_title(f"{label}, width {wide}", fontsize=10)
        ax.legend(fontsize=7)
    fig.suptitle(f"Above the linearized model's stability limit (width {wide}; each seed a "
                 "line): catapult or divergence")
    out.append(save_figure(fig, folder / "catapult.png"))
    plt.close(fig)
    return out

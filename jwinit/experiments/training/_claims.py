"""Per-(network, init, learning rate) summaries and the checks of a training config's claims."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from jwinit.experiments.common import check

#: Claim kind -> number of arguments after the reference.
CLAIMS = {"reaches": 3, "stalls": 4, "faster": 3, "saturates": 5, "better_activation": 3,
          "symmetric": 2, "accuracy_below": 4, "fails": 2, "lower_final_loss": 4,
          "loss_ratio": 6}

#: A loss within this of chance (ln classes) counts as "at chance".
CHANCE_BAND = 0.05


def _median(values: Sequence[float]) -> float:
    """The median over the finite values (a diverged run's metrics are NaN), NaN if none."""
    v = np.asarray(values, np.float64)
    v = v[~np.isnan(v)]
    return float(np.median(v)) if v.size else math.nan


class AllDiverged(ValueError):
    """Every run of an init diverged at every learning rate: there is no best learning rate."""


def summarize(results: dict[str, Any], at_init: dict[tuple[str, str], dict[str, Any]],
             target: float) -> list[dict[str, Any]]:
    out = []
    for act, r in results.items():
        per_run = r.summaries(target_loss=target)
        for init in r.inits:
            for lr in r.learning_rates:
                runs = [per_run[i] for i in r.select(init=init, learning_rate=lr)]
                st = [x["steps_to_target_loss"] for x in runs]
                alive = [x for x in runs if not x["diverged"]]
                out.append({
                    "network": act, "init": init, "learning_rate": lr,
                    # the medians are over the runs that did not diverge
                    "finite_runs": f"{len(alive)}/{len(runs)}",
                    "median_steps_to_target": _median(st),
                    "seeds_reaching_target": f"{sum(math.isfinite(s) for s in st)}/{len(st)}",
                    "median_final_train_loss": _median([x["final_train_loss"] for x in runs]),
                    **({"median_final_test_accuracy": _median(
                        [x["final_test_accuracy"] for x in runs])}
                       if r.task == "classification" else
                       {"median_final_test_loss": _median([x["final_test_loss"] for x in runs])}),
                    "diverged": _diverged_text(runs),
                    "output_rms_at_init": at_init[(act, init)]["output_rms"],
                    "probe_regime_at_init": at_init[(act, init)]["probe_regime"],
                    "xi_c_at_init": at_init[(act, init)]["xi_c"],
                })
        for init in r.inits:
            best = best_learning_rate([s for s in out if s["network"] == act
                                       and s["init"] == init])
            for s in out:
                if s["network"] == act and s["init"] == init:
                    s["best_learning_rate"] = s["learning_rate"] == best
    return out


def _diverged_text(runs: Sequence[dict[str, Any]]) -> str:
    """'0/4', or '1/4 (at step 50)', '2/4 (at steps 50, 100)'."""
    steps = sorted(x["diverged_step"] for x in runs if x["diverged"])
    if not steps:
        return f"0/{len(runs)}"
    where = ", ".join(str(s) for s in steps)
    return f"{len(steps)}/{len(runs)} (at step{'s' if len(steps) > 1 else ''} {where})"


def best_learning_rate(rows: Sequence[dict[str, Any]]) -> float | None:
    """The learning rate with the fewest median steps to the target, then the lowest median final
    train loss, among those where some run did not diverge; None if every run diverged."""
    def key(s):
        loss = s["median_final_train_loss"]
        return (s["median_steps_to_target"], loss if math.isfinite(loss) else math.inf)

    alive = [s for s in rows if not s["finite_runs"].startswith("0/")]
    return min(alive, key=key)["learning_rate"] if alive else None


def _rows(summary, act, init):
    return [s for s in summary if s["network"] == act and s["init"] == init]


def best_row(summary, act, init):
    """The summary row of the init's best learning rate; `AllDiverged` if it has none."""
    for s in _rows(summary, act, init):
        if s["best_learning_rate"]:
            return s
    raise AllDiverged(f"every run of {init} ({act}) diverged, at every learning rate")


def shown_row(summary, act, init):
    """The row a plot shows: the best learning rate's, or the first if every run diverged."""
    try:
        return best_row(summary, act, init)
    except AllDiverged:
        return _rows(summary, act, init)[0]


def check_claim(claim: Sequence[Any], results: dict[str, Any], summary: list[dict[str, Any]],
                config: Any, data: Any) -> dict[str, Any]:
    """The check of one claim; a claim about the best learning rate of an init whose runs all
    diverged fails, saying so."""
    try:
        return _check_claim(claim, results, summary, config, data)
    except AllDiverged as e:
        kind, ref, *args = claim
        return check(f"{kind}: {', '.join(map(str, args))}", ref, f"{e}: no learning rate to "
                     "judge the claim at", False)


def _check_claim(claim: Sequence[Any], results: dict[str, Any], summary: list[dict[str, Any]],
                 config: Any, data: Any) -> dict[str, Any]:
    kind, ref, *args = claim
    target = float(config.target_loss)
    if kind == "reaches":
        init, act, within = args
        r = results[act]
        b = best_row(summary, act, init)
        idx = r.select(init=init, learning_rate=b["learning_rate"])
        st = [r.summaries(target_loss=target)[i]["steps_to_target_loss"] for i in idx]
        return check(f"{init} ({act}) trains: every seed reaches train loss {target:g} within "
                     f"{within} steps", ref,
                     f"at learning rate {b['learning_rate']:g}: steps {st}",
                     all(s <= within for s in st))
    if kind == "stalls":
        init, act, multiple, other = args
        r = results[act]
        b = best_row(summary, act, other)
        idx = r.select(init=other, learning_rate=b["learning_rate"])
        other_steps = max(r.summaries(target_loss=target)[i]["steps_to_target_loss"]
                          for i in idx)
        chance = math.log(data.num_classes)
        leave, diverged = [], []
        for i in r.select(init=init):
            # a run leaves chance when its loss is first finite and below it; a diverged run
            # leaves it when it diverges (its loss is NaN from there on)
            below = np.flatnonzero(r.train_loss[i] < chance - CHANCE_BAND)
            step = float(r.eval_steps[below[0]]) if below.size else math.inf
            if r.diverged_step[i] >= 0:
                diverged.append(int(r.diverged_step[i]))
                step = min(step, float(r.diverged_step[i]))
            leave.append(step)
        need = multiple * other_steps
        first = min(leave)
        learned = [x for x, i in zip(leave, r.select(init=init), strict=True)
                   if r.diverged_step[i] < 0 or x < r.diverged_step[i]]
        parts = []
        if learned and math.isfinite(min(learned)):
            parts.append(f"first leaves chance at step {min(learned):g} (earliest of its "
                         f"{len(leave)} runs)")
        elif len(diverged) < len(leave):
            parts.append(f"never leaves chance in {int(r.eval_steps[-1])} steps (any of its "
                         f"{len(leave) - len(diverged)} runs that did not diverge)")
        if diverged:
            parts.append(f"{len(diverged)} of its {len(leave)} runs diverged (at steps "
                         f"{sorted(diverged)})")
        left = "; ".join(parts)
        return check(f"{init} ({act}) stalls at chance-level loss (within {CHANCE_BAND} of "
                     f"ln {data.num_classes} = {chance:.3f}) for at least {multiple}x the steps "
                     f"{other} needs to reach loss {target:g}, at every learning rate and seed",
                     ref, f"{other} needs {other_steps:g} steps (slowest seed, best learning "
                     f"rate); {init} {left}", math.isfinite(other_steps) and first >= need)
    if kind == "faster":
        a, b_, act = args
        ba, bb = best_row(summary, act, a), best_row(summary, act, b_)
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
        la, lb = best_row(summary, a, init), best_row(summary, b_, init)
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
    if kind == "fails":
        init, act = args
        r = results[act]
        per_run = r.summaries(target_loss=target)
        idx = r.select(init=init)
        reached = [i for i in idx if math.isfinite(per_run[i]["steps_to_target_loss"])]
        diverged = sum(per_run[i]["diverged"] for i in idx)
        with np.errstate(all="ignore"):
            best = float(np.nanmin([per_run[i]["best_train_loss"] for i in idx] + [np.inf]))
        return check(f"{init} ({act}) does not train: no run reaches train loss {target:g} at "
                     "any learning rate", ref,
                     f"{len(reached)} of {len(idx)} runs reach it; {diverged} diverge; the "
                     f"lowest train loss of any run is {best:.3g}", not reached)
    if kind == "lower_final_loss":
        init, net_a, net_b, lr = args
        finals = []
        for net in (net_a, net_b):
            r = results[net]
            finals.append([float(r.train_loss[r.index(init, lr, seed)][-1]) for seed in r.seeds])
        a, b_ = finals
        # a diverged run (NaN) counts as the worse one
        wins = [bool(x < y) or (math.isfinite(x) and not math.isfinite(y))
                for x, y in zip(a, b_, strict=True)]
        worse = lambda v: [x if math.isfinite(x) else math.inf for x in v]  # noqa: E731
        med_a, med_b = float(np.median(worse(a))), float(np.median(worse(b_)))
        return check(f"{init}: {net_a} ends with a lower train loss than {net_b} at learning "
                     f"rate {lr:g}: a lower median over seeds, and lower in most seeds", ref,
                     f"median {med_a:.3g} vs {med_b:.3g}; lower in {sum(wins)} of {len(wins)} "
                     f"seeds; final train loss by seed: {[round(x, 3) for x in a]} vs "
                     f"{[round(y, 3) for y in b_]}",
                     med_a < med_b and 2 * sum(wins) > len(wins))
    if kind == "loss_ratio":
        init_a, net_a, init_b, net_b, low, high = args
        la, lr_a = lowest_final_loss(summary, net_a, init_a)
        lb, lr_b = lowest_final_loss(summary, net_b, init_b)
        ratio = lb / la if la > 0 else math.inf
        if math.isinf(high):
            claim_text = f"lags at least {low:g}x behind"
        elif math.isclose(low * high, 1.0):
            claim_text = f"is within a factor {high:g} of"
        else:
            claim_text = f"ends {low:g} to {high:g} times as high as"
        return check(f"{init_b} ({net_b}) {claim_text} {init_a} ({net_a}): the ratio of their "
                     "lowest median final train losses over the learning rates", ref,
                     f"{lb:.4g} (lr {lr_b:g}) / {la:.4g} (lr {lr_a:g}) = {ratio:.3g}",
                     low <= ratio <= high)
    raise ValueError(f"unknown claim kind {kind!r}")


def lowest_final_loss(summary: list[dict[str, Any]], act: str, init: str) -> tuple[float, float]:
    """The lowest median final train loss of (network, init) over its learning rates, and that
    learning rate; a learning rate at which a run diverged counts as infinite loss."""
    rows = [s for s in _rows(summary, act, init) if s["diverged"].startswith("0/")]
    if not rows:
        raise AllDiverged(f"at every learning rate some run of {init} ({act}) diverged")
    best = min(rows, key=lambda s: s["median_final_train_loss"])
    return float(best["median_final_train_loss"]), float(best["learning_rate"])


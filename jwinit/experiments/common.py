"""Helpers shared by the experiments: config validation, scheme strings, plots, report tables."""

from __future__ import annotations

import contextlib
import math
import pathlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from jwinit._checks import check_choice, check_int, check_real
from jwinit.activations import get_activation
from jwinit.experiments.io import write_text
from jwinit.sweep import parse_pair, parse_scheme

__all__ = ["agreement_threshold", "lower_bound_threshold", "parse_scheme", "parse_pair",
           "markdown_table", "pyplot", "progress_bar", "last_progress", "run_writers",
           "interruptible", "writers_for", "write_report", "check",
           "config_int", "config_ints", "config_real", "config_reals", "config_choice",
           "config_activation", "config_pairs", "config_data", "config_claim", "require",
           "gradient_descent", "finished_rows", "config_one_hot_subset"]


# ------------------------------------------------------------------------------------------------
# config validation (every `validate(config)` of an experiment kind is written with these)


def require(config: Any, *names: str) -> None:
    """Every field in `names` is present."""
    missing = [n for n in names if config.get(n) is None]
    if missing:
        raise ValueError(f"the config has no field(s) {', '.join(missing)}; an experiment of "
                         f"kind {config.get('experiment')!r} needs them.")


def config_int(config: Any, name: str, *, minimum: int | None = 1) -> int:
    return check_int(config[name], f"config.{name}", minimum=minimum)


def config_ints(config: Any, name: str, *, minimum: int = 1) -> tuple[int, ...]:
    """A non-empty tuple of ints >= `minimum`."""
    values = config[name]
    if not isinstance(values, tuple | list) or not values:
        raise TypeError(f"`config.{name}` must be a non-empty tuple of ints, got {values!r}.")
    return tuple(check_int(v, f"config.{name}", minimum=minimum) for v in values)


def config_real(config: Any, name: str, **bounds: Any) -> float:
    return float(check_real(config[name], f"config.{name}", **bounds))


def config_reals(config: Any, name: str, **bounds: Any) -> tuple[float, ...]:
    """A non-empty tuple of reals within `bounds` (as `jwinit._checks.check_real`)."""
    values = config[name]
    if not isinstance(values, tuple | list) or not values:
        raise TypeError(f"`config.{name}` must be a non-empty tuple of numbers, got {values!r}.")
    return tuple(float(check_real(v, f"config.{name}", **bounds)) for v in values)


def config_choice(config: Any, name: str, legal: Sequence[Any]) -> Any:
    return check_choice(config[name], f"config.{name}", legal)


def config_activation(value: Any, name: str) -> str:
    """A registered activation name (as written in configs)."""
    try:
        get_activation(value)
    except (TypeError, ValueError) as e:
        raise type(e)(f"`config.{name}`: {e}") from None
    if not isinstance(value, str):
        raise TypeError(f"`config.{name}` must name an activation, got {value!r}.")
    return value


def config_pairs(config: Any, name: str = "pairs") -> list[tuple[Any, str]]:
    """'scheme+activation' strings, each parsed and checked against the registries."""
    values = config[name]
    if not isinstance(values, tuple | list) or not values:
        raise TypeError(f"`config.{name}` must be a non-empty tuple of 'scheme+activation' "
                        f"strings, got {values!r}.")
    out = []
    for text in values:
        try:
            scheme, act = parse_pair(text)
            config_activation(act, name)
        except (TypeError, ValueError) as e:
            raise type(e)(f"`config.{name}`: {e}") from None
        out.append((scheme, act))
    return out


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return "-" if v is None else str(v)

    lines = ["| " + " | ".join(columns) + " |", "| " + " | ".join("---" for _ in columns) + " |"]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def pyplot() -> Any:
    """matplotlib.pyplot with the non-interactive Agg backend, or None if matplotlib is missing."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def agreement_threshold(seeds: int, tests: int, family_error: float) -> float:
    """|measured - theory| / SE above which a moment disagrees: the two-sided Student-t quantile
    (seeds - 1 degrees of freedom) at level family_error / tests (Bonferroni), so that, the theory
    being exact, all `tests` pass with probability at least 1 - family_error.

    >>> round(agreement_threshold(12, 36, 0.01), 2)
    5.24
    """
    from scipy import stats  # a dependency of jax

    return float(stats.t.ppf(1 - family_error / (2 * tests), seeds - 1))


def lower_bound_threshold(seeds: int, tests: int, family_error: float) -> float:
    """The one-sided Student-t quantile (seeds - 1 degrees of freedom) at level family_error /
    tests: a seed mean minus this many standard errors is a lower confidence bound that holds for
    all `tests` at once with probability at least 1 - family_error.

    >>> round(lower_bound_threshold(4, 1, 0.01), 2)
    4.54
    """
    from scipy import stats  # a dependency of jax

    return float(stats.t.ppf(1 - family_error / tests, seeds - 1))


def config_data(config: Any) -> str:
    """`config.data`: a dataset shipped with jwinit or a path to an .npz file."""
    from jwinit.data import DATASETS

    value = config.data
    if not isinstance(value, str) or not (value in DATASETS or value.endswith(".npz")):
        raise ValueError(f"`config.data` must be one of {DATASETS} or a path to an .npz file, "
                         f"got {value!r}.")
    return value


def config_one_hot_subset(config: Any) -> None:
    """`config.data` is a classification dataset (its one-hot labels are the regression
    targets) with at least `config.examples` (>= 2) training examples."""
    from jwinit.data import load

    data = load(config.data)
    if data.task != "classification":
        raise ValueError(f"`config.data` must be a classification dataset (its one-hot labels are "
                         f"the regression targets), got {config.data!r} ({data.task}).")
    n = config_int(config, "examples", minimum=2)
    if n > len(data.x_train):
        raise ValueError(f"`config.examples` must be at most the training set's size "
                         f"{len(data.x_train)} ({config.data!r}), got {n}.")


def config_claim(claim: Any, kinds: Mapping[str, int]) -> tuple[Any, ...]:
    """One claim of `config.claims`: (kind, reference, *arguments), with `kinds[kind]` arguments."""
    if not isinstance(claim, tuple | list) or not claim or claim[0] not in kinds:
        raise ValueError(f"`config.claims`: each claim is (kind, reference, ...) with kind in "
                         f"{sorted(kinds)}, got {claim!r}.")
    if len(claim) != 2 + kinds[claim[0]]:
        raise ValueError(f"`config.claims`: a {claim[0]!r} claim takes {kinds[claim[0]]} "
                         f"arguments after the reference, got {claim!r}.")
    return tuple(claim)


def check(claim: str, reference: str, measured: str, passed: bool) -> dict[str, Any]:
    """One of a paper's claims, where the paper makes it, what this run measured, and whether the
    measurement reproduces it."""
    return {"claim": claim, "reference": reference, "measured": measured, "passed": bool(passed)}


def write_report(workdir: pathlib.Path, *, title: str, paper: str, setup: str,
                 checks: Sequence[Mapping[str, Any]],
                 tables: Sequence[tuple[str, Sequence[Mapping[str, Any]], Sequence[str]]] = (),
                 plots: Sequence[pathlib.Path] = (), not_covered: str = "",
                 notes: str = "") -> str:
    """Write report.md and return ``'<passed>/<checks>'``.

    The report opens with the verdict (how many of the paper's claims were reproduced), then
    each claim next to what was measured, the setup, what the config does not cover, the result
    tables and the plots.
    """
    ok = sum(bool(c["passed"]) for c in checks)
    lines = [
        f"# {title}", "",
        f"**Reproduced: {ok} of {len(checks)} checks.**", "",
        f"Paper: {paper}", "",
        "## The paper's claims and what this run measured", "",
        "| | claim | where | measured |", "| --- | --- | --- | --- |",
        *[f"| {'PASS' if c['passed'] else 'FAIL'} | {c['claim']} | {c['reference']} | "
          f"{c['measured']} |" for c in checks],
        "",
        "## Setup", "", setup.strip(), "",
    ]
    if not_covered:
        lines += ["## Not covered by this config", "", not_covered.strip(), ""]
    if notes:
        lines += ["## Notes", "", notes.strip(), ""]
    for heading, rows, columns in tables:
        lines += [f"## {heading}", "", markdown_table(rows, columns), ""]
    if plots:
        lines += ["## Plots", "", *[f"![{p.stem}](plots/{p.name})" for p in plots], ""]
    write_text(workdir / "report.md", "\n".join(lines))
    return f"{ok}/{len(checks)}"


_LAST_PROGRESS: list[str] = []

#: The metric writers of the run in progress (`jwinit run --writer=...`), set by the runner.
_WRITERS: list[Any] = []


@contextlib.contextmanager
def run_writers(writers: Sequence[Any]) -> Any:
    """Make `writers` the run's metric writers while the block lasts; closed at its end."""
    _WRITERS[:] = list(writers)
    try:
        yield
    finally:
        for w in _WRITERS:
            w.close()
        _WRITERS.clear()


def writers_for(network: str, **hparams: Any) -> list[Any]:
    """The run's writers for one trained network: run names under ``<network>/``, `hparams`
    (and the network's name) added to every run's hyperparameters."""
    from jwinit.writers import scoped

    return [scoped(w, network, network=network, **hparams) for w in _WRITERS]


def last_progress() -> str | None:
    """The last progress a `progress_bar` of this process reported, e.g. 'training: 1200/4000
    steps' (what an interrupted run had done), or None."""
    return _LAST_PROGRESS[-1] if _LAST_PROGRESS else None


def _remember(description: str, done: int, total: int, unit: str) -> None:
    _LAST_PROGRESS[:] = [f"{description}: {done}/{total} {unit}"]
    if _INTERRUPTED:  # a Ctrl-C whose KeyboardInterrupt was lost (raised inside a finalizer)
        raise KeyboardInterrupt


#: Set by `interruptible`'s SIGINT handler: a run stops at its next progress update at the latest.
_INTERRUPTED: list[bool] = []


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Ctrl-C (SIGINT) while the block lasts raises KeyboardInterrupt, as Python's own handler
    does, and is also remembered: Python drops an exception raised inside a finalizer (a
    ``__del__`` that the signal happened to interrupt: "Exception ignored in ..."), so every
    progress update of the run raises it again until the run has stopped. Outside the main
    thread it does nothing."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        _INTERRUPTED[:] = [True]
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    _INTERRUPTED.clear()
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _INTERRUPTED.clear()


@contextlib.contextmanager
def progress_bar(description: str, *, console: Any = None, unit: str = "cells"
                 ) -> Iterator[Callable[[int, int], None]]:
    """Progress of a long run; yields ``update(done, total)`` (the `progress` callback of
    `jwinit.sweep.sweep`). The first call's `done` is what a resumed run read back: it is shown as
    such and the ETA counts only the cells computed since.

    On a terminal: a live rich bar with the count, the elapsed time and an ETA. In a log (not a
    terminal): a line per update that moved (at most one per 5% of the work or per 10 s),
    ``<description>: 8/75 cells (11%), 4 s elapsed, ETA 31 s`` (``..., 3 read back, ...`` after a
    resume).
    """
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = console or Console(stderr=True)
    start = time.perf_counter()
    last = [-1, -math.inf]  # the last count logged, and when
    resumed: list[int] = []

    def log_line(done: int, total: int) -> None:
        _remember(description, done, total, unit)
        if not resumed:
            resumed.append(done)
        if done == last[0] or total <= 0:
            return
        now = time.perf_counter()
        # at most one line per 5% of the work or per 10 s (and always the first and the last)
        if (last[0] >= 0 and done < total and done - last[0] < total / 20
                and now - last[1] < 10):
            return
        last[0], last[1] = done, now
        elapsed = time.perf_counter() - start
        computed = done - resumed[0]
        eta = elapsed / computed * (total - done) if computed > 0 else math.nan
        console.print(f"{description}: {done}/{total} {unit} ({100 * done / total:.0f}%), "
                      + (f"{resumed[0]} read back, " if resumed[0] else "")
                      + f"{elapsed:.0f} s elapsed"
                      + ("" if math.isnan(eta) else f", ETA {eta:.0f} s"),
                      highlight=False, soft_wrap=True)

    if not console.is_terminal:
        yield log_line
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn(unit), TimeElapsedColumn(), TextColumn("ETA"),
                  TimeRemainingColumn(), console=console) as bar:
        task: list[Any] = []

        def update(done: int, total: int) -> None:
            _remember(description, done, total, unit)
            if not task:  # read-back cells start the bar: they do not count in its speed
                label = description + (f" ({done} read back)" if done else "")
                task.append(bar.add_task(label, total=total, completed=done))
            bar.update(task[0], completed=done, total=total)

        yield update


def gradient_descent(model: Any, x: Any, y: Any, steps: int, *, outputs: bool = False) -> Any:
    """Plain full-batch gradient descent on the mean squared error of a linen `model` (no other
    variable collections) on (x, y), as one compiled program: params (seeds, ...) stacked over
    seeds, lrs (seeds, m) -> the loss at steps 0..`steps`, (seeds, m, steps + 1), and with
    `outputs` the residual f(x) - y at each of those steps, (seeds, m, steps + 1, n, k)."""
    import jax
    import jax.numpy as jnp

    def residual(p: Any) -> Any:
        return model.apply({"params": p}, x) - y

    def loss(p: Any) -> Any:
        r = residual(p)
        return jnp.mean(r ** 2), r

    def one(p: Any, lr: Any) -> Any:
        def step(q: Any, _: Any) -> Any:
            (value, r), g = jax.value_and_grad(loss, has_aux=True)(q)
            return (jax.tree.map(lambda a, b: a - lr * b, q, g),
                    (value, r) if outputs else value)

        q, seen = jax.lax.scan(step, p, None, length=steps)
        last, r = loss(q)
        if outputs:
            return (jnp.concatenate([seen[0], last[None]]),
                    jnp.concatenate([seen[1], r[None]]))
        return jnp.concatenate([seen, last[None]])

    per_seed = jax.vmap(one, in_axes=(None, 0))
    return jax.jit(jax.vmap(per_seed, in_axes=(0, 0)))


def finished_rows(path: Any, keys: Sequence[str], per_group: int) -> list[dict[str, Any]]:
    """The rows of the results file `path` (none if it does not exist) whose group (their
    values of `keys`) is whole, `per_group` rows; the rows of a group an interruption cut short
    are removed from the file (atomically), to be computed again by the resumed run."""
    import os

    from jwinit.results import dumps, read_rows

    if not os.path.exists(path):
        return []
    rows = read_rows(path)
    counts: dict[tuple[Any, ...], int] = {}
    for r in rows:
        group = tuple(r[k] for k in keys)
        counts[group] = counts.get(group, 0) + 1
    whole = [r for r in rows if counts[tuple(r[k] for k in keys)] == per_group]
    if len(whole) != len(rows):
        write_text(path, "".join(dumps(r) + "\n" for r in whole))
    return whole


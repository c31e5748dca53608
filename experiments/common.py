"""Helpers shared by the experiments: config validation, scheme strings, plots, report tables."""

from __future__ import annotations

import contextlib
import pathlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from experiments.io import write_text
from jwinit._checks import check_choice, check_int, check_real
from jwinit.activations import get_activation
from jwinit.sweep import parse_pair, parse_scheme

__all__ = ["parse_scheme", "parse_pair", "markdown_table", "pyplot", "write_checks_report",
           "progress_bar", "config_int", "config_ints", "config_real", "config_reals",
           "config_choice", "config_activation", "config_pairs", "require"]


# ------------------------------------------------------------------------------------------------
# config validation (every `validate(config)` of an experiment kind is written with these)


def require(config: Any, *names: str) -> None:
    """Every field in `names` is present."""
    missing = [n for n in names if n not in config]
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


def write_checks_report(workdir: pathlib.Path, *, title: str, intro: str,
                        checks: Sequence[Mapping[str, Any]], summary: Sequence[Mapping[str, Any]],
                        columns: Sequence[str], plots: Sequence[pathlib.Path]) -> str:
    """Write report.md: the title, the setup, each check PASS/FAIL, the table and the plots.

    Returns ``'<passed>/<checks>'``.
    """
    ok = sum(bool(c["passed"]) for c in checks)
    report = [
        f"# {title}", "", intro, "",
        f"**Reproduced: {ok} of {len(checks)} checks.**", "",
        *[f"- {'PASS' if c['passed'] else 'FAIL'}: {c['claim']} ({c['detail']})" for c in checks],
        "",
        markdown_table(summary, columns), "",
        *[f"![{p.stem}](plots/{p.name})" for p in plots], "",
    ]
    write_text(workdir / "report.md", "\n".join(report))
    return f"{ok}/{len(checks)}"


@contextlib.contextmanager
def progress_bar(description: str, *, console: Any = None
                 ) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar on the terminal; yields ``update(done, total)``.

    The bar is shown only when the console is a terminal (logs and tests stay clean); `update`
    is the `progress` callback `jwinit.sweep.sweep` takes.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = console or Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console,
                  disable=not console.is_terminal) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


"""Helpers shared by the experiments: scheme strings, plotting setup, report tables."""

from __future__ import annotations

import contextlib
import pathlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from experiments.io import write_text
from jwinit.sweep import parse_pair, parse_scheme

__all__ = ["parse_scheme", "parse_pair", "markdown_table", "pyplot", "write_checks_report",
           "progress_bar"]


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


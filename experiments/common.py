"""Helpers shared by the experiments: scheme strings, plotting setup, report tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from jwinit.sweep import parse_pair, parse_scheme

__all__ = ["parse_scheme", "parse_pair", "markdown_table", "pyplot"]


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

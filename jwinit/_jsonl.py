"""Append-only JSON-lines files that survive an interrupted run, in standard JSON.

Rows are appended whole and flushed to disk; a final line cut short by a crash or a kill is
ignored when reading and removed before the next append, so a rerun resumes from every row that
was written completely.

The files are standard JSON, which has no NaN or infinity: non-finite floats are written as the
strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (what ``JSON.stringify`` users and
``float()`` both understand) and read back as floats.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from typing import Any

__all__ = ["read_rows", "append_rows", "encode", "decode", "dumps"]

_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def encode(value: Any) -> Any:
    """`value` with every non-finite float replaced by its string (recursively)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    return value


def decode(value: Any) -> Any:
    """The inverse of `encode`."""
    if isinstance(value, str) and value in _NONFINITE:
        return _NONFINITE[value]
    if isinstance(value, dict):
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def dumps(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` of `obj` in standard JSON (non-finite floats encoded; NaN never bare)."""
    return json.dumps(encode(obj), allow_nan=False, **kwargs)


def read_rows(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The rows of `path`; a final line without its newline that is not valid JSON is skipped.

    Raises:
      ValueError: a complete line (one ending in a newline) is not JSON: the file was damaged by
        something other than an interrupted append, so it is not silently dropped.
    """
    with open(path, encoding="utf-8") as f:
        text = f.read()
    lines = text.split("\n")
    rows = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(decode(json.loads(line)))
        except json.JSONDecodeError:
            if i == len(lines) - 1:  # the last line, cut short by an interrupted append
                continue
            raise ValueError(f"{os.fspath(path)!r}, line {i + 1}: not a JSON row ({line[:60]!r}); "
                             "the results file is damaged.") from None
    return rows


def _drop_partial_tail(path: str) -> None:
    """Truncate `path` after its last newline (removing a line cut short by a crash)."""
    with open(path, "rb+") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        if size == 0:
            return
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return
        f.seek(0)
        data = f.read()
        f.truncate(data.rfind(b"\n") + 1)


def append_rows(path: str | os.PathLike[str], rows: Iterable[dict[str, Any]]) -> None:
    """Append `rows` to `path` (one JSON object per line), flushed and fsynced."""
    rows = list(rows)
    if not rows:
        return
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if os.path.exists(path):
        _drop_partial_tail(path)
    with open(path, "a", encoding="utf-8") as f:
        f.write("".join(dumps(row) + "\n" for row in rows))
        f.flush()
        os.fsync(f.fileno())

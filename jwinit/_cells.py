"""Resumable cells: rows of a JSON-lines file, keyed by every field that changes a row.

Every resumable computation in jwinit (the sweep, each experiment kind, the trainer's runs) writes
one row per finished cell and, on a rerun, skips the cells whose key is already in the file. The key
of a row is the tuple of its `key_fields`, normalized so that what JSON gives back compares equal to
what was computed (floats stay floats, lists become tuples). A cell is only reused when *all* its
key fields match, so a rerun with another batch, seed, precision or bias recomputes.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from jwinit._jsonl import append_rows, read_rows

__all__ = ["ResumableCells", "normalize"]


def normalize(value: Any) -> Any:
    """A hashable, JSON-stable form of `value` (lists -> tuples, ints that are floats -> floats)."""
    if isinstance(value, list | tuple):
        return tuple(normalize(v) for v in value)
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), normalize(v)) for k, v in value.items()))
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return "nan" if math.isnan(value) else value
    return str(value)


class ResumableCells:
    """The finished cells of one results file.

    Args:
      path: the JSON-lines file (None: nothing is read or written; every cell is new).
      key_fields: the row fields that identify a cell (everything that changes its values).
      resume: read the rows already in `path` (False: start from none; rows are still appended).

    Examples:
      >>> import tempfile, os
      >>> path = os.path.join(tempfile.mkdtemp(), "rows.jsonl")
      >>> cells = ResumableCells(path, ("name", "depth"))
      >>> cells.add([{"name": "a", "depth": 2, "value": 1.5}])
      >>> ResumableCells(path, ("name", "depth")).get({"name": "a", "depth": 2})["value"]
      1.5
    """

    def __init__(self, path: str | os.PathLike[str] | None, key_fields: Sequence[str], *,
                 resume: bool = True):
        self.path = None if path is None else os.fspath(path)
        self.key_fields = tuple(key_fields)
        self._rows: dict[tuple[Any, ...], dict[str, Any]] = {}
        if self.path is not None and resume and os.path.exists(self.path):
            for row in read_rows(self.path):
                if all(k in row for k in self.key_fields):
                    self._rows[self.key(row)] = row

    def key(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        """The normalized key of `row` (a row or a dict holding at least the key fields)."""
        return tuple(normalize(row[k]) for k in self.key_fields)

    def get(self, cell: Mapping[str, Any]) -> dict[str, Any] | None:
        """The finished row of `cell`, or None."""
        return self._rows.get(self.key(cell))

    def __contains__(self, cell: Mapping[str, Any]) -> bool:
        return self.key(cell) in self._rows

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Record finished rows: appended (flushed, fsynced) to the file and indexed."""
        rows = [dict(r) for r in rows]
        new = [r for r in rows if self.key(r) not in self._rows]
        if self.path is not None and new:
            append_rows(self.path, new)
        for r in rows:
            self._rows[self.key(r)] = r

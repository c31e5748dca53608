"""Results files: what every resumable computation in jwinit writes, and how to read it back.

* **Atomic writes** (`atomic_path`): a file is written beside its destination and renamed over it
  in one step. A temporary file is named ``.tmp-<stem>.<random><suffix>`` in the destination's
  folder, so a reader never sees a half-written file and a killed writer leaves only temporary
  files (which ``jwinit run`` removes when it claims a workdir).
* **JSON-lines rows** (`read_rows`, `append_rows`): append-only files that survive an interrupted
  run. Rows are appended whole, flushed and fsynced; a final line cut short by a crash or a kill
  is ignored when reading and removed before the next append, so a rerun resumes from every row
  that was written completely. The files are standard JSON, which has no NaN or infinity:
  non-finite floats are written as the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``
  (what ``float()`` understands) and read back as floats (`encode`, `decode`, `dumps`).
* **Array files** (`read_npz`): an ``.npz`` file read without pickles (an object array is refused,
  never unpickled), every array loaded, and a file that is missing, a folder, not an ``.npz`` or
  cut short named in a one-line error (`DamagedFileError` for the last two).
* **Resumable cells** (`ResumableCells`): rows keyed by every field that changes a row. The sweep,
  each experiment kind and the trainer write one row per finished cell and, on a rerun, skip the
  cells whose key is already in the file. The key of a row is the tuple of its `key_fields`,
  normalized so that what JSON gives back compares equal to what was computed (floats stay
  floats, lists become tuples). A cell is only reused when *all* its key fields match, so a rerun
  with another batch, seed, precision or bias recomputes.

Read a run's rows (``jwinit run`` writes ``<workdir>/results.jsonl``)::

    from jwinit.results import read_rows
    rows = read_rows("runs/he2015/results.jsonl")
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import pathlib
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["read_rows", "append_rows", "encode", "decode", "dumps", "atomic_path", "TEMP_PREFIX",
           "ResumableCells", "normalize", "read_npz", "DamagedFileError"]


# ------------------------------------------------------------------------------------------------
# atomic writes

#: Prefix of the temporary files atomic writes use.
TEMP_PREFIX = ".tmp-"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[str]:
    """Yield a temporary file beside `path`; on success it replaces `path` in one rename (with
    the permissions a new file would get), on failure it is removed."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{TEMP_PREFIX}{path.stem}.",
                               suffix=path.suffix)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# ------------------------------------------------------------------------------------------------
# JSON-lines rows

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


# ------------------------------------------------------------------------------------------------
# resumable cells

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


class DamagedFileError(ValueError):
    """An ``.npz`` file that cannot be read whole: not a zip archive, cut short, or holding an
    object (pickled) array. `damaged` is False when the file is not an ``.npz`` at all (it may be
    a user's file of another kind, so jwinit never overwrites it) and True when it is a zip
    archive that cannot be read whole (for example a file cut short by a full disk)."""

    def __init__(self, message: str, *, damaged: bool = True):
        super().__init__(message)
        self.damaged = damaged


def read_npz(path: str | os.PathLike[str], *, what: str = "array file") -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` file at `path`, loaded, with ``allow_pickle=False``.

    `what` names the file in errors ("dataset file", "checkpoint", ...).

    Raises:
      FileNotFoundError: there is no file at `path`.
      IsADirectoryError: `path` is a folder.
      DamagedFileError (a ValueError): the file is not an ``.npz`` (``damaged=False``), or it is a
      zip archive that cannot be read whole, or it holds an object array (``damaged=True``).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no {what} {path!r}.")
    if os.path.isdir(path):
        raise IsADirectoryError(f"the {what} {path!r} is a folder; an .npz file is needed.")
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            head = f.read(4)
        if head[:2] == b"PK":
            raise DamagedFileError(f"the {what} {path!r} is damaged (a zip archive whose end is "
                                   "missing, e.g. cut short while it was copied or written).",
                                   damaged=True)
        raise DamagedFileError(f"the {what} {path!r} is not an .npz file (it does not start as a "
                               "zip archive).", damaged=False)
    try:
        with np.load(path, allow_pickle=False) as f:
            return {name: np.asarray(f[name]) for name in f.files}
    except ValueError as e:
        if "pickle" not in str(e):
            raise
        raise DamagedFileError(f"the {what} {path!r} holds an object (pickled) array; jwinit "
                               "reads numeric arrays only and never unpickles.",
                               damaged=True) from None
    except (zipfile.BadZipFile, EOFError, OSError, KeyError) as e:
        raise DamagedFileError(f"the {what} {path!r} is damaged ({type(e).__name__}: {e}).",
                               damaged=True) from None

"""Atomic, resumable, locked output: nothing a run wrote is ever half-written or overwritten.

* Every file is written to a temporary file beside it (``.tmp-<name>.<random>``) and renamed over
  it in one step; a temporary file a killed run left behind is removed when the workdir is next
  claimed.
* A workdir is claimed for one config (``config.json``) and locked while a run uses it: a second
  run into the same workdir fails at once, naming the process that holds it.
* JSON is standard JSON: non-finite floats are written as the strings "NaN", "Infinity",
  "-Infinity" (see `jwinit.results`), never as bare NaN.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import json
import os
import pathlib
import socket
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from jwinit.results import TEMP_PREFIX, append_rows, atomic_path, decode, dumps, read_rows

__all__ = ["write_text", "write_json", "read_json", "write_csv", "save_figure", "claim_workdir",
           "read_rows", "append_rows", "TEMP_PREFIX", "LOCK_NAME"]

#: The lock file of a workdir.
LOCK_NAME = ".lock"




def write_text(path: str | os.PathLike[str], text: str) -> pathlib.Path:
    """Write `text` to `path` atomically (temporary file in the same folder, then rename)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    return pathlib.Path(path)


def write_json(path: str | os.PathLike[str], obj: Any) -> pathlib.Path:
    """Write `obj` as standard JSON (non-finite floats as strings), atomically."""
    return write_text(path, dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_csv(path: str | os.PathLike[str], rows: Sequence[Mapping[str, Any]],
              columns: Sequence[str] | None = None) -> pathlib.Path:
    columns = list(columns or _columns(rows))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: _cell(r.get(k)) for k in columns})
    return write_text(path, buf.getvalue())


def save_figure(fig: Any, path: str | os.PathLike[str]) -> pathlib.Path:
    """Save a matplotlib figure atomically (format from the suffix, e.g. PNG)."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight")
    return pathlib.Path(path)


@contextlib.contextmanager
def claim_workdir(workdir: str | os.PathLike[str],
                  config_json: Mapping[str, Any]) -> Iterator[pathlib.Path]:
    """Claim `workdir` for this config while the ``with`` block runs.

    Creates the workdir (or accepts one that holds a run of the same config), takes its lock,
    removes temporary files a killed run left behind, and yields the workdir path. The lock is
    released when the block ends (or the process dies).

    Raises:
      BlockingIOError: another run holds the workdir (the message names its process, host and
        start time).
      FileExistsError: `workdir` holds a run of a different config (its results are kept).
    """
    workdir = pathlib.Path(workdir)
    if workdir.exists() and not workdir.is_dir():
        raise FileExistsError(f"`workdir` {str(workdir)!r} is a file, not a folder.")
    workdir.mkdir(parents=True, exist_ok=True)
    lock_path = workdir / LOCK_NAME
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = lock_path.read_text(encoding="utf-8").strip() or "another process"
            raise BlockingIOError(
                f"`workdir` {str(workdir)!r} is in use by another run ({holder}); wait for it to "
                "finish or choose another --workdir."
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, (f"pid {os.getpid()} on {socket.gethostname()} since "
                      f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n").encode())
        _check_stamp(workdir, config_json)
        for tmp in workdir.rglob(f"{TEMP_PREFIX}*"):
            with contextlib.suppress(OSError):
                tmp.unlink()
        yield workdir
    finally:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)


def _check_stamp(workdir: pathlib.Path, config_json: Mapping[str, Any]) -> None:
    stamp = workdir / "config.json"
    text = dumps(config_json, indent=2, sort_keys=True, default=str) + "\n"
    if stamp.exists():
        try:
            stamped = read_json(stamp)
        except (ValueError, UnicodeDecodeError) as e:
            raise FileExistsError(
                f"`workdir` {str(workdir)!r} has a config.json that is not readable JSON "
                f"({type(e).__name__}: {e}): it was damaged or is not a jwinit run; nothing was "
                "changed: choose another --workdir, or repair or remove that file."
            ) from None
        if stamped != json.loads(text):
            raise FileExistsError(
                f"`workdir` {str(workdir)!r} holds a run of a different config ({stamp}); choose "
                "another --workdir (existing results are never overwritten)."
            )
    else:
        others = sorted(p.name for p in workdir.iterdir()
                        if p.name != LOCK_NAME and not p.name.startswith(TEMP_PREFIX))
        if others:
            raise FileExistsError(
                f"`workdir` {str(workdir)!r} holds files but no config.json (e.g. "
                f"{others[:3]}): whatever run wrote them is unknown, and a run here would mix "
                "its rows with theirs; choose another --workdir (nothing was changed)."
            )
        write_text(stamp, text)


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a file written by `write_json` (strings for non-finite floats decoded)."""
    return decode(json.loads(pathlib.Path(path).read_text(encoding="utf-8")))


def _columns(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    cols: list[str] = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    return cols


def _cell(v: Any) -> Any:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, list | tuple):
        return dumps(v)
    return v

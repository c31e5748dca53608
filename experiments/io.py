"""Atomic, resumable output: nothing a run wrote is ever half-written or silently overwritten."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import pathlib
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from jwinit._jsonl import append_rows, read_rows

__all__ = ["write_text", "write_json", "write_csv", "save_figure", "claim_workdir", "read_rows",
           "append_rows"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def _atomic(path: str | os.PathLike[str]) -> Iterator[str]:
    """Yield a temporary file beside `path`; on success it replaces `path` in one rename."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_text(path: str | os.PathLike[str], text: str) -> pathlib.Path:
    """Write `text` to `path` atomically (temporary file in the same folder, then rename)."""
    with _atomic(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    return pathlib.Path(path)


def write_json(path: str | os.PathLike[str], obj: Any) -> pathlib.Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


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
    with _atomic(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight")
    return pathlib.Path(path)


def claim_workdir(workdir: str | os.PathLike[str], config_json: Mapping[str, Any]) -> pathlib.Path:
    """Create `workdir` for this config, or accept it if it holds a run of the same config.

    Raises:
      FileExistsError: `workdir` holds a run of a different config (so its results are kept).
    """
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    stamp = workdir / "config.json"
    text = json.dumps(config_json, indent=2, sort_keys=True, default=str) + "\n"
    if stamp.exists():
        if json.loads(stamp.read_text()) != json.loads(text):
            raise FileExistsError(
                f"`workdir` {str(workdir)!r} holds a run of a different config ({stamp}); choose "
                "another --workdir (existing results are never overwritten)."
            )
    else:
        write_text(stamp, text)
    return workdir


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
        return json.dumps(v)
    return v

"""Atomic file writes: a file is written beside its destination and renamed over it in one step.

A temporary file is named ``.tmp-<stem>.<random><suffix>`` in the destination's folder, so a
reader never sees a half-written file and a killed writer leaves only temporary files, which
`jwinit.experiments.io.claim_workdir` removes.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import tempfile
from collections.abc import Iterator

__all__ = ["atomic_path", "TEMP_PREFIX"]

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

"""The trainer's progress line on a terminal: steps done, rate, elapsed time and ETA.

One line, rewritten in place (``\\r``), at most once per `min_interval` seconds and always at the
end; the rate and the ETA count only the time since the program was compiled, so the compile does
not inflate the estimate.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

__all__ = ["ProgressLine", "progress_callback"]


def _seconds(s: float) -> str:
    if s < 60:
        return f"{s:.1f} s"
    m, s = divmod(int(round(s)), 60)
    return f"{m}:{s:02d}" if m < 60 else f"{m // 60}:{m % 60:02d}:{s:02d}"


class ProgressLine:
    """``line(done, total)`` writes ``train: 200/400 steps (50%), 12 runs, 812 steps/s, 0.3 s,
    ETA 0.3 s``; ``line.started()`` marks the end of the compile; the last step ends the line."""

    def __init__(self, runs: int, stream: TextIO, *, min_interval: float = 0.5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.runs, self.stream, self.min_interval, self.clock = runs, stream, min_interval, clock
        self.t0 = clock()
        self.start_time: float | None = None
        self.start_step = 0
        self.last_write = -float("inf")
        self.writes = 0
        self.width = 0

    def started(self, done: int) -> None:
        """The compile is over and stepping starts at step `done`."""
        self.start_time, self.start_step = self.clock(), done

    def __call__(self, done: int, total: int) -> None:
        now = self.clock()
        final = done >= total
        if not final and now - self.last_write < self.min_interval:
            return
        text = f"train: {done}/{total} steps ({100 * done // max(total, 1)}%), {self.runs} runs"
        if self.start_time is not None and done > self.start_step and now > self.start_time:
            rate = (done - self.start_step) / (now - self.start_time)
            text += f", {rate:.0f} steps/s, {_seconds(now - self.t0)}"
            if not final:
                text += f", ETA {_seconds((total - done) / rate)}"
        else:
            text += f", {_seconds(now - self.t0)}" + ("" if final else ", compiling")
        pad = " " * max(0, self.width - len(text))
        self.width = len(text)
        self.stream.write("\r" + text + pad + ("\n" if final else ""))
        self.stream.flush()
        self.last_write = now
        self.writes += 1


def progress_callback(progress: Any, runs: int, stream: TextIO | None = None
                      ) -> tuple[Callable[[int, int], None] | None, ProgressLine | None]:
    """(the callback `train` calls, the line it draws or None) for `train`'s `progress`: None
    draws the line when the stream (default ``sys.stderr``) is a terminal, True always, False
    never; a callable is called as given."""
    if callable(progress):
        return progress, None
    stream = sys.stderr if stream is None else stream
    if progress is None:
        isatty = getattr(stream, "isatty", None)
        progress = bool(isatty is not None and isatty())
    if not progress:
        return None, None
    line = ProgressLine(runs, stream)
    return line, line

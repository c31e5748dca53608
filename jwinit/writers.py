"""Metric writers: the trainer's evaluations, as they happen, in the tools people already use.

The JSONL and CSV a run writes stay the source of truth; a writer is a live view of the same
numbers. `jwinit.train.train(..., writers=[...])` calls every writer for every run (one init,
learning rate and seed):

* ``write_hparams(run, hparams)`` once per run, before its first scalars (init, learning rate and
  seed, and what the caller adds with `scoped`);
* ``write_scalars(run, step, scalars)`` at every evaluation (step 0 included): the metrics of
  `jwinit.train.METRICS` as the result's rows hold them (NaN once the run diverged);
* ``close()`` at the end of `train`.

Only process 0 writes (`jax.process_index`), so a multi-host run writes each file once. Writers:

* `TensorBoard(logdir)`: event files under ``logdir/<run>`` with tensorboardX (no tensorflow;
  ``pip install 'jwinit[tensorboard]'``), the hyperparameters in TensorBoard's HParams plugin;
* `Wandb(project=None, **init_kwargs)`: one Weights & Biases run per jwinit run
  (``pip install wandb``); nothing imports wandb unless this writer is built.

Any object with these three methods is a writer.

Example::

    >>> import tempfile, optax, jwinit
    >>> logdir = tempfile.mkdtemp()
    >>> model = jwinit.models.MLP(depth=2, width=16, output_dim=10)
    >>> r = jwinit.train.train(model, jwinit.data.load("digits"), inits={"He": "he_normal"},
    ...                        optimizer=optax.sgd, learning_rates=[0.1], steps=20,
    ...                        eval_every=10, seeds=1, progress=False,
    ...                        writers=[jwinit.writers.TensorBoard(logdir)])
    >>> rows = jwinit.writers.read_tensorboard(logdir)
    >>> sorted(rows)
    ['He/lr=0.1/seed=0']
    >>> [step for step, _ in rows['He/lr=0.1/seed=0']['train_loss']]
    [0, 10, 20]
"""

from __future__ import annotations

import inspect
import os
import pathlib
import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

__all__ = ["Writer", "TensorBoard", "Wandb", "WRITERS", "make", "scoped", "run_name",
           "read_tensorboard", "check_writers", "write_hparams"]

#: The writers by name, as ``jwinit run --writer=NAME`` takes them.
WRITERS = ("tensorboard", "wandb")


@runtime_checkable
class Writer(Protocol):
    """What `jwinit.train.train` calls (see the module doc)."""

    def write_hparams(self, run: str, hparams: Mapping[str, Any]) -> None: ...

    def write_scalars(self, run: str, step: int, scalars: Mapping[str, float]) -> None: ...

    def close(self) -> None: ...


def _process_zero() -> bool:
    import jax

    return jax.process_index() == 0


def run_name(init: str, learning_rate: float, seed: int) -> str:
    """The run's name in every writer: ``'<init>/lr=<learning rate>/seed=<seed>'``.

    >>> run_name("he_normal", 0.1, 2)
    'he_normal/lr=0.1/seed=2'
    """
    return f"{_safe(init)}/lr={learning_rate:g}/seed={seed}"


def _safe(name: str) -> str:
    """A name usable as one folder: path separators and NUL replaced."""
    out = str(name).replace("/", "_").replace("\\", "_").replace("\0", "_").strip()
    return out if out not in ("", ".", "..") else f"_{out}_"


class TensorBoard:
    """TensorBoard event files under ``logdir/<run>`` (tensorboardX, no tensorflow).

    Scalars are written under their metric names (``train_loss``, ``test_accuracy``, ...), the
    hyperparameters once per run to TensorBoard's HParams plugin. Only process 0 writes.

    Args:
      logdir: the folder (created); point ``tensorboard --logdir`` at it.

    Raises:
      ImportError: tensorboardX is not installed (naming the extra to install), when built.
    """

    def __init__(self, logdir: str | os.PathLike[str]):
        if not isinstance(logdir, str | os.PathLike) or not os.fspath(logdir).strip():
            raise TypeError(f"`logdir` must be a folder path, got {logdir!r}.")
        try:
            import tensorboardX  # noqa: F401
        except ImportError:
            raise ImportError("TensorBoard writing needs tensorboardX: pip install "
                              "'jwinit[tensorboard]' (or pip install tensorboardX).") from None
        self.logdir = pathlib.Path(logdir)
        self._writers: dict[str, Any] = {}
        self._active = _process_zero()

    def _writer(self, run: str) -> Any:
        from tensorboardX import SummaryWriter

        if run not in self._writers:
            self._writers[run] = SummaryWriter(logdir=os.fspath(self.logdir / run),
                                               flush_secs=30)
        return self._writers[run]

    def write_hparams(self, run: str, hparams: Mapping[str, Any],
                      metrics: Sequence[str] = ()) -> None:
        if not self._active:
            return
        from tensorboardX.summary import hparams as hparams_summary

        values = {k: v if isinstance(v, bool | int | float | str) else str(v)
                  for k, v in hparams.items()}
        w = self._writer(run)
        for summary in hparams_summary(values, {m: 0.0 for m in metrics}):
            w.file_writer.add_summary(summary)

    def write_scalars(self, run: str, step: int, scalars: Mapping[str, float]) -> None:
        if not self._active:
            return
        w = self._writer(run)
        for name, value in scalars.items():
            w.add_scalar(name, float(value), int(step))

    def close(self) -> None:
        for w in self._writers.values():
            w.close()
        self._writers.clear()

    def __repr__(self) -> str:
        return f"TensorBoard({os.fspath(self.logdir)!r})"


class Wandb:
    """One Weights & Biases run per jwinit run (its name, and its hyperparameters as the config).

    Args:
      project: the W&B project (None: wandb's default).
      **init_kwargs: passed to ``wandb.init`` (e.g. ``entity``, ``group``, ``mode='offline'``).

    Raises:
      ImportError: wandb is not installed (naming what to install), when built: nothing imports
        wandb before.
    """

    def __init__(self, project: str | None = None, **init_kwargs: Any):
        if project is not None and not isinstance(project, str):
            raise TypeError(f"`project` must be a string or None, got {project!r}.")
        try:
            import wandb
        except ImportError:
            raise ImportError("the wandb writer needs wandb: pip install wandb (and `wandb "
                              "login`, or mode='offline').") from None
        self._wandb = wandb
        self.project = project
        self.init_kwargs = dict(init_kwargs)
        self._runs: dict[str, Any] = {}
        self._active = _process_zero()

    def write_hparams(self, run: str, hparams: Mapping[str, Any],
                      metrics: Sequence[str] = ()) -> None:
        if not self._active or run in self._runs:
            return
        self._runs[run] = self._wandb.init(project=self.project, name=run,
                                           config=dict(hparams), reinit="create_new",
                                           **self.init_kwargs)

    def write_scalars(self, run: str, step: int, scalars: Mapping[str, float]) -> None:
        if not self._active:
            return
        if run not in self._runs:
            self.write_hparams(run, {})
        self._runs[run].log({k: float(v) for k, v in scalars.items()}, step=int(step))

    def close(self) -> None:
        for r in self._runs.values():
            r.finish()
        self._runs.clear()

    def __repr__(self) -> str:
        return f"Wandb(project={self.project!r})"


class _Scoped:
    """A writer whose run names start with `prefix` and whose hyperparameters include `extra`."""

    def __init__(self, writer: Any, prefix: str, extra: Mapping[str, Any]):
        self.writer, self.prefix, self.extra = writer, prefix, dict(extra)

    def write_hparams(self, run: str, hparams: Mapping[str, Any],
                      metrics: Sequence[str] = ()) -> None:
        write_hparams(self.writer, f"{self.prefix}/{run}", {**self.extra, **hparams}, metrics)

    def write_scalars(self, run: str, step: int, scalars: Mapping[str, float]) -> None:
        self.writer.write_scalars(f"{self.prefix}/{run}", step, scalars)

    def close(self) -> None:
        """Closing a scope leaves the writer open (its owner closes it)."""

    def __repr__(self) -> str:
        return f"scoped({self.writer!r}, {self.prefix!r})"


def scoped(writer: Any, prefix: str, **hparams: Any) -> Any:
    """`writer` with run names under ``<prefix>/`` and `hparams` added to every run's; closing
    the scope does not close `writer` (an experiment trains several networks into one writer).
    """
    return _Scoped(writer, _safe(prefix), hparams)


def write_hparams(writer: Any, run: str, hparams: Mapping[str, Any],
                  metrics: Sequence[str] = ()) -> None:
    """``writer.write_hparams(run, hparams, metrics)`` (the metric names help TensorBoard's
    HParams plugin), or without `metrics` for a writer whose method takes two arguments."""
    try:
        takes_metrics = len(inspect.signature(writer.write_hparams).parameters) >= 3
    except (TypeError, ValueError):  # no signature to read (a builtin): the protocol's two
        takes_metrics = False
    if takes_metrics:
        writer.write_hparams(run, hparams, metrics)
    else:
        writer.write_hparams(run, hparams)


def check_writers(writers: Any) -> list[Any]:
    """`writers` (None or a sequence of writers) as a list; a TypeError naming the argument for
    anything that is not a writer (it needs write_hparams, write_scalars and close)."""
    if writers is None:
        return []
    if isinstance(writers, str) or not isinstance(writers, Iterable):
        raise TypeError(f"`writers` must be a list of writers (e.g. "
                        f"[jwinit.writers.TensorBoard('runs/tb')]), got {writers!r}.")
    out = list(writers)
    for w in out:
        missing = [m for m in ("write_hparams", "write_scalars", "close")
                   if not callable(getattr(w, m, None))]
        if missing:
            raise TypeError(f"`writers`: {w!r} is not a writer: it has no {', '.join(missing)} "
                            f"(see jwinit.writers.Writer).")
    return out


def make(name: str, workdir: str | os.PathLike[str]) -> Any:
    """The writer ``jwinit run --writer=NAME`` uses: 'tensorboard' writes under
    ``<workdir>/tensorboard``; 'wandb' logs to the project 'jwinit' (``WANDB_PROJECT`` overrides,
    as wandb reads it)."""
    if name not in WRITERS:
        raise ValueError(f"`--writer`: {name!r} is not a writer; choose from {WRITERS}.")
    if name == "tensorboard":
        return TensorBoard(pathlib.Path(workdir) / "tensorboard")
    return Wandb(project=os.environ.get("WANDB_PROJECT", "jwinit"))


def read_tensorboard(logdir: str | os.PathLike[str]) -> dict[str, dict[str, list[tuple[int,
                                                                                      float]]]]:
    """Every scalar of the event files under `logdir`: ``{run: {tag: [(step, value), ...]}}``,
    run being the folder relative to `logdir`, in the order written (needs tensorboardX's
    protocol buffers, not tensorflow)."""
    from tensorboardX.proto import event_pb2

    root = pathlib.Path(logdir)
    out: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for path in sorted(root.rglob("events.out.tfevents.*")):
        run = path.parent.relative_to(root).as_posix()
        tags = out.setdefault(run, {})
        data = path.read_bytes()
        at = 0
        while at + 12 <= len(data):
            (length,) = struct.unpack("<Q", data[at:at + 8])
            record = data[at + 12:at + 12 + length]
            at += 12 + length + 4
            if len(record) < length:
                break  # a record cut short (a writer killed mid-write)
            event = event_pb2.Event()
            event.ParseFromString(record)
            for value in event.summary.value:
                if value.HasField("simple_value"):
                    tags.setdefault(value.tag, []).append((int(event.step),
                                                           float(value.simple_value)))
    return {run: tags for run, tags in out.items() if tags}


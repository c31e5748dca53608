"""`jwinit run --config=NAME_OR_PATH[:arg] [--config.a.b=v ...] [--workdir=DIR]`.

The steps, in this order, so that nothing is written for a config that cannot run:

1. load the config: a name shipped with jwinit (``he2015``, ``he2015:smoke``; see
   ``jwinit run --help``) or the path of a config file, whose ``get_config(arg)`` builds an
   ml_collections ``ConfigDict``;
2. apply the ``--config.field=value`` overrides (Python literals; a tuple field takes
   ``'(3, 4)'``, ``'3,4'`` or ``5``; a field that defaults to None takes any value), type-checked
   against the config;
3. validate the whole config with its experiment kind's ``validate(config)`` (names, activations,
   ranges, types);
4. claim the workdir: lock it (a second run into the same workdir fails at once, naming the
   holder), refuse it if it holds a run of another config, and remove temporary files a killed
   run left behind;
5. ``experiments.<kind>.run(config, workdir)``; a rerun of the same config resumes.

Every error is one line on stderr (``jwinit run: error: ...``) and exit status 2.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.resources
import importlib.util
import os
import pathlib
import re
import shutil
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import ml_collections

from jwinit.experiments.io import claim_workdir, read_json, write_json, write_text

__all__ = ["run_cli", "run_config", "load_config", "apply_override", "EXPERIMENTS",
           "shipped_configs", "config", "defaults", "doc_fields"]

EXPERIMENTS = ("signal_propagation", "phase_diagram", "isometry", "linear_learning", "training",
               "trainability", "coord_check", "audit", "depth_coord_check", "ntk_prediction",
               "ntk_conditioning", "depth_lr_transfer")

USAGE = """usage: jwinit run --config=NAME_OR_PATH[:ARG] [--config.FIELD=VALUE ...] [--workdir=DIR]
                  [--keep_checkpoints] [--allow_failures] [--writer=tensorboard|wandb]

Run an experiment config and write results.jsonl, summary.csv, report.md and plots/ into the
workdir (default: runs/<config>[_<arg>]). A rerun of the same config resumes (Ctrl-C stops a run
resumably); a different config in the same workdir is refused; a workdir in use by another run
is refused. A training run's checkpoints are removed once it has finished.

  --config=NAME[:ARG]    a config shipped with jwinit (below), e.g. he2015 or he2015:smoke
  --config=PATH[:ARG]    a config file with get_config(arg)
  --config.FIELD=VALUE   override a field (a Python literal: 64, 0.5, 'tanh', '(16, 64)')
  --workdir=DIR          the output folder
  --keep_checkpoints     keep a finished training run's checkpoints (its resumable state)
  --allow_failures       exit 0 even when a claim is not reproduced (default: exit 1, as a
                         test runner does)
  --writer=NAME          also write the training metrics live: 'tensorboard' (event files in
                         <workdir>/tensorboard; needs jwinit[tensorboard]) or 'wandb' (needs
                         wandb); repeatable. results.jsonl stays the source of truth
  (each flag also takes its value after a space: --config he2015:smoke)

shipped configs (':smoke' is the fast variant of each):
"""


class ConfigError(ValueError):
    """A config that cannot be loaded, overridden or validated (reported in one line)."""


#: The one variant of a config other than itself.
VARIANTS = ("smoke",)


def defaults(kind: str) -> dict[str, Any]:
    """Every field of experiment `kind` with its default (the kind module's ``DEFAULTS``); a
    default of None is a field the config must set or that the kind does not always use."""
    if kind not in EXPERIMENTS:
        raise ValueError(f"`kind` must be one of {EXPERIMENTS}, got {kind!r}.")
    module = importlib.import_module(f"jwinit.experiments.{kind}")
    return {"experiment": kind, **module.DEFAULTS}


#: The report's fields a config file's docstring may give, as "Name: text" paragraphs.
DOC_FIELDS = {"Title": "title", "Paper": "paper", "Not covered": "not_covered"}


def doc_fields(doc: str) -> dict[str, str]:
    """The report's texts in a config file's docstring: each line that starts with ``Title:``,
    ``Paper:`` or ``Not covered:``, with the indented lines under it joined, and as
    ``description`` the rest of the docstring but its ``Run:`` lines.

    Examples:
      >>> doc_fields("A study.\\n\\nTitle: Deep nets\\nPaper: Someone 2020,\\n  Sec. 2.\\n")
      {'title': 'Deep nets', 'paper': 'Someone 2020, Sec. 2.', 'description': 'A study.'}
    """
    out: dict[str, str] = {}
    rest: list[str] = []
    field = None
    for line in doc.strip().splitlines():
        head, sep, text = line.partition(":")
        if sep and (head in DOC_FIELDS or head == "Run"):
            field = DOC_FIELDS.get(head, "run")
            out[field] = text.strip()
        elif field is not None and line[:1].isspace() and line.strip():
            out[field] = f"{out[field]} {line.strip()}".strip()
        else:
            field = None
            rest.append(line)
    out.pop("run", None)
    out["description"] = re.sub(r"\n{3,}", "\n\n", "\n".join(rest)).strip()
    return out


def config(kind: str, arg: str | None = None, doc: str | None = None, *, smoke: Any = None,
           **fields: Any) -> ml_collections.ConfigDict:
    """The config of an experiment of `kind`: the kind's `defaults`, then the report's texts in
    the config file's docstring `doc` (`doc_fields`: title, paper, what is not covered, the
    description), then `fields`; with ``arg='smoke'``, `smoke` over that (a dict of fields, or a
    function of the full config returning one). A config file states only what differs from its
    kind's defaults::

        \"\"\"What the paper found, and what this config runs.

        Title: ...
        Paper: ...
        Not covered: ...
        \"\"\"
        from jwinit.experiments import config

        def get_config(arg=None):
            return config("phase_diagram", arg, __doc__, depth=50,
                          smoke=dict(depth=20, widths=(64, 128)))

    Raises:
      ValueError: a field the kind does not have (naming it and the kind's fields), or an `arg`
        other than None and 'smoke'.
    """
    known = defaults(kind)
    if doc is not None:
        texts = doc_fields(doc)
        fields = {**{k: v for k, v in texts.items() if k in known}, **fields}
    unknown = sorted(set(fields) - set(known))
    if unknown:
        raise ValueError(f"experiment kind {kind!r} has no field(s) {', '.join(unknown)}; its "
                         f"fields: {', '.join(sorted(known))}.")
    values = {**known, **fields}
    if arg is not None:
        if arg not in VARIANTS:
            raise ValueError(f"unknown config argument {arg!r}; legal: 'smoke' or none.")
        changes = smoke(ml_collections.ConfigDict(values)) if callable(smoke) else smoke
        unknown = sorted(set(changes or {}) - set(known))
        if unknown:
            raise ValueError(f"`smoke` names field(s) {', '.join(unknown)} that experiment kind "
                             f"{kind!r} does not have.")
        values.update(changes or {})
    return ml_collections.ConfigDict(values)


def _with_defaults(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """`config` with every field its kind has and it lacks set to the default (a config file
    written out in full, or one that predates a field, runs as before)."""
    kind = config.get("experiment")
    if kind not in EXPERIMENTS:
        return config
    missing = {k: v for k, v in defaults(kind).items() if k not in config}
    if not missing:
        return config
    return ml_collections.ConfigDict({**missing, **config.to_dict()})


def shipped_configs() -> dict[str, pathlib.Path]:
    """Name -> file of every config shipped with jwinit (``jwinit.configs``)."""
    root = importlib.resources.files("jwinit.configs")
    return {p.name[:-3]: pathlib.Path(str(p)) for p in root.iterdir()
            if p.name.endswith(".py") and not p.name.startswith("_")}


def _resolve(spec: str) -> tuple[pathlib.Path, str | None]:
    """(config file, ``:arg`` or None) from ``--config``'s value."""
    path_text, sep, arg = spec.partition(":")
    if not path_text:
        raise ConfigError("`--config` needs a config name or file, e.g. --config=he2015:smoke")
    shipped = shipped_configs()
    if path_text in shipped:
        return shipped[path_text], (arg if sep else None)
    path = pathlib.Path(path_text).expanduser()
    if path.suffix != ".py" and not path.exists():
        raise ConfigError(
            f"unknown config {path_text!r}: neither a config shipped with jwinit "
            f"({', '.join(sorted(shipped))}) nor a file."
        )
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist.")
    return path, (arg if sep else None)


def load_config(spec: str) -> tuple[ml_collections.ConfigDict, str]:
    """Load ``NAME_OR_PATH[:arg]``; returns (the config, a short name for the workdir)."""
    path, arg = _resolve(spec)
    module_name = f"_jwinit_config_{path.stem}"
    try:
        loader = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(loader)
        loader.loader.exec_module(module)
    except SyntaxError as e:
        raise ConfigError(f"config file {str(path)!r} has a syntax error on line {e.lineno}: "
                          f"{e.msg}.") from None
    except Exception as e:  # noqa: BLE001 - any error in the user's file, in one line
        raise ConfigError(f"config file {str(path)!r} failed to load: {type(e).__name__}: "
                          f"{e}") from None
    get_config = getattr(module, "get_config", None)
    if not callable(get_config):
        raise ConfigError(f"config file {str(path)!r} defines no get_config(arg) function.")
    try:
        config = get_config(arg) if arg is not None else get_config()
    except Exception as e:  # noqa: BLE001 - any error in the user's get_config, in one line
        raise ConfigError(f"get_config({arg!r}) of {str(path)!r} failed: {type(e).__name__}: "
                          f"{e}") from None
    if not isinstance(config, ml_collections.ConfigDict):
        raise ConfigError(f"get_config of {str(path)!r} must return an ml_collections.ConfigDict, "
                          f"got {type(config).__name__}.")
    return _with_defaults(config), path.stem + (f"_{arg}" if arg else "")


def _parse_value(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def apply_override(config: ml_collections.ConfigDict, dotted: str, text: str) -> None:
    """Set ``config.<dotted>`` from the command-line text `text`, type-checked."""
    *parents, name = dotted.split(".")
    node = config
    for i, part in enumerate(parents):
        if part not in node or not isinstance(node[part], ml_collections.ConfigDict):
            raise ConfigError(f"`--config.{dotted}`: the config has no section "
                              f"{'.'.join(parents[: i + 1])!r}.")
        node = node[part]
    if name not in node:
        raise ConfigError(f"`--config.{dotted}`: the config has no field {name!r}; its fields: "
                          f"{', '.join(sorted(node.keys()))}.")
    old = node[name]
    value = _parse_value(text)
    if isinstance(old, bool):
        low = text.strip().lower()
        if low in ("true", "false", "1", "0"):
            value = low in ("true", "1")
        if not isinstance(value, bool):
            raise ConfigError(f"`--config.{dotted}` must be True or False, got {text!r}.")
    elif isinstance(old, tuple):
        value = tuple(value) if isinstance(value, list | tuple) else (value,)
    elif isinstance(old, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    elif isinstance(old, str) and not isinstance(value, str):
        value = text  # a string field takes the text as it is (e.g. a name that looks numeric)
    elif isinstance(old, ml_collections.ConfigDict) and isinstance(value, dict):
        value = ml_collections.ConfigDict(value)  # a section replaced whole
    if old is not None and not isinstance(old, tuple | bool | float | str) and (
            type(value) is not type(old)):
        shown = old.to_dict() if isinstance(old, ml_collections.ConfigDict) else old
        kind = "dict" if isinstance(old, ml_collections.ConfigDict) else type(old).__name__
        raise ConfigError(f"`--config.{dotted}` must be a {kind} like the config's {shown!r}, "
                          f"got {text!r}.")
    try:
        node[name] = value
    except (TypeError, ValueError) as e:
        raise ConfigError(f"`--config.{dotted}`: {e}") from None


def _experiment(config: ml_collections.ConfigDict) -> Any:
    kind = config.get("experiment")
    if kind not in EXPERIMENTS:
        raise ConfigError(f"`config.experiment` must be one of {EXPERIMENTS}, got {kind!r}.")
    return importlib.import_module(f"jwinit.experiments.{kind}")


def validate(config: ml_collections.ConfigDict) -> Any:
    """The experiment module of `config`, after its ``validate(config)`` passed."""
    module = _experiment(config)
    try:
        module.validate(config)
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise ConfigError(f"config: {e}") from None
    return module


#: In a finished workdir whose checkpoints were removed: the run's summary (a rerun reads it).
COMPLETE = "complete.json"


def run_config(config: ml_collections.ConfigDict, workdir: str | pathlib.Path, *,
               keep_checkpoints: bool = False, writers: Sequence[str] = ()) -> dict[str, Any]:
    """Validate `config`, claim `workdir` (locked while the run lasts) and run the experiment.

    A rerun of the same config in the same workdir resumes where it stopped. A training run's
    resumable state (``checkpoints/``, tens to hundreds of MB) is removed once the run has
    finished and its report is written, unless `keep_checkpoints`; the report says so, and a
    rerun of that finished run computes nothing (it prints the summary of ``complete.json``).
    `writers` names metric writers (`jwinit.writers.WRITERS`) for the training experiments.
    """
    from jwinit.experiments.common import interruptible, run_writers
    from jwinit.writers import WRITERS, make

    module = validate(config)
    writers = list(writers)
    for name in writers:
        if name not in WRITERS:
            raise ConfigError(f"`--writer`: {name!r} is not a writer; choose from {WRITERS}.")
    if writers and not getattr(module, "WRITES_METRICS", False):
        raise ConfigError(f"`--writer` writes training metrics; the experiment "
                          f"{config.experiment!r} trains nothing (the training experiments: "
                          f"'training', 'trainability').")
    built = []
    for name in dict.fromkeys(writers):
        try:
            built.append(make(name, workdir))
        except ImportError as e:
            raise ConfigError(f"`--writer={name}`: {e}") from None
    with claim_workdir(workdir, config.to_dict()) as claimed, run_writers(built), \
            interruptible():
        complete = claimed / COMPLETE
        if complete.exists() and not (claimed / "checkpoints").exists():
            return {**read_json(complete), "rerun": "already complete: nothing to compute"}
        start = time.perf_counter()
        summary = module.run(config, claimed)
        seconds = time.perf_counter() - start
        removed = None if keep_checkpoints else _remove_checkpoints(claimed)
        _stamp_wall_time(claimed / "report.md", seconds, removed)
        summary = {**summary, "wall_time_s": round(seconds, 1)}
        if removed is not None:
            write_json(complete, summary)
        return summary


def _remove_checkpoints(workdir: pathlib.Path) -> int | None:
    """Delete ``workdir/checkpoints`` (a finished run's resumable state); its bytes, or None if
    there was none."""
    folder = workdir / "checkpoints"
    if not folder.is_dir():
        return None
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    shutil.rmtree(folder)
    return size


def _stamp_wall_time(report: pathlib.Path, seconds: float, removed: int | None = None) -> None:
    """Add how long the run took, where and with what (and the checkpoints removed) to the end
    of report.md."""
    if not report.exists():
        return
    import jax

    import jwinit

    devices = jax.devices()
    line = (f"\n---\nThis run: {seconds:.1f} s wall time (resumed cells are not recomputed) on "
            f"{len(devices)} {devices[0].platform} device(s), {os.cpu_count()} CPU cores; "
            f"jwinit {jwinit.__version__}, jax {jax.__version__}.\n")
    if removed is not None:
        line += (f"Its checkpoints ({removed / 1e6:.1f} MB of resumable training state) were "
                 "removed once it finished; `--keep_checkpoints` keeps them.\n")
    write_text(report, report.read_text(encoding="utf-8").rstrip("\n") + "\n" + line)


def _usage() -> str:
    lines = [USAGE]
    for name, path in sorted(shipped_configs().items()):
        doc = path.read_text(encoding="utf-8").split('"""')
        title = doc[1].strip().splitlines()[0] if len(doc) > 2 else ""
        lines.append(f"  {name:<28} {title}")
    return "\n".join(lines) + "\n"


def _parse(argv: Sequence[str]
           ) -> tuple[str | None, list[tuple[str, str]], str | None, bool, bool, bool, list[str]]:
    """``--config=X`` or ``--config X``, ``--config.a.b=v`` or ``--config.a.b v``,
    ``--workdir=D`` or ``--workdir D``, ``--keep_checkpoints``, ``--allow_failures``,
    ``--writer=NAME`` or ``--writer NAME`` (repeatable),
    ``-h``/``--help``."""
    spec, workdir, overrides, help_, keep, allow = None, None, [], False, False, False
    writers: list[str] = []
    argv = list(argv)
    i = 0

    def value(flag: str, given: str | None) -> str:
        nonlocal i
        if given is not None:
            return given
        if i + 1 >= len(argv) or argv[i + 1].startswith("--"):
            raise ConfigError(f"`{flag}` needs a value: {flag}=VALUE or {flag} VALUE.")
        i += 1
        return argv[i]

    while i < len(argv):
        a = argv[i]
        flag, sep, given = a.partition("=")
        given = given if sep else None
        if a in ("-h", "--help"):
            help_ = True
        elif a == "--keep_checkpoints":
            keep = True
        elif a == "--allow_failures":
            allow = True
        elif flag == "--writer":
            writers.append(value(flag, given))
        elif flag == "--config":
            spec = value(flag, given)
        elif flag.startswith("--config."):
            dotted = flag[len("--config."):]
            if not dotted:
                raise ConfigError(f"an override looks like --config.field=value, got {a!r}.")
            overrides.append((dotted, value(flag, given)))
        elif flag == "--workdir":
            workdir = value(flag, given)
            if not workdir.strip():
                raise ConfigError("`--workdir` is empty; give a folder, e.g. --workdir=runs/he.")
        else:
            raise ConfigError(f"unknown argument {a!r}; see `jwinit run --help`.")
        i += 1
    return spec, overrides, workdir, help_, keep, allow, writers


@contextlib.contextmanager
def _one_line_warnings() -> Iterator[None]:
    """A warning during a run (a damaged checkpoint restarted, ...) as one line on stderr,
    ``jwinit run: warning: <message>``, not Python's two lines with a source location."""
    def show(message: Any, category: Any, filename: Any, lineno: Any, file: Any = None,
             line: Any = None) -> None:
        print(f"jwinit run: warning: {message}", file=sys.stderr if file is None else file)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def run_cli(argv: Sequence[str]) -> int:
    try:
        spec, overrides, workdir, help_, keep, allow, writers = _parse(argv)
        if help_:
            sys.stdout.write(_usage())
            return 0
        if spec is None:
            raise ConfigError("`--config` is required, e.g. --config=he2015:smoke "
                              "(see `jwinit run --help`).")
        config, name = load_config(spec)
        for dotted, text in overrides:
            apply_override(config, dotted, text)
        config.lock()
        workdir = pathlib.Path(workdir) if workdir else pathlib.Path("runs") / name
        with _one_line_warnings():
            summary = run_config(config, workdir, keep_checkpoints=keep, writers=writers)
    except KeyboardInterrupt:
        from jwinit.experiments.common import last_progress

        done = f" at {last_progress()}" if last_progress() else ""
        print(f"\njwinit run: interrupted{done}; rerun the same command to resume "
              f"(finished work in {workdir} is kept).", file=sys.stderr)
        return 130
    except (ConfigError, FileExistsError, BlockingIOError) as e:
        print(f"jwinit run: error: {e}", file=sys.stderr)
        return 2
    except (ValueError, TypeError) as e:  # raised by a run: still one line, not a traceback
        print(f"jwinit run: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a missing data file, a read-only workdir: one line, not a traceback
        print(f"jwinit run: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    from rich.console import Console

    console = Console()
    console.print(f"[bold]{config.experiment}[/bold] -> {workdir}")
    for k, v in summary.items():
        console.print(f"  {k}: {v}")
    passed, _, total = str(summary.get("reproduced", "")).partition("/")
    if passed.isdigit() and total.isdigit() and int(passed) < int(total) and not allow:
        print(f"jwinit run: {int(total) - int(passed)} of {total} claims not reproduced (see "
              f"{workdir / 'report.md'}); exit status 1 (--allow_failures: 0).", file=sys.stderr)
        return 1
    return 0

"""`jwinit run --config=configs/x.py[:arg] [--config.a.b=v ...] [--workdir=DIR]`.

The config names its experiment kind (``config.experiment``); the runner loads it with
ml_collections (``:arg`` is passed to ``get_config``, ``--config.*`` overrides are type-checked),
claims the workdir (a rerun of the same config resumes; a different config is refused), and calls
``experiments.<kind>.run(config, workdir)``.
"""

from __future__ import annotations

import importlib
import pathlib
import sys
from collections.abc import Sequence
from typing import Any

from absl import flags
from ml_collections import config_flags

from experiments.io import claim_workdir

__all__ = ["run_cli", "run_config", "EXPERIMENTS"]

EXPERIMENTS = ("signal_propagation", "phase_diagram", "isometry", "linear_learning")


def run_config(config: Any, workdir: str | pathlib.Path) -> dict[str, Any]:
    """Run an experiment config into `workdir` (resuming a previous run of the same config)."""
    kind = config.get("experiment")
    if kind not in EXPERIMENTS:
        raise ValueError(f"`config.experiment` must be one of {EXPERIMENTS}, got {kind!r}.")
    workdir = claim_workdir(workdir, config.to_dict())
    module = importlib.import_module(f"experiments.{kind}")
    return module.run(config, workdir)


def run_cli(argv: Sequence[str]) -> int:
    argv = ["jwinit run", *argv]
    fv = flags.FlagValues()
    config_flags.DEFINE_config_file("config", None, "experiment config file (path[:arg])",
                                    flag_values=fv, lock_config=True, sys_argv=argv)
    flags.DEFINE_string("workdir", None, "output folder (default: runs/<config>[_<arg>])",
                        flag_values=fv)
    try:
        fv(argv)
        config = fv.config
        if config is None:
            raise ValueError("`--config` is required, e.g. --config=configs/he2015.py:smoke")
    except (flags.Error, ValueError, AttributeError, TypeError) as e:
        print(f"jwinit run: error: {e}", file=sys.stderr)
        return 2
    workdir = fv.workdir
    if workdir is None:
        spec = fv["config"].config_filename
        arg = next((a.split(":", 1)[1] for a in argv if a.startswith("--config=") and ":" in a),
                   None)
        workdir = pathlib.Path("runs") / (pathlib.Path(spec).stem + (f"_{arg}" if arg else ""))
    try:
        summary = run_config(config, workdir)
    except (ValueError, TypeError, FileExistsError) as e:
        print(f"jwinit run: error: {e}", file=sys.stderr)
        return 2
    from rich.console import Console

    Console().print(f"[bold]{config.experiment}[/bold] -> {workdir}")
    for k, v in summary.items():
        Console().print(f"  {k}: {v}")
    return 0

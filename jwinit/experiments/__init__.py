"""Config-driven experiments: ``jwinit run --config=NAME[:smoke]``.

One module per experiment kind (`signal_propagation`, `phase_diagram`, `isometry`,
`linear_learning`, `training`, `trainability`, `coord_check`, `audit`, `depth_coord_check`); each
has ``DEFAULTS`` (its fields and their defaults), ``validate(config)`` and
``run(config, workdir) -> dict``, and is importable and tested. `config` builds a config from a
kind's defaults (a config file states only what differs); `runner` parses the command line.
"""

from jwinit.experiments.runner import config, defaults

__all__ = ["config", "defaults"]

"""Sweeps: a grid of schemes x activations x depths x widths x seeds, as few programs as possible.

The functions are the probe's grid runner, defined in `jwinit.probe` (``jwinit.probe.sweep`` is
``jwinit.sweep.sweep``); this module gathers them under the name the configs and the command line
use.

The grid is grouped into one compiled probe program per (depth, width): every (scheme, activation)
of the grid is a member of that program, and all of them advance together through one
``lax.scan`` over layers, with one batched matmul per distinct kernel closure per layer. Mean-field
schemes given as ``(sigma_w2, sigma_b2)`` pairs share one member per activation and are vmapped
over their scales (weights ``sqrt(sigma_w2 / fan_in) * N(0, 1)``, biases ``sqrt(sigma_b2) *
N(0, 1)``), so a whole phase diagram is one program.

Seeds are the data-parallel axis: the seed keys are sharded over every device of a
``jax.sharding.Mesh`` with ``shard_map``, and each device runs the same per-seed computation, so
the rows are bit-for-bit those of a single device. Seed s always uses ``fold_in(key, s)`` (common
random numbers across schemes), whatever the other seeds, the grouping or the device count.

On several hosts (after ``jax.distributed.initialize()``) the (program, seed) work items are split
round-robin by ``jax.process_index()``; each process runs its share on its local devices and
returns (and writes) its own rows.

Rows are plain dicts (JSON-ready): the cell ``scheme, activation, depth, width, seed``, what else
changes its values ``bias, key, batch_size, input_dim, precision, input_correlation,
saturation_threshold, statistics`` (`CELL_FIELDS` together), ``sigma_w2, sigma_b2``, the per-layer
lists of every statistic of `jwinit.probe.TABLE` (``forward, mean, variance, channel_sq_mean,
channel_var, dead, saturated, correlation, backward``) and the summaries ``log_forward =
log(forward[-1] / forward[0])`` and ``log_backward = log(backward[0] / backward[-1])``. With
``out=`` they are appended to a JSON-lines file (standard JSON) as each program finishes, and
``resume=True`` reuses the rows already there whose every `CELL_FIELDS` value matches.

References:
  Schoenholz et al. 2017 (phase diagrams over (sigma_w2, sigma_b2)); Brock et al. 2021 (signal
  propagation plots).
"""

from jwinit.probe import (
    CELL_FIELDS,
    SUMMARY_COLUMNS,
    Task,
    default_mesh,
    plan,
    results_from_rows,
    summarize,
    sweep,
)
from jwinit.schemes import Scheme, parse_pair, parse_scheme

__all__ = ["sweep", "plan", "Task", "Scheme", "summarize", "results_from_rows", "default_mesh",
           "parse_scheme", "parse_pair", "CELL_FIELDS", "SUMMARY_COLUMNS"]

"""Sweeps: a grid of schemes x activations x depths x widths x seeds, as few programs as possible.

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

Rows are plain dicts (JSON-ready): ``scheme, activation, depth, width, batch, input_dim, seed,
precision, sigma_w2, sigma_b2, input_correlation``, the per-layer lists ``forward, backward, mean,
variance, channel_sq_mean, channel_var, dead, saturated, correlation`` and the summaries
``log_forward = log(forward[-1] / forward[0])`` and ``log_backward = log(backward[0] /
backward[-1])``. With ``out=`` they are appended to a JSON-lines file as each program finishes, and
``resume=True`` skips the cells already there.

References:
  Schoenholz et al. 2017 (phase diagrams over (sigma_w2, sigma_b2)); Brock et al. 2021 (signal
  propagation plots).
"""

from __future__ import annotations

import ast
import dataclasses
import math
import numbers
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from jwinit import probe as _probe
from jwinit._jsonl import append_rows, read_rows
from jwinit.activations import Activation
from jwinit.probe import STATS, Config, Member, ProbeResult

__all__ = ["sweep", "plan", "Task", "Scheme", "summarize", "results_from_rows", "default_mesh",
           "parse_scheme", "parse_pair"]

_CELL = ("scheme", "activation", "depth", "width", "seed")


@dataclasses.dataclass(frozen=True)
class Scheme:
    """A resolved scheme: a label, the closures, and the scale of one row.

    Attributes:
      label: the name rows carry.
      kernel: the kernel closure (for mean-field pairs, the unit-variance fan-in normal).
      bias: the bias closure or None.
      gain_w, gain_b: multipliers of the sampled weights and biases (1 for closures;
        sqrt(sigma_w2) and sqrt(sigma_b2) for mean-field pairs).
      sigma_w2, sigma_b2: effective mean-field variances when known.
      mean_field: whether the scheme is a (sigma_w2, sigma_b2) pair (pairs with one activation
        share a program member and are vmapped over their gains).
    """

    label: str
    kernel: Callable[..., Any]
    bias: Callable[..., Any] | None
    gain_w: float = 1.0
    gain_b: float = 1.0
    sigma_w2: float | None = None
    sigma_b2: float | None = None
    mean_field: bool = False


_UNIT: dict[str, Callable[..., Any]] = {}


def _unit_closures() -> tuple[Callable[..., Any], Callable[..., Any]]:
    """One shared (kernel, bias) pair for mean-field schemes, so their programs are cached."""
    if not _UNIT:
        from jwinit.distributions import normal
        from jwinit.variance import variance_scaling

        _UNIT["kernel"] = variance_scaling(1.0, "fan_in", "normal")
        _UNIT["bias"] = normal(1.0)
    return _UNIT["kernel"], _UNIT["bias"]


_NAMED: dict[tuple[str, tuple[tuple[str, Any], ...]], Callable[..., Any]] = {}


def _named_closure(name: str, kwargs: Mapping[str, Any], argument: str) -> Callable[..., Any]:
    from jwinit import registry

    key = (name, tuple(sorted(kwargs.items())))
    if key not in _NAMED:
        try:
            _NAMED[key] = registry.make(name, **kwargs)
        except ValueError as e:
            raise ValueError(f"`{argument}`: {e}") from None
        except TypeError as e:
            raise TypeError(
                f"`{argument}`: bad arguments {dict(kwargs)} for {name!r}: {e}"
            ) from None
    return _NAMED[key]


def _fmt(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else repr(v) if isinstance(v, str) else str(v)


def _closure_label(init: Callable[..., Any]) -> str:
    from jwinit._types import info_of

    info = info_of(init)
    if info is None:
        return getattr(init, "__name__", type(init).__name__)
    shown = {k: v for k, v in info.params.items() if info.name in ("normal", "uniform", "constant",
                                                                      "truncated_normal",
                                                                      "variance_scaling")}
    if not shown:
        return info.name
    return f"{info.name}({', '.join(f'{k}={_fmt(v)}' for k, v in shown.items())})"


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def resolve_scheme(spec: Any, bias: Any, width: int, *, label: str | None = None,
                   argument: str = "schemes") -> Scheme:
    """A `Scheme` from a registry name, ``(name, kwargs)``, a closure or a mean-field pair."""
    if isinstance(spec, tuple) and len(spec) == 2 and all(_is_number(v) for v in spec):
        sw2, sb2 = float(spec[0]), float(spec[1])
        if not (sw2 > 0 and sb2 >= 0 and math.isfinite(sw2) and math.isfinite(sb2)):
            raise ValueError(
                f"`{argument}`: a mean-field pair (sigma_w2, sigma_b2) needs sigma_w2 > 0 and "
                f"sigma_b2 >= 0, got {spec}."
            )
        kernel, unit_bias = _unit_closures()
        return Scheme(
            label=label or f"sw2={sw2:g},sb2={sb2:g}", kernel=kernel,
            bias=unit_bias if sb2 > 0 else None, gain_w=math.sqrt(sw2), gain_b=math.sqrt(sb2),
            sigma_w2=sw2, sigma_b2=sb2, mean_field=True,
        )
    if isinstance(spec, str):
        kernel, name = _named_closure(spec, {}, argument), spec
    elif (isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str)
          and isinstance(spec[1], Mapping)):
        kernel = _named_closure(spec[0], spec[1], argument)
        name = f"{spec[0]}({', '.join(f'{k}={_fmt(v)}' for k, v in spec[1].items())})"
    elif callable(spec):
        kernel, name = spec, _closure_label(spec)
    else:
        raise TypeError(
            f"`{argument}` entries must be a registry name ('he_normal'), a (name, kwargs) pair, "
            f"an initializer closure or a (sigma_w2, sigma_b2) pair, got {type(spec).__name__} "
            f"{spec!r}."
        )
    sw2, sb2 = _probe.effective_sigmas(kernel, bias, width)
    return Scheme(label=label or name, kernel=kernel, bias=bias, sigma_w2=sw2, sigma_b2=sb2)


@dataclasses.dataclass(frozen=True)
class Cell:
    """One (scheme, activation) of a program, with its member and row within it."""

    scheme: Scheme
    activation: Activation
    member: int
    row: int


@dataclasses.dataclass
class Task:
    """One compiled program of a sweep and the seeds it runs.

    Attributes:
      config: the static `jwinit.probe.Config` (one compiled program per distinct config).
      cells: the (scheme, activation) cells, in row order of the program's output.
      seeds: the seeds this process runs (before padding to the mesh size).
      key: the base key.
      mesh: the device mesh the seed axis is sharded over.
    """

    config: Config
    cells: list[Cell]
    seeds: list[int]
    key: jax.Array
    mesh: Mesh

    def arguments(self) -> tuple[jax.Array, jax.Array, jax.Array]:
        """(keys, gain_w, gain_b): the seed keys padded to a multiple of the mesh size."""
        size = self.mesh.devices.size * (self.config.seed_chunk or 1)
        padded = list(self.seeds)
        extra = max(padded) + 1 if padded else 0
        while len(padded) % size:
            padded.append(extra)
            extra += 1
        keys = _probe.seed_keys(self.key, padded)
        rows = self.config.num_rows
        gw, gb = np.ones(rows, np.float32), np.ones(rows, np.float32)
        starts = np.cumsum([0] + [m.rows for m in self.config.members])
        for c in self.cells:
            r = starts[c.member] + c.row
            gw[r], gb[r] = c.scheme.gain_w, c.scheme.gain_b
        sharding = jax.sharding.NamedSharding(
            self.mesh, jax.sharding.PartitionSpec(tuple(self.mesh.axis_names))
        )
        keys = jax.device_put(keys, sharding)
        return keys, jnp.asarray(gw), jnp.asarray(gb)

    def program(self) -> Callable[..., Any]:
        return _probe.program(self.config, self.mesh)

    def lower(self) -> Any:
        """``jit(...).lower(...)`` of this task's program (``.compile()`` compiles it anew)."""
        return self.program().lower(*self.arguments())

    def run(self) -> list[dict[str, Any]]:
        """Run the program and return one row per (cell, seed)."""
        if not self.seeds:
            return []
        stats, back = self.program()(*self.arguments())
        stats, back = np.asarray(stats), np.asarray(back)
        return self.rows(stats, back)

    def rows(self, stats: np.ndarray, back: np.ndarray) -> list[dict[str, Any]]:
        cfg = self.config
        starts = np.cumsum([0] + [m.rows for m in cfg.members])
        out = []
        for c in self.cells:
            r = int(starts[c.member] + c.row)
            for i, seed in enumerate(self.seeds):
                out.append(_row(c, cfg, seed, stats[i, :, r, :], back[i, :, r]))
        return out


def _row(cell: Cell, cfg: Config, seed: int, stats: np.ndarray, back: np.ndarray
         ) -> dict[str, Any]:
    row: dict[str, Any] = {
        "scheme": cell.scheme.label,
        "activation": cell.activation.label,
        "depth": cfg.depth,
        "width": cfg.width,
        "batch": cfg.batch,
        "input_dim": cfg.input_dim,
        "seed": int(seed),
        "precision": cfg.precision,
        "sigma_w2": cell.scheme.sigma_w2,
        "sigma_b2": cell.scheme.sigma_b2,
        "input_correlation": cfg.input_correlation,
    }
    for i, name in enumerate(STATS):
        row[name] = [float(v) for v in stats[:, i]]
    row["backward"] = [float(v) for v in back]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        f, b = np.asarray(row["forward"]), np.asarray(row["backward"])
        row["log_forward"] = float(np.log(f[-1]) - np.log(f[0]))
        row["log_backward"] = float(np.log(b[0]) - np.log(b[-1]))
    return row


def default_mesh() -> Mesh:
    """A one-axis mesh ('seeds',) over all local devices."""
    return Mesh(np.array(jax.local_devices()), ("seeds",))


def _check_mesh(mesh: Any) -> Mesh:
    if mesh is None:
        return default_mesh()
    if not isinstance(mesh, Mesh):
        raise TypeError(f"`mesh` must be a jax.sharding.Mesh or None, got {type(mesh).__name__}.")
    local = set(jax.local_devices())
    if any(d not in local for d in mesh.devices.flat):
        raise ValueError(
            "`mesh` must hold only this process's devices (jax.local_devices()): on several "
            "hosts the sweep splits its work by jax.process_index() and each process shards its "
            "share over its own devices."
        )
    return mesh


def _as_list(value: Any, argument: str) -> list[Any]:
    if value is None:
        raise ValueError(f"`{argument}` must be given.")
    if isinstance(value, str | int) or callable(value) or (
        isinstance(value, tuple) and len(value) == 2
        and (all(_is_number(v) for v in value)
             or (isinstance(value[0], str) and isinstance(value[1], Mapping)))
    ):
        return [value]
    try:
        out = list(value)
    except TypeError:
        raise TypeError(f"`{argument}` must be a value or a sequence, got {value!r}.") from None
    if not out:
        raise ValueError(f"`{argument}` must not be empty.")
    return out


def _seeds(seeds: Any) -> list[int]:
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        return list(range(_probe._check_int(seeds, "seeds")))
    try:
        out = [int(s) for s in seeds]
    except (TypeError, ValueError):
        raise TypeError(
            f"`seeds` must be a count (int >= 1) or a sequence of ints >= 0, got {seeds!r}."
        ) from None
    if not out or any(s < 0 for s in out) or len(set(out)) != len(out):
        raise ValueError(
            f"`seeds` must be a non-empty sequence of distinct ints >= 0, got {seeds!r}."
        )
    return out


def plan(
    schemes: Any = None,
    activations: Any = None,
    depths: Any = (16,),
    widths: Any = (256,),
    *,
    pairs: Sequence[tuple[Any, Any]] | None = None,
    seeds: int | Sequence[int] = 4,
    batch: int = 256,
    key: jax.Array | int = 0,
    bias_init: Any = None,
    input_dim: int | None = None,
    precision: str | None = None,
    remat: str = "auto",
    input_correlation: float = 0.5,
    saturation_threshold: float = 1e-3,
    statistics: str = "all",
    mesh: Mesh | None = None,
    process_index: int | None = None,
    process_count: int | None = None,
) -> list[Task]:
    """The tasks (one compiled program each) `sweep` runs on this process; see `sweep`."""
    key = _probe._typed_key(key, "sweep")
    depths = [_probe._check_int(d, "depths") for d in _as_list(depths, "depths")]
    widths = [_probe._check_int(w, "widths") for w in _as_list(widths, "widths")]
    batch = _probe._check_int(batch, "batch")
    seed_list = _seeds(seeds)
    if input_dim is not None:
        input_dim = _probe._check_int(input_dim, "input_dim")
    precision = _probe._check_precision(precision)
    remat = _probe._check_remat(remat)
    input_correlation = _probe._check_real(input_correlation, "input_correlation", -1.0, 1.0)
    saturation_threshold = _probe._check_real(
        saturation_threshold, "saturation_threshold", 0.0, math.inf
    )
    statistics = _probe._check_statistics(statistics)
    mesh = _check_mesh(mesh)
    pindex = jax.process_index() if process_index is None else int(process_index)
    pcount = jax.process_count() if process_count is None else int(process_count)
    if pcount < 1 or not 0 <= pindex < pcount:
        raise ValueError(
            f"`process_index` must be in [0, process_count), got {pindex} of {pcount}."
        )

    if pairs is not None:
        if schemes is not None or activations is not None:
            raise ValueError("give either `pairs` or `schemes` and `activations`, not both.")
        combos = [(s, a) for s, a in _as_list(pairs, "pairs")]
    else:
        scheme_list = _scheme_items(schemes)
        act_list = _as_list(activations, "activations")
        combos = [(s, a) for s in scheme_list for a in act_list]

    bias = None
    if bias_init is not None:
        bias = (_named_closure(bias_init, {}, "bias_init") if isinstance(bias_init, str)
                else bias_init)

    tasks = []
    work = 0  # running index of (program, seed) work items, for the multi-host split
    for depth in depths:
        for width in widths:
            n0 = width if input_dim is None else input_dim
            cells_in: list[tuple[Scheme, Activation]] = []
            for spec, act_spec in combos:
                label = None
                if isinstance(spec, _Labelled):
                    label, spec = spec.label, spec.spec
                scheme = resolve_scheme(spec, bias, width, label=label)
                act = _probe._resolve_activation(act_spec)
                cells_in.append((scheme, act))
            cfg_members, cells = _members(cells_in)
            for s, _ in cells_in:
                _probe.check_initializer(s.kernel, "schemes", (n0, width))
                if depth > 1:
                    _probe.check_initializer(s.kernel, "schemes", (width, width))
                if s.bias is not None:
                    _probe.check_initializer(s.bias, "bias_init", (width,))
            mine = []
            for seed in seed_list:
                if work % pcount == pindex:
                    mine.append(seed)
                work += 1
            rows = sum(m.rows for m in cfg_members)
            chunk = seed_chunk_for(rows, batch, len(seed_list))
            per_device = chunk
            cfg = Config(
                members=tuple(cfg_members), depth=depth, width=width, input_dim=n0, batch=batch,
                precision=precision,
                remat=_probe.resolve_remat(remat, depth, width, batch, rows, per_device),
                input_correlation=input_correlation,
                saturation_threshold=saturation_threshold, backend=jax.default_backend(),
                seed_chunk=chunk, statistics=statistics,
            )
            tasks.append(Task(config=cfg, cells=cells, seeds=mine, key=key, mesh=mesh))
    return tasks


#: Rows (batch x program rows) per matmul that a seed chunk aims for: enough to fill a GPU.
TARGET_ROWS = 32768


def seed_chunk_for(rows: int, batch: int, num_seeds: int, backend: str | None = None) -> int:
    """Seeds per vmapped chunk: from the problem size and backend, never from the device count.

    Each device runs its seeds in chunks of this size, so every chunk has the same shapes on one
    device or many and the rows are bit-for-bit identical. On accelerators chunks hold enough
    seeds for about `TARGET_ROWS` matmul rows (one seed when a seed alone has that many); on CPU,
    whose matmuls do not gain from taller operands, about `jwinit.probe.CPU_MATMUL_ROWS`.
    """
    backend = backend or jax.default_backend()
    target = _probe.CPU_MATMUL_ROWS if backend == "cpu" else TARGET_ROWS
    return max(1, min(num_seeds, -(-target // (rows * batch))))


@dataclasses.dataclass(frozen=True)
class _Labelled:
    label: str
    spec: Any


def _scheme_items(schemes: Any) -> list[Any]:
    if isinstance(schemes, Mapping):
        if not schemes:
            raise ValueError("`schemes` must not be empty.")
        return [_Labelled(str(k), v) for k, v in schemes.items()]
    return _as_list(schemes, "schemes")


def _members(cells_in: list[tuple[Scheme, Activation]]) -> tuple[list[Member], list[Cell]]:
    """Members (mean-field pairs of one activation share one) ordered by kernel closure."""
    raw: list[tuple[Callable[..., Any], Callable[..., Any] | None, Activation, list[int]]] = []
    index: dict[tuple[Any, ...], int] = {}
    for i, (scheme, act) in enumerate(cells_in):
        if scheme.mean_field:
            k = ("mf", act.label if not act.name.startswith("custom") else id(act.fn))
            if k in index:
                raw[index[k]][3].append(i)
                continue
            index[k] = len(raw)
            _, unit_bias = _unit_closures()
            raw.append((scheme.kernel, unit_bias, act, [i]))
        else:
            raw.append((scheme.kernel, scheme.bias, act, [i]))
    members = [Member(k, b, a, len(idx)) for k, b, a, idx in raw]
    ordered, where = _probe.canonical_members(members)
    cells: list[Cell] = []
    for m_index, (_, _, _, idx) in enumerate(raw):
        for row, i in enumerate(idx):
            scheme, act = cells_in[i]
            cells.append(Cell(scheme=scheme, activation=act, member=where[m_index], row=row))
    return list(ordered), cells


def sweep(
    schemes: Any = None,
    activations: Any = None,
    depths: Any = (16,),
    widths: Any = (256,),
    *,
    pairs: Sequence[tuple[Any, Any]] | None = None,
    seeds: int | Sequence[int] = 4,
    batch: int = 256,
    key: jax.Array | int = 0,
    bias_init: Any = None,
    input_dim: int | None = None,
    precision: str | None = None,
    remat: str = "auto",
    input_correlation: float = 0.5,
    saturation_threshold: float = 1e-3,
    statistics: str = "all",
    mesh: Mesh | None = None,
    process_index: int | None = None,
    process_count: int | None = None,
    out: str | os.PathLike[str] | None = None,
    resume: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Probe a grid of schemes x activations x depths x widths x seeds; return one row per cell.

    Args:
      schemes: a sequence (or ``{label: scheme}`` mapping) of registry names (``'he_normal'``),
        ``(name, kwargs)`` pairs (``('normal', {'stddev': 0.1})``), initializer closures, or
        mean-field pairs ``(sigma_w2, sigma_b2)``.
      activations: activation names or callables; the grid is schemes x activations.
      depths, widths: ints or sequences of ints (>= 1).
      pairs: instead of `schemes` x `activations`, explicit ``(scheme, activation)`` pairs.
      seeds: a count (seeds 0 .. n-1) or a sequence of distinct ints >= 0.
      batch: inputs per seed.
      key: base PRNG key (or int); seed s uses ``fold_in(key, s)``.
      bias_init: a bias closure or registry name for the closure schemes (None: no bias).
      input_dim: dimension of the input (default: the width).
      precision: one of `jwinit.probe.PRECISIONS`.
      remat: 'auto', 'layer' or 'sqrt' (see `jwinit.probe`).
      input_correlation: correlation of the input pairs.
      saturation_threshold: |phi'| at or below which a unit counts as dead/saturated.
      statistics: 'all', or 'second_moments' (only forward/backward; the others NaN).
      mesh: a ``jax.sharding.Mesh`` of local devices; the seed axis is sharded over all its axes
        (default: every local device).
      process_index, process_count: override ``jax.process_index()``/``jax.process_count()``.
      out: a JSON-lines file to append rows to as each program finishes (with several processes,
        each writes ``<stem>.p<index><suffix>``).
      resume: skip the (scheme, activation, depth, width, seed) cells already in `out`, and
        return them with the new rows.
      progress: called as ``progress(done, total)`` with the number of this process's rows done
        (resumed rows count as done) after each compiled program finishes, and once at the start.

    Returns:
      A list of row dicts (see the module docstring), in grid order: depth, width, cell, seed.

    Raises:
      ValueError, TypeError: a bad argument (naming it, its value and the legal values), before
        any compute.

    Examples:
      >>> rows = jwinit.sweep.sweep(['he_normal', 'glorot_normal'], ['relu', 'tanh'],
      ...                           depths=[16, 64], widths=[256], seeds=4)
      >>> len(rows)
      32
    """
    tasks = plan(
        schemes, activations, depths, widths, pairs=pairs, seeds=seeds, batch=batch, key=key,
        bias_init=bias_init, input_dim=input_dim, precision=precision, remat=remat,
        input_correlation=input_correlation, saturation_threshold=saturation_threshold,
        statistics=statistics, mesh=mesh, process_index=process_index,
        process_count=process_count,
    )
    path = _shard_path(out, process_index, process_count) if out is not None else None
    done: dict[tuple[Any, ...], dict[str, Any]] = {}
    if path is not None and resume and os.path.exists(path):
        for row in read_rows(path):
            done[tuple(row[k] for k in _CELL)] = row
    rows: list[dict[str, Any]] = []
    total = sum(len(t.cells) * len(t.seeds) for t in tasks)
    if progress is not None:
        progress(0, total)
    for task in tasks:
        if done:
            wanted = {(c.scheme.label, c.activation.label, task.config.depth,
                       task.config.width, s) for c in task.cells for s in task.seeds}
            missing = sorted({k[-1] for k in wanted if k not in done})
            full = task.seeds
            task.seeds = [s for s in full if s in missing]
            new = task.run()
            by_key = {tuple(r[k] for k in _CELL): r for r in new}
            if path is not None:
                append_rows(path, [r for r in new if tuple(r[k] for k in _CELL) not in done])
            for c in task.cells:
                for s in full:
                    k = (c.scheme.label, c.activation.label, task.config.depth,
                         task.config.width, s)
                    rows.append(done[k] if k in done else by_key[k])
        else:
            new = task.run()
            if path is not None:
                append_rows(path, new)
            rows.extend(new)
        if progress is not None:
            progress(len(rows), total)
    return rows


def _shard_path(out: Any, process_index: int | None, process_count: int | None) -> str:
    path = os.fspath(out)
    count = jax.process_count() if process_count is None else int(process_count)
    if count <= 1:
        return path
    index = jax.process_index() if process_index is None else int(process_index)
    stem, suffix = os.path.splitext(path)
    return f"{stem}.p{index}{suffix}"


def results_from_rows(rows: Iterable[Mapping[str, Any]]
                      ) -> dict[tuple[str, str, int, int], ProbeResult]:
    """Seed-grouped `ProbeResult` per (scheme, activation, depth, width), from sweep rows."""
    groups: dict[tuple[str, str, int, int], list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(
            (row["scheme"], row["activation"], int(row["depth"]), int(row["width"])), []
        ).append(row)
    out = {}
    for k, rs in groups.items():
        rs = sorted(rs, key=lambda r: r["seed"])
        first = rs[0]
        arrays = {name: np.array([r[name] for r in rs], np.float64)
                  for name in (*STATS, "backward")}
        out[k] = ProbeResult(
            **arrays, scheme=first["scheme"], activation=first["activation"],
            depth=int(first["depth"]), width=int(first["width"]), batch=int(first["batch"]),
            input_dim=int(first["input_dim"]), precision=first.get("precision"),
            input_correlation=float(first.get("input_correlation", 0.5)),
            sigma_w2=first.get("sigma_w2"), sigma_b2=first.get("sigma_b2"),
            seeds=tuple(int(r["seed"]) for r in rs),
        )
    return out


def summarize(rows: Iterable[Mapping[str, Any]], *, theory: bool = True) -> list[dict[str, Any]]:
    """One dict per (scheme, activation, depth, width): seeds, log ratios, tolerance, verdicts."""
    out = []
    for (scheme, act, depth, width), res in results_from_rows(rows).items():
        a = res.assess(theory=theory)
        out.append({
            "scheme": scheme, "activation": act, "depth": depth, "width": width,
            "num_seeds": res.num_seeds, "verdict": a.verdict, "forward_verdict": a.forward,
            "backward_verdict": a.backward, "log_forward": a.log_forward,
            "log_backward": a.log_backward, "tolerance": a.tolerance,
            "theory_forward": a.theory_forward, "theory_backward": a.theory_backward,
            "agrees_with_theory": a.agrees_with_theory,
        })
    return out


# ------------------------------------------------------------------------------------------------
# schemes written as text (configs, the command line)


def parse_scheme(text: str) -> Any:
    """``'he_normal'`` -> ``'he_normal'``; ``'normal(stddev=0.1)'`` -> ``('normal', {...})``;
    ``'(2.0, 0.05)'`` -> the mean-field pair ``(2.0, 0.05)``.

    Names are checked against the registry here, before any compute.
    """
    if not isinstance(text, str):
        raise TypeError(f"a scheme must be a string, got {type(text).__name__} {text!r}.")
    s = text.strip()
    if s.startswith("("):
        try:
            pair = ast.literal_eval(s)
        except (ValueError, SyntaxError):
            raise ValueError(
                f"scheme {text!r}: a mean-field pair looks like '(2.0, 0.05)'.") from None
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise ValueError(f"scheme {text!r}: a mean-field pair looks like '(2.0, 0.05)'.")
        return tuple(float(v) for v in pair)
    try:
        node = ast.parse(s, mode="eval").body
    except SyntaxError:
        raise ValueError(f"scheme {text!r} must look like 'he_normal' or "
                         "'normal(stddev=0.1)'.") from None
    from jwinit import registry

    if isinstance(node, ast.Name):
        registry.entry(node.id)
        return node.id
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.args
            and all(k.arg for k in node.keywords)):
        registry.entry(node.func.id)
        try:
            kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
        except ValueError:
            raise ValueError(f"scheme {text!r}: arguments must be literals.") from None
        registry.make(node.func.id, **kwargs)  # validate the arguments now
        return (node.func.id, kwargs)
    raise ValueError(f"scheme {text!r} must look like 'he_normal' or 'normal(stddev=0.1)' "
                     "(keyword arguments only).")


def parse_pair(text: str) -> tuple[Any, str]:
    """``'he_normal+relu'`` -> ``('he_normal', 'relu')`` (the activation after the last '+')."""
    scheme, sep, act = text.rpartition("+")
    if not sep or not scheme or not act:
        raise ValueError(f"a pair must look like 'scheme+activation', got {text!r}.")
    return parse_scheme(scheme), act.strip()

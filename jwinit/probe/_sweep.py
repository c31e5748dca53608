"""The sweep: a grid of probe programs, run seed-parallel over a mesh and every process (the
public functions and their documentation: `jwinit.sweep`)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from jwinit._checks import (
    check_bool,
    check_callable_init,
    check_initializer,
    check_int,
    renamed,
)
from jwinit.activations import Activation
from jwinit.probe._options import ProbeOptions
from jwinit.probe._program import (
    CPU_MATMUL_ROWS,
    Config,
    Member,
    canonical_members,
    program,
    resolve_activation,
    seed_keys,
    single_key,
)
from jwinit.probe._result import ProbeResult
from jwinit.probe._stats import STATS
from jwinit.results import ResumableCells
from jwinit.schemes import (
    Scheme,
    is_number,
    named_closure,
    parse_pair,
    parse_scheme,
    resolve_scheme,
    unit_closures,
)

__all__ = ["sweep", "plan", "Task", "Scheme", "summarize", "results_from_rows", "default_mesh",
           "parse_scheme", "parse_pair", "CELL_FIELDS", "SUMMARY_COLUMNS"]

#: The row fields that identify a cell: everything that changes the values of a row.
CELL_FIELDS = ("scheme", "activation", "depth", "width", "seed", "bias", "key", "batch_size",
               "input_dim", "precision", "input_correlation", "saturation_threshold", "statistics")


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
      fixed: the row fields every row of this task shares (key, options).
    """

    config: Config
    cells: list[Cell]
    seeds: list[int]
    key: jax.Array
    mesh: Mesh
    fixed: dict[str, Any] = dataclasses.field(default_factory=dict)

    def arguments(self) -> tuple[jax.Array, jax.Array, jax.Array]:
        """(keys, gain_w, gain_b): the seed keys padded to a multiple of the mesh size."""
        size = self.mesh.devices.size * (self.config.seed_chunk or 1)
        padded = list(self.seeds)
        extra = max(padded) + 1 if padded else 0
        while len(padded) % size:
            padded.append(extra)
            extra += 1
        keys = seed_keys(self.key, padded)
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
        return program(self.config, self.mesh)

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
                out.append(_row(c, cfg, self.fixed, seed, stats[i, :, r, :], back[i, :, r]))
        return out


def _row(cell: Cell, cfg: Config, fixed: Mapping[str, Any], seed: int, stats: np.ndarray,
         back: np.ndarray) -> dict[str, Any]:
    row: dict[str, Any] = {
        "scheme": cell.scheme.label,
        "activation": cell.activation.label,
        "depth": cfg.depth,
        "width": cfg.width,
        "seed": int(seed),
        "bias": cell.scheme.bias_label,
        **fixed,
        "input_dim": cfg.input_dim,
        "sigma_w2": cell.scheme.sigma_w2,
        "sigma_b2": cell.scheme.sigma_b2,
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


def _as_list(value: Any, argument: str, *, schemes: bool = False) -> list[Any]:
    """`value` as a list: a single value is a list of one. With `schemes`, a mean-field pair
    (2.0, 0.05) and a (name, kwargs) pair are single values, not sequences."""
    if value is None:
        raise ValueError(f"`{argument}` must be given.")
    if isinstance(value, str | int | np.integer) or callable(value) or (
        schemes and isinstance(value, tuple) and len(value) == 2
        and (all(is_number(v) for v in value)
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
    if isinstance(seeds, int | np.integer) and not isinstance(seeds, bool):
        return list(range(check_int(seeds, "seeds", minimum=1)))
    legal = "a count (int >= 1) or a non-empty sequence of distinct ints >= 0"
    if isinstance(seeds, str | bool) or not hasattr(seeds, "__iter__"):
        raise TypeError(f"`seeds` must be {legal}, got {seeds!r}.")
    out = [check_int(s, "seeds") for s in seeds]
    if not out or any(s < 0 for s in out) or len(set(out)) != len(out):
        raise ValueError(f"`seeds` must be {legal}, got {seeds!r}.")
    return out


@renamed(batch="batch_size")
def plan(
    schemes: Any = None,
    activations: Any = None,
    depths: Any = (16,),
    widths: Any = (256,),
    *,
    pairs: Sequence[tuple[Any, Any]] | None = None,
    seeds: int | Sequence[int] = 4,
    batch_size: int = 256,
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
    key = single_key(key, "sweep")
    depths = [check_int(d, "depths", minimum=1) for d in _as_list(depths, "depths")]
    widths = [check_int(w, "widths", minimum=1) for w in _as_list(widths, "widths")]
    seed_list = _seeds(seeds)
    options = ProbeOptions(batch_size, input_dim, precision, remat, input_correlation,
                           saturation_threshold, statistics)
    own_mesh = mesh is None
    mesh = _check_mesh(mesh)
    pindex = jax.process_index() if process_index is None else check_int(
        process_index, "process_index", minimum=0)
    pcount = jax.process_count() if process_count is None else check_int(
        process_count, "process_count", minimum=1)
    if not pindex < pcount:
        raise ValueError(
            f"`process_index` must be in [0, process_count), got {pindex} of {pcount}."
        )

    if pairs is not None:
        if schemes is not None or activations is not None:
            raise ValueError("give either `pairs` or `schemes` and `activations`, not both.")
        combos = []
        for p in _as_list(pairs, "pairs"):
            if not (isinstance(p, tuple | list) and len(p) == 2):
                raise TypeError(f"`pairs` entries must be (scheme, activation) pairs, got {p!r}.")
            combos.append((p[0], p[1]))
    else:
        scheme_list = _scheme_items(schemes)
        act_list = _as_list(activations, "activations")
        combos = [(s, a) for s in scheme_list for a in act_list]

    bias = None
    if bias_init is not None:
        if isinstance(bias_init, str):
            bias = named_closure(bias_init, {}, "bias_init")
        elif (isinstance(bias_init, tuple) and len(bias_init) == 2
              and isinstance(bias_init[0], str) and isinstance(bias_init[1], Mapping)):
            bias = named_closure(bias_init[0], bias_init[1], "bias_init")
        else:
            bias = check_callable_init(bias_init, "bias_init")
    fixed = {"key": [int(v) for v in np.asarray(jax.random.key_data(key)).ravel()],
             "batch_size": options.batch_size, "precision": options.precision,
             "input_correlation": options.input_correlation,
             "saturation_threshold": options.saturation_threshold,
             "statistics": options.statistics}

    tasks = []
    work = 0  # running index of (program, seed) work items, for the multi-host split
    for depth in depths:
        for width in widths:
            n0 = options.input_dim_for(width)
            cells_in: list[tuple[Scheme, Activation]] = []
            for spec, act_spec in combos:
                label = None
                if isinstance(spec, _Labelled):
                    label, spec = spec.label, spec.spec
                scheme = resolve_scheme(spec, bias, width, label=label)
                act = resolve_activation(act_spec)
                cells_in.append((scheme, act))
            for s, _ in cells_in:
                check_initializer(s.kernel, "schemes", (n0, width))
                if depth > 1:
                    check_initializer(s.kernel, "schemes", (width, width))
                if s.bias is not None:
                    check_initializer(s.bias, "bias_init", (width,))
            for cfg_members, cells in _row_groups(*_members(cells_in), options.batch_size):
                mine = []
                for seed in seed_list:
                    if work % pcount == pindex:
                        mine.append(seed)
                    work += 1
                rows = sum(m.rows for m in cfg_members)
                chunk = seed_chunk_for(rows, options.batch_size, len(seed_list))
                cfg = Config.build(cfg_members, depth, width, options, seeds_per_device=chunk,
                                   seed_chunk=chunk)
                # Seeds are padded to a multiple of (devices x chunk); with the default mesh, use
                # only the devices the seeds fill (results do not depend on the device count).
                task_mesh = mesh
                if own_mesh and mine:
                    needed = -(-len(mine) // chunk)
                    if needed < mesh.devices.size:
                        task_mesh = Mesh(mesh.devices.flat[:needed].reshape(-1), mesh.axis_names)
                tasks.append(Task(config=cfg, cells=cells, seeds=mine, key=key, mesh=task_mesh,
                                  fixed=dict(fixed)))
    return tasks


#: Rows of one task when a program's single member is split (CPU; see `_row_groups`).
CPU_ROWS_PER_TASK = 8


def _row_groups(members: list[Member], cells: list[Cell], batch: int,
                backend: str | None = None) -> list[tuple[list[Member], list[Cell]]]:
    """The (members, cells) of each task of one (depth, width).

    A program whose only member has many rows (a grid of mean-field pairs, vmapped over their
    scales) is split into tasks of equal row counts (the last one padded with rows that are
    computed and dropped): they share one compiled program, and each task's rows are written,
    counted in the progress and kept on a resume as soon as it finishes. Everything else is one
    task.
    """
    backend = backend or jax.default_backend()
    size = CPU_ROWS_PER_TASK if backend == "cpu" else max(CPU_ROWS_PER_TASK,
                                                          TARGET_ROWS // batch)
    if len(members) != 1 or members[0].rows <= size:
        return [(members, cells)]
    m = members[0]
    member = Member(m.kernel, m.bias, m.activation, size)
    return [([member], [dataclasses.replace(c, member=0, row=i) for i, c in
                        enumerate(cells[start:start + size])])
            for start in range(0, len(cells), size)]


#: Rows (batch x program rows) per matmul that a seed chunk aims for: enough to fill a GPU.
TARGET_ROWS = 32768


def seed_chunk_for(rows: int, batch: int, num_seeds: int, backend: str | None = None) -> int:
    """Seeds per vmapped chunk: from the problem size and backend, never from the device count.

    Each device runs its seeds in chunks of this size, so every chunk has the same shapes on one
    device or many and the rows are bit-for-bit identical. On accelerators chunks hold enough
    seeds for about `TARGET_ROWS` matmul rows (one seed when a seed alone has that many); on CPU,
    whose matmuls do not gain from taller operands, about `CPU_MATMUL_ROWS`.
    """
    backend = backend or jax.default_backend()
    target = CPU_MATMUL_ROWS if backend == "cpu" else TARGET_ROWS
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
    return _as_list(schemes, "schemes", schemes=True)


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
            _, unit_bias = unit_closures()
            raw.append((scheme.kernel, unit_bias, act, [i]))
        else:
            raw.append((scheme.kernel, scheme.bias, act, [i]))
    members = [Member(k, b, a, len(idx)) for k, b, a, idx in raw]
    ordered, where = canonical_members(members)
    cells: list[Cell] = []
    for m_index, (_, _, _, idx) in enumerate(raw):
        for row, i in enumerate(idx):
            scheme, act = cells_in[i]
            cells.append(Cell(scheme=scheme, activation=act, member=where[m_index], row=row))
    return list(ordered), cells


@renamed(batch="batch_size")
def sweep(
    schemes: Any = None,
    activations: Any = None,
    depths: Any = (16,),
    widths: Any = (256,),
    *,
    pairs: Sequence[tuple[Any, Any]] | None = None,
    seeds: int | Sequence[int] = 4,
    batch_size: int = 256,
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
      batch_size: inputs per seed.
      key: base PRNG key (or int); seed s uses ``fold_in(key, s)``.
      bias_init: a bias closure, registry name or (name, kwargs) pair for the closure schemes
        (None: no bias).
      input_dim: dimension of the input (default: the width).
      precision: one of `jwinit.probe.PRECISIONS`.
      remat: 'auto', 'none', 'layer' or 'sqrt' (see `jwinit.probe`).
      input_correlation: correlation of the input pairs.
      saturation_threshold: |phi'| at or below which a unit counts as dead/saturated.
      statistics: 'all', 'second_moments' (only forward/backward; the others NaN) or 'forward'
        (no backward pass; 'backward' NaN).
      mesh: a ``jax.sharding.Mesh`` of local devices; the seed axis is sharded over all its axes
        (default: every local device).
      process_index, process_count: override ``jax.process_index()``/``jax.process_count()``.
      out: a JSON-lines file to append rows to as each program finishes (with several processes,
        each writes ``<stem>.p<index><suffix>``).
      resume: skip the (scheme, activation, depth, width, seed) cells already in `out`, and
        return them with the new rows.
      progress: called as ``progress(done, total)`` with the number of this process's rows done:
        first, before anything is computed, with the rows read back from `out` (a resume), then
        after each compiled program finishes.

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
    kwargs = dict(pairs=pairs, seeds=seeds, batch_size=batch_size, key=key, bias_init=bias_init,
                  input_dim=input_dim, precision=precision, remat=remat,
                  input_correlation=input_correlation,
                  saturation_threshold=saturation_threshold, statistics=statistics, mesh=mesh,
                  process_index=process_index, process_count=process_count)
    tasks = plan(schemes, activations, depths, widths, **kwargs)
    check_bool(resume, "resume")
    path = None
    if out is not None:
        path = _shard_path(out, kwargs.get("process_index"), kwargs.get("process_count"))
    cells = ResumableCells(path, CELL_FIELDS, resume=resume)
    rows: list[dict[str, Any]] = []

    def cell(c: Cell, seed: int, task: Task) -> dict[str, Any]:
        return {"scheme": c.scheme.label, "activation": c.activation.label,
                "depth": task.config.depth, "width": task.config.width, "seed": seed,
                "bias": c.scheme.bias_label, "input_dim": task.config.input_dim, **task.fixed}

    total = sum(len(t.cells) * len(t.seeds) for t in tasks)
    done = sum(cell(c, s, t) in cells for t in tasks for c in t.cells for s in t.seeds)
    if progress is not None:
        progress(done, total)
    for task in tasks:
        full = task.seeds
        new = sum(cell(c, s, task) not in cells for c in task.cells for s in full)
        task.seeds = [s for s in full if any(cell(c, s, task) not in cells for c in task.cells)]
        cells.add(task.run())
        task.seeds = full
        rows.extend(cells.get(cell(c, s, task)) for c in task.cells for s in full)
        if progress is not None and new:
            done += new
            progress(done, total)
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
            depth=int(first["depth"]), width=int(first["width"]),
            batch_size=int(first["batch_size"]),
            input_dim=int(first["input_dim"]), precision=first.get("precision"),
            input_correlation=float(first.get("input_correlation", 0.5)),
            sigma_w2=first.get("sigma_w2"), sigma_b2=first.get("sigma_b2"),
            seeds=tuple(int(r["seed"]) for r in rs),
        )
    return out


#: The columns of `summarize`, in order: the cell, the regime (from the measurement), then the
#: theory (phase, prediction and agreement).
SUMMARY_COLUMNS = (
    "scheme", "activation", "depth", "width", "num_seeds",
    "verdict", "forward_verdict", "backward_verdict", "forward_rate", "backward_rate",
    "log_forward", "log_backward", "numerics",
    "theory_verdict", "phase", "chi1", "depth_scale", "theory_forward", "theory_backward",
    "tolerance", "agrees_with_theory",
)


def summarize(rows: Iterable[Mapping[str, Any]], *, theory: bool = True) -> list[dict[str, Any]]:
    """One dict per (scheme, activation, depth, width), with the `SUMMARY_COLUMNS`.

    ``verdict`` is the regime read off the measurement (`jwinit.probe.Assessment`);
    ``theory_verdict``, ``phase``, ``chi1`` and ``depth_scale`` come from mean-field theory, and
    ``agrees_with_theory`` says whether the measured log ratios lie within ``tolerance`` of the
    predicted ones.
    """
    out = []
    for (scheme, act, depth, width), res in results_from_rows(rows).items():
        a = res.assess(theory=theory)
        out.append({
            "scheme": scheme, "activation": act, "depth": depth, "width": width,
            "num_seeds": res.num_seeds, "verdict": a.verdict, "forward_verdict": a.forward,
            "backward_verdict": a.backward, "forward_rate": a.forward_rate,
            "backward_rate": a.backward_rate, "log_forward": a.log_forward,
            "log_backward": a.log_backward, "numerics": a.numerics,
            "theory_verdict": a.theory_regime, "phase": a.phase, "chi1": a.chi1,
            "depth_scale": a.depth_scale, "theory_forward": a.theory_forward,
            "theory_backward": a.theory_backward, "tolerance": a.tolerance,
            "agrees_with_theory": a.agrees_with_theory,
        })
    return out

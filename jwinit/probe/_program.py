"""The compiled probe program: layers in a scan, seeds vmapped and sharded, weights sampled inside.

One program serves every (kernel, bias, activation) member of a `Config`: all of them advance
together through one ``lax.scan`` over layers, with one batched matmul per distinct kernel closure
per layer. Weights are sampled in the scan body from ``fold_in(k_w, layer)`` by the initializer
itself; the backward pass comes from one VJP, and per-layer gradient statistics come out of a
custom-VJP "tap" whose cotangent is the statistic itself. Programs are cached by their static
configuration.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.ad_checkpoint import checkpoint_name

from jwinit._checks import typed_key
from jwinit.activations import Activation, get_activation
from jwinit.probe._stats import Reductions, layer_stats

__all__ = ["Member", "Config", "program", "canonical_members", "row_slices", "seed_keys",
           "resolve_remat", "memory_budget", "carry_bytes", "weight_bytes", "dot_precision", "dot",
           "CPU_MATMUL_ROWS", "MAX_PROGRAMS", "resolve_activation", "single_key"]


# ------------------------------------------------------------------------------------------------
# precision


def dot_precision(precision: str | None, backend: str) -> Any:
    if precision is None:
        return lax.Precision.DEFAULT
    if precision == "highest":
        return lax.Precision.HIGHEST
    if precision == "bfloat16":
        return lax.DotAlgorithmPreset.BF16_BF16_F32
    # 'tensorfloat32': the TF32 algorithm where the hardware has it (NVIDIA GPUs), else the
    # backend's HIGH precision (bf16x3 on TPU, float32 on CPU).
    if backend in ("gpu", "cuda"):
        return lax.DotAlgorithmPreset.TF32_TF32_F32
    return lax.Precision.HIGH


def dot(a: jax.Array, w: jax.Array, precision: Any, dtype: Any = jnp.float32) -> jax.Array:
    """``a @ w`` contracting the last axis of `a` with the first of `w`, result in `dtype`."""
    return lax.dot_general(
        a, w, (((a.ndim - 1,), (0,)), ((), ())), precision=precision,
        preferred_element_type=dtype,
    )




# ------------------------------------------------------------------------------------------------
# the program


@dataclasses.dataclass(frozen=True, eq=False)
class Member:
    """One (kernel, bias, activation) combination inside a program, with `rows` scale rows.

    Row r of a member uses weights ``gain_w[r] * kernel(...)`` and biases ``gain_b[r] * bias(...)``
    (the gains are traced: a sweep over scales is one program, vmapped over the gains).
    Equality is by identity of the closures and by the activation's label.
    """

    kernel: Callable[..., Any]
    bias: Callable[..., Any] | None
    activation: Activation
    rows: int = 1

    def _key(self) -> tuple[Any, ...]:
        act = self.activation
        act_key = id(act.fn) if act.name.startswith("custom") else act.label
        return (id(self.kernel), id(self.bias), act_key, self.rows)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Member) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


@dataclasses.dataclass(frozen=True)
class Config:
    """The static configuration of one compiled probe program (its cache key)."""

    members: tuple[Member, ...]
    depth: int
    width: int
    input_dim: int
    batch: int
    precision: str | None
    remat: str  # 'none', 'layer' or 'sqrt' (resolved)
    input_correlation: float
    saturation_threshold: float
    backend: str
    seed_chunk: int | None = None  # seeds per vmapped chunk (None: all seeds of a device)
    statistics: str = "all"  # or 'second_moments'

    @property
    def num_rows(self) -> int:
        return sum(m.rows for m in self.members)

    @classmethod
    def build(cls, members: Sequence[Member], depth: int, width: int, options: Any, *,
              seeds_per_device: int, seed_chunk: int | None = None) -> Config:
        """The config of one program from validated `ProbeOptions` (resolving remat='auto')."""
        rows = sum(m.rows for m in members)
        return cls(
            members=tuple(members), depth=depth, width=width,
            input_dim=options.input_dim_for(width), batch=options.batch_size,
            precision=options.precision,
            remat=resolve_remat(options.remat, depth, width, options.batch_size, rows,
                                seeds_per_device, kernels=len(_kernel_groups(members))),
            input_correlation=options.input_correlation,
            saturation_threshold=options.saturation_threshold, backend=jax.default_backend(),
            seed_chunk=seed_chunk, statistics=options.statistics,
        )


def row_slices(members: Sequence[Member]) -> list[tuple[int, int]]:
    out, start = [], 0
    for m in members:
        out.append((start, start + m.rows))
        start += m.rows
    return out


def _kernel_groups(members: Sequence[Member]) -> list[tuple[Callable[..., Any], list[int]]]:
    """Distinct kernel closures (first-appearance order) and the member indices using each."""
    groups: dict[int, tuple[Callable[..., Any], list[int]]] = {}
    for i, m in enumerate(members):
        groups.setdefault(id(m.kernel), (m.kernel, []))[1].append(i)
    return list(groups.values())


def canonical_members(members: Sequence[Member]) -> tuple[tuple[Member, ...], list[int]]:
    """Members ordered so that those sharing a kernel closure are contiguous.

    Returns the ordered tuple and, for each input member, its index in that tuple.
    """
    order = [i for _, idx in _kernel_groups(members) for i in idx]
    where = [0] * len(members)
    for pos, i in enumerate(order):
        where[i] = pos
    return tuple(members[i] for i in order), where


@jax.custom_vjp
def _tap(h: jax.Array, sink: jax.Array) -> jax.Array:
    """Identity on `h`; the cotangent of `sink` (per row) is the mean square of h's cotangent."""
    del sink
    return h


def _tap_fwd(h: jax.Array, sink: jax.Array) -> tuple[jax.Array, None]:
    del sink
    return h, None


def _tap_bwd(_: None, ct: jax.Array) -> tuple[jax.Array, jax.Array]:
    return ct, jnp.mean(jnp.square(ct), axis=(1, 2))


_tap.defvjp(_tap_fwd, _tap_bwd)


def _input_pairs(key: jax.Array, batch: int, dim: int, c: float) -> jax.Array:
    """x ~ N(0, I): rows (2i, 2i + 1) have correlation `c`; every row is marginally N(0, I)."""
    x = jax.random.normal(key, (batch, dim), jnp.float32)
    pairs = batch // 2
    if pairs == 0:
        return x
    a = x[0 : 2 * pairs : 2]
    b = c * a + math.sqrt(max(1.0 - c * c, 0.0)) * x[1 : 2 * pairs : 2]
    out = jnp.stack([a, b], axis=1).reshape(2 * pairs, dim)
    return jnp.concatenate([out, x[2 * pairs :]], axis=0)


#: Rows per matmul on CPU backends (see `_per_seed`).
CPU_MATMUL_ROWS = 1024




def _per_seed(cfg: Config, key: jax.Array, gain_w: jax.Array, gain_b: jax.Array
              ) -> tuple[jax.Array, jax.Array]:
    """Forward statistics (depth, rows, len(STATS)) and backward mean squares (depth, rows)."""
    members = cfg.members
    rows = cfg.num_rows
    slices = row_slices(members)
    groups = _kernel_groups(members)
    bias_inits: dict[int, Callable[..., Any]] = {}
    for m in members:
        if m.bias is not None:
            bias_inits.setdefault(id(m.bias), m.bias)
    any_bias = bool(bias_inits)
    derivs = [m.activation.deriv for m in members]
    precision = dot_precision(cfg.precision, cfg.backend)
    n, n0 = cfg.width, cfg.input_dim

    # CPU matmuls run fastest with about a thousand rows (tall operands fall out of cache): there,
    # each member's rows are multiplied in blocks; accelerators get one big matmul per closure.
    max_rows = max(1, CPU_MATMUL_ROWS // cfg.batch) if cfg.backend == "cpu" else None

    k_w, k_b, k_x, k_g = jax.random.split(key, 4)
    x = _input_pairs(k_x, cfg.batch, n0, cfg.input_correlation)
    g = jax.random.normal(k_g, (cfg.batch, n), jnp.float32)
    gw = gain_w[:, None, None]
    gb = gain_b[:, None]

    def biases(layer: jax.Array) -> jax.Array:
        kb = jax.random.fold_in(k_b, layer)
        sampled = {i: b(kb, (n,), jnp.float32).astype(jnp.float32) for i, b in bias_inits.items()}
        parts = []
        for m in members:
            if m.bias is None:
                parts.append(jnp.zeros((m.rows, n), jnp.float32))
            else:
                parts.append(jnp.broadcast_to(sampled[id(m.bias)], (m.rows, n)))
        return (parts[0] if len(parts) == 1 else jnp.concatenate(parts, axis=0)) * gb

    def finish(pre: jax.Array, layer: jax.Array, sink: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = pre * gw
        if any_bias:
            h = h + biases(layer)[:, None, :]
        h = _tap(h, sink)
        red = Reductions(h, derivs, slices, cfg.saturation_threshold,
                         lean=cfg.statistics == "second_moments")
        return h, layer_stats(red)

    def first_layer(sink: jax.Array) -> tuple[jax.Array, jax.Array]:
        kw = jax.random.fold_in(k_w, 0)
        parts = []
        for kernel, idx in groups:
            w = kernel(kw, (n0, n), jnp.float32).astype(jnp.float32)
            xw = dot(x, w, precision)
            r = sum(members[i].rows for i in idx)
            parts.append(jnp.broadcast_to(xw, (r, cfg.batch, n)))
        pre = parts[0] if len(parts) == 1 else jnp.concatenate(parts, axis=0)
        return finish(pre, jnp.asarray(0, jnp.int32), sink)

    # The members' row blocks of the carry, cut with one split: its transpose in the backward pass
    # is one concatenate (slicing each block would give one full-size pad per member, summed).
    cuts = [start for start, _ in slices[1:]]

    def body(h_prev: jax.Array, xs: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        layer, sink = xs
        kw = jax.random.fold_in(k_w, layer)
        blocks_of = jnp.split(h_prev, cuts, axis=0) if cuts else [h_prev]
        parts = []
        for kernel, idx in groups:
            # Named so that remat='none' keeps it for the backward pass instead of re-sampling.
            w = checkpoint_name(kernel(kw, (n, n), jnp.float32).astype(jnp.float32), WEIGHT_NAME)
            acts = [members[i].activation(blocks_of[i]) for i in idx]
            # One matmul per kernel closure: every member and scale row that shares it (on CPU
            # in blocks of at most max_rows rows).
            a = acts[0] if len(acts) == 1 else jnp.concatenate(acts, axis=0)
            if max_rows is None or a.shape[0] <= max_rows:
                blocks = [a]
            else:  # split, not sliced: the backward pass joins the blocks with one concatenate
                blocks = jnp.split(a, list(range(max_rows, a.shape[0], max_rows)), axis=0)
            for a in blocks:
                r = a.shape[0]
                parts.append(
                    dot(a.reshape(r * cfg.batch, n), w, precision).reshape(r, cfg.batch, n)
                )
        pre = parts[0] if len(parts) == 1 else jnp.concatenate(parts, axis=0)
        return finish(pre, layer, sink)

    def forward(sinks: jax.Array) -> tuple[jax.Array, jax.Array]:
        h, stats0 = first_layer(sinks[0])
        rest = cfg.depth - 1
        if rest == 0:
            return h, stats0[None]
        layers = jnp.arange(1, cfg.depth, dtype=jnp.int32)
        h, stats = _scan_layers(body, h, (layers, sinks[1:]), cfg.remat)
        return h, jnp.concatenate([stats0[None], stats], axis=0)

    sinks = jnp.zeros((cfg.depth, rows), jnp.float32)
    if cfg.statistics == "forward":  # no backward pass: the gradient statistic is NaN
        _, stats = forward(sinks)
        return stats, jnp.full((cfg.depth, rows), jnp.nan, jnp.float32)
    h_last, vjp_fn, stats = jax.vjp(forward, sinks, has_aux=True)
    (back,) = vjp_fn(jnp.broadcast_to(g, h_last.shape))
    return stats, back


#: The name of the sampled weight matrices in the scan body (`jax.ad_checkpoint.checkpoint_name`).
WEIGHT_NAME = "jwinit_probe_weight"


def _scan_layers(body: Callable, h: jax.Array, xs: tuple[jax.Array, jax.Array], remat: str
                 ) -> tuple[jax.Array, jax.Array]:
    """Scan `body` over `xs` with a checkpointed body: for 'none' the sampled weights are saved
    for the backward pass (nothing is re-sampled: the backward recomputes only the elementwise
    phi'(h) from the carry), for 'layer' and 'sqrt' they are re-sampled from the key; 'sqrt'
    nests the scan in blocks of about sqrt(length) layers."""
    if remat == "none":
        policy = jax.checkpoint_policies.save_only_these_names(WEIGHT_NAME)
        return lax.scan(jax.checkpoint(body, policy=policy, prevent_cse=False), h, xs)
    step = jax.checkpoint(body, prevent_cse=False)
    length = xs[0].shape[0]
    if remat == "layer" or length < 4:
        return lax.scan(step, h, xs)
    block = math.isqrt(length - 1) + 1  # ceil(sqrt(length))
    blocks, tail = divmod(length, block)

    def run_block(carry, xs_block):
        return lax.scan(step, carry, xs_block)

    head = jax.tree.map(lambda a: a[: blocks * block].reshape(blocks, block, *a.shape[1:]), xs)
    h, ys = lax.scan(jax.checkpoint(run_block, prevent_cse=False), h, head)
    ys = ys.reshape(blocks * block, *ys.shape[2:])
    if tail:
        rest = jax.tree.map(lambda a: a[blocks * block :], xs)
        h, ys_tail = lax.scan(step, h, rest)
        ys = jnp.concatenate([ys, ys_tail], axis=0)
    return h, ys


def _run_seeds(cfg: Config, keys: jax.Array, gain_w: jax.Array, gain_b: jax.Array
               ) -> tuple[jax.Array, jax.Array]:
    """The per-seed probe vmapped over `keys` (seeds,).

    Returns ((seeds, depth, rows, len(STATS)), (seeds, depth, rows)).
    """
    return jax.vmap(lambda k: _per_seed(cfg, k, gain_w, gain_b))(keys)


_PROGRAMS: collections.OrderedDict[tuple[Any, ...], Callable[..., Any]] = collections.OrderedDict()
_PROGRAMS_LOCK = threading.Lock()
MAX_PROGRAMS = 64


def program(cfg: Config, mesh: jax.sharding.Mesh | None = None) -> Callable[..., Any]:
    """The jitted program for `cfg` (cached): ``fn(keys, gain_w, gain_b) -> (stats, backward)``.

    With a `mesh`, the seed axis of `keys` and of the outputs is sharded over all its axes with
    ``shard_map``; every device runs the same per-seed computation, so results do not depend on
    the number of devices.
    """
    cache_key = (cfg, None if mesh is None else (mesh.axis_names, tuple(mesh.devices.flat)))
    with _PROGRAMS_LOCK:
        fn = _PROGRAMS.get(cache_key)
        if fn is not None:
            _PROGRAMS.move_to_end(cache_key)
            return fn
    def run(keys, gw, gb):
        c = cfg.seed_chunk
        if c is None or c >= keys.shape[0]:
            return _run_seeds(cfg, keys, gw, gb)
        # Fixed-size chunks, one after the other: every chunk has the same shapes whatever the
        # number of seeds per device, so results do not depend on how seeds are sharded.
        chunks = keys.reshape(keys.shape[0] // c, c)
        stats, back = lax.map(lambda k: _run_seeds(cfg, k, gw, gb), chunks)
        return (stats.reshape(-1, *stats.shape[2:]), back.reshape(-1, *back.shape[2:]))
    if mesh is not None:
        from jax.sharding import PartitionSpec as P

        spec = P(tuple(mesh.axis_names))
        run = jax.shard_map(
            run, mesh=mesh, in_specs=(spec, P(), P()), out_specs=(spec, spec), check_vma=False
        )
    fn = jax.jit(run)
    with _PROGRAMS_LOCK:
        _PROGRAMS[cache_key] = fn
        while len(_PROGRAMS) > MAX_PROGRAMS:
            _PROGRAMS.popitem(last=False)
    return fn


def carry_bytes(depth: int, width: int, batch: int, rows: int, seeds: int) -> int:
    """Bytes of the per-layer carries ``remat='layer'`` keeps for the backward pass."""
    return 4 * depth * width * batch * rows * seeds


def weight_bytes(depth: int, width: int, kernels: int, seeds: int) -> int:
    """Bytes of the sampled weights ``remat='none'`` keeps: one (width, width) matrix per layer,
    distinct kernel closure and seed."""
    return 4 * depth * width * width * kernels * seeds


def memory_budget(device: Any | None = None) -> int:
    """A quarter of the memory of `device` (default: the first local device)."""
    device = device or jax.local_devices()[0]
    try:
        stats = device.memory_stats() or {}
    except Exception:  # some backends do not implement memory_stats
        stats = {}
    limit = stats.get("bytes_limit")
    if not limit:
        try:
            limit = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            limit = 8 << 30
        limit //= max(1, jax.local_device_count())
    return int(limit) // 4


def resolve_remat(remat: str, depth: int, width: int, batch: int, rows: int, seeds: int, *,
                  kernels: int = 1, budget: int | None = None) -> str:
    """'none', 'layer' or 'sqrt': `remat`, with 'auto' resolved by memory: 'none' (keep the
    sampled weights: no re-sampling in the backward pass) when the weights and the per-layer
    carries fit in `budget` (default `memory_budget()`), else 'layer' (re-sample, keep the
    carries) when the carries fit, else 'sqrt'."""
    if remat != "auto":
        return remat
    budget = memory_budget() if budget is None else budget
    carries = carry_bytes(depth, width, batch, rows, seeds)
    if carries + weight_bytes(depth, width, kernels, seeds) <= budget:
        return "none"
    return "layer" if carries <= budget else "sqrt"


def seed_keys(key: jax.Array, seeds: Sequence[int]) -> jax.Array:
    """``fold_in(key, seed)`` for each seed: a seed's network does not depend on the others."""
    idx = jnp.asarray(np.asarray(seeds, dtype=np.uint32))
    return jax.vmap(lambda s: jax.random.fold_in(key, s))(idx)


def single_key(key: Any, name: str) -> jax.Array:
    """One typed PRNG key from `key` (a key, a raw key or an int seed)."""
    key = typed_key(key, name)
    if key.shape != ():
        raise ValueError(f"`key` of `{name}` must be a single key, got shape {key.shape}.")
    return key


def resolve_activation(activation: Any) -> Activation:
    """`get_activation` with errors naming the argument `activation`."""
    try:
        return get_activation(activation)
    except (ValueError, TypeError) as e:
        msg = str(e)
        raise type(e)(msg if msg.startswith("`activation`") else f"`activation`: {msg}") from None

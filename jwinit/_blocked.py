"""Blocked, shard-local sampling of elementwise initializers: the same values in less memory.

With ``jax_threefry_partitionable`` (JAX's default), the random bits of ``jax.random.*(key,
shape)`` at element i (row-major linear index) are ``threefry2x32(key, (hi(i), lo(i)))``, xor-ed:
a function of the key and the element's position only. An elementwise initializer (a normal,
uniform or truncated-normal draw times scalars that depend on the whole shape) is therefore a
function of the position too, and any block of it can be computed on its own.

:func:`sample` computes ``init(key, shape, dtype)`` block by block: on each device only the rows of
its own shard (``shard_map``), and there a ``lax.map`` over row blocks, each computed from a *block
view* key: a key of a private PRNG implementation whose bits are those of the parent key at the
block's global positions. The initializer's own sampler then runs unchanged on the block (its
``pointwise`` form gets the full shape for its fans), so the values are bit-identical to the
unblocked, unsharded call, whatever the mesh and the block size; per-device temporaries are a
block's, not the shard's (XLA:CPU keeps threefry's two uint32 state arrays of the whole output
live otherwise: 3x the shard).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.random import define_prng_impl, threefry2x32_p
from jax.sharding import NamedSharding, PartitionSpec

__all__ = ["available", "sample", "sample_group", "block_rows", "BLOCK_ELEMENTS", "MIN_ELEMENTS"]

#: parameters (per device) with fewer elements are sampled in one piece
MIN_ELEMENTS = 1 << 14
#: the largest block, in elements (a block is at most 1/16 of the local shard too)
BLOCK_ELEMENTS = 1 << 20


@functools.cache
def _impl(rank: int):
    """A PRNG implementation whose key data is (k1, k2, offset_0, stride_0, ..., offset_r,
    stride_r): its 32-bit draws of shape s are the threefry bits of (k1, k2) at the linear
    indices sum_d (offset_d + i_d) * stride_d (the partitionable layout; total size < 2^32)."""

    def random_bits(kd, bit_width, shape):
        if bit_width != 32 or len(shape) != rank:
            raise NotImplementedError("block keys draw 32-bit words of their own rank only")
        lin = jnp.zeros(shape, jnp.uint32)
        for d in range(rank):
            idx = jax.lax.broadcasted_iota(jnp.uint32, shape, d)
            lin = lin + (kd[2 + 2 * d] + idx) * kd[3 + 2 * d]
        b1, b2 = threefry2x32_p.bind(kd[0], kd[1], jnp.zeros(shape, jnp.uint32), lin)
        return b1 ^ b2

    def refuse(*args, **kwargs):
        raise NotImplementedError("a block key only draws bits")

    return define_prng_impl(key_shape=(2 + 2 * rank,), seed=refuse, split=refuse,
                            random_bits=random_bits, fold_in=refuse,
                            name=f"jwinit_block_view_{rank}", tag=f"jwbv{rank}")


def available(init: Any, key: jax.Array, shape: tuple[int, ...], dtype: Any) -> bool:
    """Whether `init` can be sampled in blocks for this key, shape and dtype."""
    info = getattr(init, "jwinit_info", None)
    if info is None or info.pointwise is None or len(shape) == 0:
        return False
    if not jax.config.jax_threefry_partitionable or math.prod(shape) >= 2**32:
        return False
    if str(jax.random.key_impl(key)) not in ("threefry2x32", "fry"):
        return False
    return info.pointwise_ok(tuple(shape), np.dtype(dtype))


def block_rows(local: tuple[int, ...], group: int = 1) -> int:
    """Rows of the leading local axis per block: the largest divisor of it that keeps a block of
    `group` parameters within 1/32 of their local shards and BLOCK_ELEMENTS elements (XLA:CPU
    keeps about 4 blocks of threefry state live: temporaries of about 1/8 of a shard)."""
    rows = local[0]
    per_row = math.prod(local[1:])
    total = rows * per_row
    if total <= MIN_ELEMENTS:
        return rows
    target = max(1, min(BLOCK_ELEMENTS, total // 32) // max(per_row * group, 1))
    best = 1
    for r in range(1, min(rows, target) + 1):
        if rows % r == 0:
            best = r
    return best


def _axis_index(entry: Any, mesh: Any) -> tuple[jax.Array, int]:
    """(this device's index along the mesh axes `entry` shards a dimension over, their size)."""
    names = () if entry is None else (entry if isinstance(entry, tuple) else (entry,))
    index, size = jnp.uint32(0), 1
    for name in names:
        n = mesh.shape[name]
        index = index * jnp.uint32(n) + jax.lax.axis_index(name).astype(jnp.uint32)
        size *= n
    return index, size


def _local(shape, dtype, init, key_data, offsets, local):
    """The local blocks ``init(key_g)[offsets : offsets + local]`` of every key of the group
    `key_data` (G, 2), computed in row blocks: one loop for the whole group."""
    info = init.jwinit_info
    rank = len(shape)
    group = key_data.shape[0]
    strides = [math.prod(shape[d + 1:]) for d in range(rank)]
    r = block_rows(local, group)
    n_blocks = local[0] // r
    impl = _impl(rank)

    def draw(kd, b):
        words = [kd[0], kd[1]]
        for d in range(rank):
            off = offsets[d] + (b * jnp.uint32(r) if d == 0 else 0)
            words += [jnp.asarray(off, jnp.uint32), jnp.uint32(strides[d])]
        kb = jax.random.wrap_key_data(jnp.stack(words), impl=impl)
        return info.pointwise(kb, (r, *local[1:]), tuple(shape), np.dtype(dtype)).astype(dtype)

    def one(b):
        values = jax.vmap(draw, in_axes=(0, None))(key_data, b.astype(jnp.uint32))
        return tuple(values[g] for g in range(group))

    if n_blocks == 1:
        return list(one(jnp.uint32(0)))
    out = jax.lax.map(one, jnp.arange(n_blocks, dtype=jnp.uint32))
    return [jnp.reshape(o, local) for o in out]


def sample(init: Any, key: jax.Array, shape: tuple[int, ...], dtype: Any,
           sharding: NamedSharding | None = None) -> jax.Array:
    """``init(key, shape, dtype)``, bit for bit, computed in blocks (on each device only its
    shard, when `sharding` is given). Call only where :func:`available` is true."""
    return sample_group(init, [key], shape, dtype, sharding)[0]


def sample_group(init: Any, keys: Any, shape: tuple[int, ...], dtype: Any,
                 sharding: NamedSharding | None = None) -> list[jax.Array]:
    """``[init(k, shape, dtype) for k in keys]``, bit for bit, in ONE blocked loop (one program
    piece to compile for, say, every layer's MLP kernel), each result its own array; `keys` a
    list of keys or a batched key array."""
    shape = tuple(int(d) for d in shape)
    dtype = np.dtype(dtype)
    key_data = (jax.random.key_data(keys) if isinstance(keys, jax.Array) else
                jnp.stack([jax.random.key_data(k) for k in keys]))
    if sharding is None or all(e is None for e in sharding.spec):
        values = _local(shape, dtype, init, key_data, [jnp.uint32(0)] * len(shape), shape)
        if sharding is None:
            return values
        return [jax.lax.with_sharding_constraint(v, sharding) for v in values]
    mesh, spec = sharding.mesh, sharding.spec
    entries = tuple(spec) + (None,) * (len(shape) - len(spec))
    sizes = [_axis_size(e, mesh) for e in entries]
    if any(d % n for d, n in zip(shape, sizes, strict=True)):
        raise ValueError(f"shape {shape} is not divisible by the mesh axes {spec} of sizes "
                         f"{sizes}.")
    local = tuple(d // s for d, s in zip(shape, sizes, strict=True))

    def body(kd):
        offsets = []
        for d, e in enumerate(entries):
            index, _ = _axis_index(e, mesh)
            offsets.append(index * jnp.uint32(local[d]))
        return tuple(_local(shape, dtype, init, kd, offsets, local))

    out_specs = tuple(PartitionSpec(*entries) for _ in keys)
    return list(jax.shard_map(body, mesh=mesh, in_specs=PartitionSpec(), out_specs=out_specs,
                              check_vma=False)(key_data))


def _axis_size(entry: Any, mesh: Any) -> int:
    names = () if entry is None else (entry if isinstance(entry, tuple) else (entry,))
    return math.prod(mesh.shape[n] for n in names)

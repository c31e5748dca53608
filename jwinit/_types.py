"""The `Initializer` protocol, the closure builder every factory uses, and dtype helpers.

Every public initializer in jwinit is a *factory* that returns a closure

    init(key, shape, dtype=<factory default>, out_sharding=None) -> jax.Array

built by :func:`make_initializer`. The builder does the checks and conversions that every scheme
shares, so a scheme only writes its sampler:

* ``key`` must be a PRNG key (a typed key array or a raw ``uint32[..., 2]`` key): ``TypeError``.
* ``shape`` is canonicalized to a tuple of non-negative ints; the scheme's own shape check runs
  before any compute (``ValueError`` naming the shape).
* Sampling happens in float32 (float64/complex128 when those are requested, i.e. under x64), and the
  result is cast to the requested dtype: bfloat16/float16 never lose the distribution and QR-based
  schemes work in every dtype.
* ``out_sharding`` (a ``NamedSharding``, or a ``PartitionSpec`` under ``jax.set_mesh``) places the
  result; the values equal the unsharded result for the same key.
"""

from __future__ import annotations

import dataclasses
import math
import operator
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from jwinit._checks import check_key

Shape = tuple[int, ...]
DTypeLike = Any
OutSharding = NamedSharding | PartitionSpec | None

__all__ = [
    "Initializer",
    "InitInfo",
    "make_initializer",
    "compute_dtype",
    "canonical_dtype",
    "is_complex",
    "real_dtype",
    "check_key",
    "place",
]


@runtime_checkable
class Initializer(Protocol):
    """What every jwinit factory returns (the same protocol as ``jax.nn.initializers``).

    Flax calls it positionally as ``init(key, shape, param_dtype)``.
    """

    def __call__(
        self,
        key: jax.Array,
        shape: Sequence[int],
        dtype: DTypeLike = None,
        out_sharding: OutSharding = None,
    ) -> jax.Array: ...


# --------------------------------------------------------------------------------------------
# dtypes


def canonical_dtype(dtype: DTypeLike, *, argument: str = "dtype") -> np.dtype:
    """`dtype` as a canonical NumPy dtype (``None`` -> the default float dtype)."""
    if dtype is None:
        return np.dtype(jnp.zeros((), float).dtype)
    if isinstance(dtype, jax.Array | np.ndarray) and not isinstance(dtype, np.dtype):
        raise TypeError(
            f"`{argument}` must be a dtype, got an array of shape {np.shape(dtype)}. jwinit "
            "initializers are factories: write `jwinit.zeros()` and pass the result as the "
            "initializer, then call it as `init(key, shape, dtype)`."
        )
    try:
        dt = np.dtype(dtype)
    except TypeError as e:
        raise TypeError(f"`{argument}` must be a dtype, got {dtype!r}.") from e
    return np.dtype(jax.dtypes.canonicalize_dtype(dt))


def is_complex(dtype: DTypeLike) -> bool:
    return jnp.issubdtype(dtype, jnp.complexfloating)


def real_dtype(dtype: DTypeLike) -> np.dtype:
    """float32 for complex64, float64 for complex128, the dtype itself otherwise."""
    return np.dtype(np.zeros((), dtype).real.dtype) if is_complex(dtype) else np.dtype(dtype)


def compute_dtype(dtype: DTypeLike) -> np.dtype:
    """The dtype sampling happens in: float32/complex64, or the 64-bit dtype when requested.

    Half-precision real dtypes (bfloat16, float16, float8 ...) sample in float32 and are cast.
    """
    dtype = np.dtype(dtype)
    if is_complex(dtype):
        return dtype if dtype.itemsize >= 16 else np.dtype(jnp.complex64)
    if jnp.issubdtype(dtype, jnp.floating):
        return dtype if dtype.itemsize >= 8 else np.dtype(jnp.float32)
    return dtype


def _check_inexact(dtype: np.dtype, name: str) -> None:
    if not jnp.issubdtype(dtype, jnp.inexact):
        raise TypeError(
            f"`dtype` of `{name}` must be a floating or complex dtype, got {dtype.name}; legal: "
            "float32, float64, bfloat16, float16, complex64, complex128."
        )


# --------------------------------------------------------------------------------------------
# keys, shapes, sharding


def canonical_shape(shape: Any, name: str = "initializer") -> Shape:
    if isinstance(shape, int | np.integer):
        shape = (shape,)
    try:
        if any(isinstance(d, bool | np.bool_) for d in shape):
            raise TypeError
        out = tuple(operator.index(d) for d in shape)
    except TypeError:
        raise TypeError(f"`shape` of `{name}` must be a sequence of ints, got {shape!r}.") from None
    if any(d < 0 for d in out):
        raise ValueError(f"`shape` of `{name}` must be non-negative, got {out}.")
    return out


def place(x: jax.Array, out_sharding: OutSharding) -> jax.Array:
    """Put `x` on `out_sharding`: a ``NamedSharding``, or a ``PartitionSpec`` under a mesh.

    Works eagerly and under ``jit``, for meshes with ``Explicit`` or ``Auto`` axes. Placement never
    changes values.
    """
    if out_sharding is None:
        return x
    if isinstance(out_sharding, NamedSharding):
        mesh, spec = out_sharding.mesh, out_sharding.spec
    elif isinstance(out_sharding, PartitionSpec):
        mesh, spec = jax.sharding.get_abstract_mesh(), out_sharding
        if mesh is None or mesh.empty:
            raise ValueError(
                f"`out_sharding` is the PartitionSpec {out_sharding}, but no mesh is set: call "
                "the initializer under `with jax.set_mesh(mesh):` or pass a NamedSharding."
            )
    else:
        raise TypeError(
            f"`out_sharding` must be a NamedSharding, a PartitionSpec or None, got "
            f"{type(out_sharding).__name__}."
        )
    explicit = _uses_explicit_axes(mesh, spec)
    if isinstance(out_sharding, PartitionSpec):
        return jax.sharding.reshard(x, spec) if explicit else jax.lax.with_sharding_constraint(
            x, spec
        )
    return jax.device_put(x, out_sharding) if explicit else jax.lax.with_sharding_constraint(
        x, out_sharding
    )


def _uses_explicit_axes(mesh: Any, spec: PartitionSpec) -> bool:
    types = dict(zip(mesh.axis_names, getattr(mesh, "axis_types", ()), strict=False))
    used = []
    for entry in spec:
        if entry is None:
            continue
        used.extend(entry if isinstance(entry, tuple) else (entry,))
    if not used:
        return all(str(t).endswith("Explicit") for t in types.values()) and bool(types)
    return all(str(types.get(a, "")).endswith("Explicit") for a in used)


# --------------------------------------------------------------------------------------------
# description metadata


@dataclasses.dataclass(frozen=True)
class InitInfo:
    """What `jwinit.describe` reads off an initializer: the scheme's static description.

    ``describe(shape, dtype)`` returns a dict with any of ``fan_in``, ``fan_out``, ``mode``,
    ``distribution``, ``variance``, ``mean``, ``bounds``, ``scale``, ``notes``.
    """

    name: str
    describe: Callable[[Shape, np.dtype], dict[str, Any]]
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    validate: Callable[[Shape, np.dtype], None] = lambda shape, dtype: None
    pointwise: Callable[..., Any] | None = None
    pointwise_ok: Callable[[Shape, np.dtype], bool] = lambda shape, dtype: False


def make_initializer(
    sample: Callable[[jax.Array, Shape, np.dtype], jax.Array],
    *,
    name: str,
    dtype: DTypeLike,
    describe: Callable[[Shape, np.dtype], dict[str, Any]],
    check_shape: Callable[[Shape], None] | None = None,
    params: dict[str, Any] | None = None,
    inexact: bool = True,
    sharded_sample: bool = False,
    check_dtype: Callable[[np.dtype], None] | None = None,
    pointwise: Callable[..., Any] | None = None,
) -> Initializer:
    """Build the closure ``init(key, shape, dtype, out_sharding)`` around a sampler.

    Args:
      sample: ``sample(key, shape, dtype)`` with `dtype` the requested dtype; it returns an array
        of that shape in ``compute_dtype(dtype)`` (or already in `dtype`). When `sharded_sample`
        it takes a fourth argument, `out_sharding`, and places the result itself.
      name: the scheme's public name (used in errors and by `describe`).
      dtype: the factory's default dtype (``None``: the default float dtype at call time).
      describe: ``describe(shape, dtype) -> dict`` of static facts (see `InitInfo`).
      check_shape: raises ``ValueError`` naming the shape when the scheme cannot use it.
      params: the factory's arguments, for `describe` and the registry.
      inexact: whether the scheme needs a floating/complex dtype.
      check_dtype: further dtype check (``ValueError``/``TypeError`` naming it).
      pointwise: for schemes whose every entry is a function of the key's random bits at that
        entry's position (normal, uniform, truncated normal, times scalars of the shape):
        ``pointwise(key, block_shape, shape, dtype)`` draws a block of `block_shape` with the
        scalars of the whole `shape`, so that ``pointwise(key, shape, shape, dtype) ==
        sample(key, shape, dtype)``. Real dtypes sampled in float32 only. `jwinit.init_params`
        uses it to sample large parameters in blocks, shard by shard (`jwinit._blocked`).

    The closure and `jwinit.describe` run the same checks (shape, dtype), so `describe` refuses
    exactly what calling the initializer refuses.
    """
    if dtype is not None:
        default = canonical_dtype(dtype)
        if inexact:
            _check_inexact(default, name)
    else:
        default = None

    def validate(shape: Shape, dtype: np.dtype) -> None:
        if inexact:
            _check_inexact(dtype, name)
        if check_dtype is not None:
            check_dtype(dtype)
        if check_shape is not None:
            check_shape(shape)

    def init(
        key: jax.Array,
        shape: Sequence[int],
        dtype: DTypeLike = default,
        out_sharding: OutSharding = None,
    ) -> jax.Array:
        check_key(key, name)
        shape = canonical_shape(shape, name)
        dtype = canonical_dtype(dtype)
        validate(shape, dtype)
        if sharded_sample:
            out = sample(key, shape, dtype, out_sharding)
            return out.astype(dtype)
        out = sample(key, shape, dtype)
        return place(jnp.asarray(out).astype(dtype), out_sharding)

    init.__name__ = name
    init.__qualname__ = name
    init.__doc__ = f"jwinit `{name}` initializer: init(key, shape, dtype, out_sharding)."
    def pointwise_ok(shape: Shape, dtype: np.dtype) -> bool:
        if pointwise is None or is_complex(dtype) or not jnp.issubdtype(dtype, jnp.floating):
            return False
        try:
            validate(shape, dtype)
        except (TypeError, ValueError):
            return False
        return compute_dtype(dtype) == np.dtype(np.float32)

    init.jwinit_info = InitInfo(name=name, describe=describe, params=dict(params or {}),
                                validate=validate, pointwise=pointwise,
                                pointwise_ok=pointwise_ok)
    return init


def info_of(init: Callable) -> InitInfo | None:
    return getattr(init, "jwinit_info", None)


def prod(xs: Sequence[int]) -> int:
    return int(math.prod(xs))

"""The one validation vocabulary: every argument check in jwinit goes through these functions.

Each check raises before any compute, with a message that names the argument in backticks, the value
given and the legal values::

    `depth` must be an int >= 1, got 0.
    `mode` of `variance_scaling` must be one of ('fan_in', 'fan_out', ...), got 'fan'.

Type problems (a string where a number belongs) raise ``TypeError``; value problems (a negative
width) raise ``ValueError``. Tracers pass the value checks unchecked (their values are unknown), so
factories stay usable under ``jit`` and ``vmap``.
"""

from __future__ import annotations

import functools
import math
import numbers
import operator
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

__all__ = [
    "check_int",
    "check_real",
    "check_reals",
    "check_choice",
    "check_bool",
    "check_axes",
    "check_key",
    "typed_key",
    "check_callable_init",
    "check_initializer",
    "factory_name",
    "of",
    "normalize_axis",
    "is_key",
    "guard_factory",
]


def of(name: str | None) -> str:
    """`` of `name` `` for messages, or nothing."""
    return f" of `{name}`" if name else ""


def _shown(value: Any) -> str:
    return f"{type(value).__name__} {value!r}" if not isinstance(value, numbers.Number) else (
        repr(value))


def check_int(value: Any, argument: str, *, minimum: int | None = None,
              maximum: int | None = None, name: str | None = None) -> int:
    """`value` as a Python int (bools are refused), within [minimum, maximum]."""
    if minimum is not None and maximum is not None:
        legal = f"an int in [{minimum}, {maximum}]"
    elif minimum is not None:
        legal = f"an int >= {minimum}"
    elif maximum is not None:
        legal = f"an int <= {maximum}"
    else:
        legal = "an int"
    if isinstance(value, bool) or isinstance(value, jax.core.Tracer):
        raise TypeError(f"`{argument}`{of(name)} must be {legal}, got {_shown(value)}.")
    try:
        out = operator.index(value)
    except TypeError:
        raise TypeError(f"`{argument}`{of(name)} must be {legal}, got {_shown(value)}.") from None
    if (minimum is not None and out < minimum) or (maximum is not None and out > maximum):
        raise ValueError(f"`{argument}`{of(name)} must be {legal}, got {out}.")
    return int(out)


def _interval(low: float, high: float, low_open: bool, high_open: bool) -> str:
    if low == -math.inf and high == math.inf:
        return "a finite real number"
    if high == math.inf:
        if low == 0:
            return "a positive real number" if low_open else "a non-negative real number"
        return f"a real number {'>' if low_open else '>='} {low:g}"
    if low == -math.inf:
        return f"a real number {'<' if high_open else '<='} {high:g}"
    left, right = "(" if low_open else "[", ")" if high_open else "]"
    return f"a real number in {left}{low:g}, {high:g}{right}"


def check_real(value: Any, argument: str, *, low: float = -math.inf, high: float = math.inf,
               low_open: bool = False, high_open: bool = False, finite: bool = True,
               name: str | None = None) -> Any:
    """A real scalar in the interval (tracers pass unchecked); returns `value` unchanged.

    ``low_open``/``high_open`` exclude the end points; `finite` refuses inf and nan (with
    ``finite=False`` an infinite end of an unbounded interval is legal, nan never is).
    """
    legal = _interval(low, high, low_open, high_open)
    if isinstance(value, jax.core.Tracer):
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real | np.ndarray | jax.Array |
                                                 np.generic):
        raise TypeError(f"`{argument}`{of(name)} must be {legal}, got {_shown(value)}.")
    if np.ndim(value) != 0:
        raise TypeError(f"`{argument}`{of(name)} must be a scalar ({legal}), got an array of "
                        f"shape {np.shape(value)}.")
    kind = np.asarray(value).dtype.kind
    if kind not in "fiu":
        raise TypeError(f"`{argument}`{of(name)} must be {legal}, got {_shown(value)}.")
    v = float(value)
    bad = math.isnan(v) or (finite and math.isinf(v))
    bad = bad or v < low or v > high or (low_open and v == low) or (high_open and v == high)
    if bad:
        raise ValueError(f"`{argument}`{of(name)} must be {legal}, got {v!r}.")
    return value


def check_reals(value: Any, argument: str, *, low: float = 0.0, high: float = math.inf,
                legal: str = "finite and >= 0") -> None:
    """A real scalar or array whose every entry is finite and in [low, high] (tracers pass)."""
    if isinstance(value, jax.core.Tracer):
        return
    try:
        arr = np.asarray(value)
    except Exception:  # noqa: BLE001 - anything that is not array-like
        arr = np.asarray(None)
    if arr.dtype == bool or arr.dtype.kind not in "fiu":
        raise TypeError(f"`{argument}` must be a real number or array ({legal}), got {value!r}.")
    arr = arr.astype(np.float64)
    bad = ~np.isfinite(arr) | (arr < low) | (arr > high)
    if np.any(bad):
        shown = value if arr.ndim == 0 else arr[bad].ravel()[:4].tolist()
        raise ValueError(f"`{argument}` must be {legal}, got {shown!r}.")
    # The computation runs in the default float dtype (float32 without x64): a value finite in
    # float64 but not there would silently become inf.
    top = float(np.finfo(jax.numpy.zeros((), float).dtype).max)
    if np.any(np.abs(arr) > top):
        shown = value if arr.ndim == 0 else arr[np.abs(arr) > top].ravel()[:4].tolist()
        raise ValueError(f"`{argument}` must be {legal} and representable in "
                         f"{jax.numpy.zeros((), float).dtype} (|x| <= {top:.3g}), got {shown!r}.")


def check_choice(value: Any, argument: str, legal: Sequence[Any], *,
                 name: str | None = None) -> Any:
    """`value` if it is one of `legal` (compared with ``==``, strings only equal strings)."""
    ok = False
    try:
        ok = any(type(value) is type(v) and value == v or (value is None and v is None)
                 for v in legal)
    except Exception:  # noqa: BLE001 - an unhashable/uncomparable value is not legal
        ok = False
    if not ok:
        raise ValueError(f"`{argument}`{of(name)} must be one of {tuple(legal)}, got {value!r}.")
    return value


def check_bool(value: Any, argument: str, *, name: str | None = None) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"`{argument}`{of(name)} must be a bool (True or False), got "
                        f"{_shown(value)}.")
    return bool(value)


def check_axes(value: Any, argument: str, *, name: str | None = None) -> tuple[int, ...]:
    """An int or a sequence of ints as a tuple (``TypeError`` for anything else)."""
    legal = "an int or a sequence of ints"
    if isinstance(value, bool) or isinstance(value, str):
        raise TypeError(f"`{argument}`{of(name)} must be {legal}, got {_shown(value)}.")
    if isinstance(value, numbers.Integral):
        return (int(value),)
    try:
        out = tuple(value)
    except TypeError:
        raise TypeError(f"`{argument}`{of(name)} must be {legal}, got {_shown(value)}.") from None
    if not all(isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in out):
        raise TypeError(f"`{argument}`{of(name)} must be {legal}, got {value!r}.")
    return tuple(int(a) for a in out)


# ------------------------------------------------------------------------------------------------
# keys


def check_key(key: Any, name: str = "initializer") -> None:
    """Raise ``TypeError`` unless `key` is ONE PRNG key (typed, or a raw ``uint32[2]`` key).

    A batch of keys (``split(key, n)``) is refused here: an initializer samples one array per key.
    """
    dtype = getattr(key, "dtype", None)
    if dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        if np.ndim(key) != 0:
            raise TypeError(
                f"`key` of `{name}` must be a single PRNG key, got a batch of keys of shape "
                f"{np.shape(key)}; index it (keys[i]) or vmap over it."
            )
        return
    if dtype is not None and np.dtype(dtype) == np.uint32:
        if np.shape(key) == (2,) or (np.ndim(key) == 1 and _raw_key_width() == np.shape(key)[0]):
            return
        raise TypeError(
            f"`key` of `{name}` must be a single PRNG key: a raw uint32 key has shape "
            f"({_raw_key_width()},), got shape {np.shape(key)}; use `jax.random.key(seed)`."
        )
    raise TypeError(
        f"`key` of `{name}` must be a PRNG key from `jax.random.key(seed)` (or a raw "
        f"`jax.random.PRNGKey`), got {type(key).__name__}"
        + (f" of dtype {np.dtype(dtype).name}" if dtype is not None else f" {key!r}")
        + "."
    )


def _raw_key_width() -> int:
    return int(np.shape(jax.random.key_data(jax.random.key(0)))[-1])


def typed_key(key: Any, name: str) -> jax.Array:
    """One typed PRNG key from a key, a raw key or an int seed (``TypeError`` otherwise)."""
    if isinstance(key, numbers.Integral) and not isinstance(key, bool):
        if key < 0:
            raise ValueError(f"`key` of `{name}` as an int seed must be >= 0, got {key}.")
        return jax.random.key(int(key))
    check_key(key, name)
    if not jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.wrap_key_data(key)
    return key


# ------------------------------------------------------------------------------------------------
# initializers passed as arguments


def factory_name(obj: Any) -> str | None:
    """The public name of `obj` when it is a jwinit factory (not an initializer), else None.

    A factory is what you call to *get* an initializer: ``jwinit.he_normal`` is one,
    ``jwinit.he_normal()`` is the initializer it returns.
    """
    return getattr(obj, "jwinit_factory_name", None)


#: The initializers themselves among the public functions of jax.nn.initializers and
#: flax.linen.initializers; every other public function there is a factory.
_JAX_INITIALIZERS = ("zeros", "ones", "delta_orthogonal_init")


def foreign_factory_name(obj: Any) -> str | None:
    """'jax.nn.initializers.he_normal' when `obj` is a jax or flax initializer factory (not an
    initializer: ``jax.nn.initializers.he_normal()`` is one), else None."""
    module = getattr(obj, "__module__", None) or ""
    qualname = getattr(obj, "__qualname__", None) or ""
    if module not in ("jax.nn.initializers", "flax.linen.initializers", "flax.nnx.initializers"):
        return None
    if "<locals>" in qualname or qualname in _JAX_INITIALIZERS or qualname.startswith("_"):
        return None
    return f"{module}.{qualname}"


def check_callable_init(init: Any, argument: str, *, name: str | None = None,
                        optional: bool = False) -> Any:
    """`init` if it is an initializer closure; a factory passed by mistake gets "call it"."""
    if init is None and optional:
        return None
    fname = factory_name(init)
    if fname is not None:
        raise TypeError(
            f"`{argument}`{of(name)} is the factory `jwinit.{fname}`, not an initializer: call "
            f"it, `jwinit.{fname}()`, and pass the initializer it returns."
        )
    foreign = foreign_factory_name(init)
    if foreign is not None:
        raise TypeError(
            f"`{argument}`{of(name)} is the factory `{foreign}`, not an initializer: call it, "
            f"`{foreign}()`, and pass the initializer it returns."
        )
    if isinstance(init, str) or not callable(init):
        raise TypeError(
            f"`{argument}`{of(name)} must be an initializer `init(key, shape, dtype)` such as "
            f"`jwinit.he_normal()`, got {_shown(init)}."
        )
    return init


def check_initializer(init: Any, argument: str, shape: tuple[int, ...]) -> Callable[..., Any]:
    """`init` if it is an initializer giving real float arrays of `shape` (checked abstractly)."""
    import jax.numpy as jnp

    check_callable_init(init, argument)
    try:
        out = jax.eval_shape(lambda k: init(k, shape, jnp.float32), jax.random.key(0))
    except Exception as e:  # any failure means it is not usable as an initializer here
        raise TypeError(
            f"`{argument}` is not an initializer usable for shape {shape}: calling "
            f"`{argument}(key, {shape}, float32)` failed with {type(e).__name__}: {e}"
        ) from None
    if not hasattr(out, "shape") or tuple(out.shape) != shape:
        raise TypeError(
            f"`{argument}` is not an initializer usable for shape {shape}: "
            f"`{argument}(key, {shape}, float32)` returned "
            f"{getattr(out, 'shape', type(out).__name__)}, not an array of shape {shape}."
        )
    if not jnp.issubdtype(out.dtype, jnp.floating):
        raise TypeError(
            f"`{argument}` must return real floating arrays: `{argument}(key, {shape}, float32)` "
            f"returned {out.dtype}."
        )
    return init


def normalize_axis(axis: int, ndim: int, argument: str, shape: tuple[int, ...], *,
                   name: str | None = None) -> int:
    """`axis` in [0, ndim) for a weight of `shape` (``ValueError`` naming the legal range)."""
    if not -ndim <= axis < ndim:
        raise ValueError(
            f"`{argument}`={axis}{of(name)} is out of range for a weight of shape {shape} (rank "
            f"{ndim}); legal: {-ndim} .. {ndim - 1}."
        )
    return axis % ndim


def is_key(value: Any) -> bool:
    """A PRNG key (typed, or a raw uint32 key), concrete or traced."""
    dtype = getattr(value, "dtype", None)
    if dtype is None:
        return False
    if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        return True
    shape = getattr(value, "shape", ())
    return np.dtype(dtype) == np.uint32 and len(shape) >= 1 and shape[-1] == 2


def guard_factory(factory: Callable[..., Any], name: str) -> Callable[..., Any]:
    """`factory`, refusing to be called with a PRNG key as an initializer is called.

    Passing a factory where an initializer belongs (``nn.Dense(4, kernel_init=jwinit.he_normal)``
    instead of ``jwinit.he_normal()``) makes Flax call the factory as ``(key, shape, dtype)``; the
    factory would then read the key as its first argument and fail far from the mistake.
    """

    @functools.wraps(factory)
    def checked(*args: Any, **kwargs: Any) -> Any:
        if any(is_key(a) for a in args) or any(is_key(v) for v in kwargs.values()):
            raise TypeError(
                f"`jwinit.{name}` was called with a PRNG key, as an initializer is called: "
                f"jwinit initializers are factories, so call it, `jwinit.{name}()`, and pass the "
                f"initializer it returns (e.g. `kernel_init=jwinit.{name}()`)."
            )
        return factory(*args, **kwargs)

    checked.jwinit_factory_name = name  # what `factory_name` reads (no registry import here)
    return checked


def check_pattern(value: Any, name: str) -> str:
    """`value` if it is a non-empty, valid regular expression string."""
    import re

    if not isinstance(value, str) or not value:
        raise TypeError(f"`{name}` must be a regular expression string, got {value!r}.")
    try:
        re.compile(value)
    except re.error as e:
        raise ValueError(f"`{name}`: {value!r} is not a regular expression ({e}).") from None
    return value


def renamed(**old_to_new: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Keep a renamed keyword argument working for one release: ``@renamed(num_seeds='seeds')``
    maps ``num_seeds=`` to ``seeds=`` with a DeprecationWarning naming both; passing both is a
    TypeError. The signature shown is the new one (``functools.wraps``)."""
    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            for old, new in old_to_new.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"`{fn.__name__}` got both `{old}` (its old name) and "
                                        f"`{new}`; pass `{new}` only.")
                    warnings.warn(f"`{fn.__name__}({old}=...)` is deprecated and will be "
                                  f"removed in the next release; use `{new}=...`.",
                                  DeprecationWarning, stacklevel=2)
                    kwargs[new] = kwargs.pop(old)
            return fn(*args, **kwargs)

        return inner

    return wrap

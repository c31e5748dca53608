"""Activations: the function and everything the theory, the gains and the probe need to know of it.

Names: 'linear' ('identity'), 'relu', 'leaky_relu' (slope 0.01, or 'leaky_relu:0.2'), 'abs',
'tanh', 'hard_tanh', 'erf', 'sigmoid', 'gelu' (exact, erf-based), 'gelu_tanh' (tanh approximation),
'silu' ('swish'), 'elu' (alpha 1, or 'elu:0.5'), 'selu', 'softplus'.

An `Activation` carries, besides its function:

* ``kinks``: the points where phi' jumps (0 for the ReLU family, ELU, SELU; -1 and 1 for
  hard_tanh). Quadrature panels of `jwinit.theory` are cut there, so kinked integrands stay exact.
* ``smooth``: phi is analytic, so Gauss-Hermite quadrature converges spectrally (used by
  `jwinit.gain`).
* ``closed_form``: 'leaky' for the positively homogeneous family phi(x) = a x + (1 - a) relu(x)
  (linear a = 1, relu a = 0, abs a = -1, leaky_relu a = slope), whose Gaussian moments are the
  arc-cosine kernel of Cho & Saul 2009; 'erf' (Williams 1997); None otherwise (quadrature).
* ``slope``: the a of the 'leaky' family.

Adding an activation is one entry of `_SPECS` (with its metadata) plus a line in the theory test
table. A parameter is given after a colon (``'leaky_relu:0.2'``) or as a keyword of
:func:`get_activation`. Any callable ``phi: Array -> Array`` (elementwise) is accepted wherever a
name is; it is treated as kinked at 0 and without closed forms.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["Activation", "get_activation", "activation_names", "SELU_ALPHA", "SELU_LAMBDA"]

# Klambauer et al. 2017, eq. (14): the self-normalizing fixed point (mean 0, variance 1).
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_LAMBDA = 1.0507009873554804934193349852946


@dataclasses.dataclass(frozen=True)
class Activation:
    """An elementwise activation with a name, its family parameter and its analytic facts.

    Attributes:
      name: canonical family name ('relu', 'leaky_relu', 'tanh', ... or 'custom:<name>').
      fn: the function, elementwise on arrays.
      param: the family parameter (leaky slope, elu alpha) or None.
      kinks: points where phi' is discontinuous.
      smooth: phi is analytic (Gauss-Hermite quadrature is accurate).
      closed_form: 'leaky', 'erf' or None (see the module docstring).
      slope: a of phi(x) = a x + (1 - a) relu(x) when `closed_form` is 'leaky'.
    """

    name: str
    fn: Callable[[jax.Array], jax.Array]
    param: float | None = None
    kinks: tuple[float, ...] = ()
    smooth: bool = False
    closed_form: str | None = None
    slope: float | None = None

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.fn(x)

    def deriv(self, x: jax.Array) -> jax.Array:
        """phi'(x), elementwise, by forward-mode autodiff."""
        x = jnp.asarray(x)
        return jax.jvp(self.fn, (x,), (jnp.ones_like(x),))[1]

    def value_and_deriv(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(phi(x), phi'(x)) from one forward-mode pass (one fused kernel under jit)."""
        x = jnp.asarray(x)
        return jax.jvp(self.fn, (x,), (jnp.ones_like(x),))

    @property
    def label(self) -> str:
        return self.name if self.param is None else f"{self.name}:{self.param:g}"

    @property
    def custom(self) -> bool:
        """A user's callable rather than a registered name."""
        return self.name.startswith("custom")

    @property
    def positively_homogeneous(self) -> bool:
        """phi(a x) = a phi(x) for a > 0 (ReLU family and linear): depth-scale invariant."""
        return self.closed_form == "leaky"


def _leaky(slope: float) -> Callable[[jax.Array], jax.Array]:
    return lambda x: jnp.where(x >= 0, x, slope * x)


def _elu(alpha: float) -> Callable[[jax.Array], jax.Array]:
    return lambda x: jnp.where(x > 0, x, alpha * jnp.expm1(jnp.minimum(x, 0)))


def _selu(x: jax.Array) -> jax.Array:
    return SELU_LAMBDA * jnp.where(x > 0, x, SELU_ALPHA * jnp.expm1(jnp.minimum(x, 0)))


@dataclasses.dataclass(frozen=True)
class _Spec:
    """How to build one registered activation (`build` takes the parameter when `default` is
    set)."""

    build: Callable[..., Callable[[jax.Array], jax.Array]]
    default: float | None = None
    kinks: tuple[float, ...] = ()
    smooth: bool = False
    closed_form: str | None = None
    slope: float | None = None  # None with closed_form 'leaky': the parameter is the slope
    positive_param: bool = False


def _fixed(fn: Callable[[jax.Array], jax.Array]) -> Callable[[], Callable[[jax.Array], jax.Array]]:
    return lambda: fn


_SPECS: dict[str, _Spec] = {
    "linear": _Spec(_fixed(lambda x: x), smooth=True, closed_form="leaky", slope=1.0),
    "relu": _Spec(_fixed(lambda x: jnp.maximum(x, 0)), kinks=(0.0,), closed_form="leaky",
                  slope=0.0),
    "abs": _Spec(_fixed(jnp.abs), kinks=(0.0,), closed_form="leaky", slope=-1.0),
    "leaky_relu": _Spec(_leaky, default=0.01, kinks=(0.0,), closed_form="leaky"),
    "tanh": _Spec(_fixed(jnp.tanh), smooth=True),
    "hard_tanh": _Spec(_fixed(lambda x: jnp.clip(x, -1, 1)), kinks=(-1.0, 1.0)),
    "erf": _Spec(_fixed(jax.scipy.special.erf), smooth=True, closed_form="erf"),
    "sigmoid": _Spec(_fixed(jax.nn.sigmoid), smooth=True),
    "gelu": _Spec(_fixed(lambda x: jax.nn.gelu(x, approximate=False)), smooth=True),
    "gelu_tanh": _Spec(_fixed(lambda x: jax.nn.gelu(x, approximate=True)), smooth=True),
    "silu": _Spec(_fixed(jax.nn.silu), smooth=True),
    "elu": _Spec(_elu, default=1.0, kinks=(0.0,), positive_param=True),
    "selu": _Spec(_fixed(_selu), kinks=(0.0,)),
    "softplus": _Spec(_fixed(jax.nn.softplus), smooth=True),
}
_ALIASES = {"identity": "linear", "swish": "silu"}
# One function object per (name, parameter): programs and theory caches key on them.
_BUILT: dict[tuple[str, float | None], Activation] = {}


def activation_names() -> list[str]:
    """Every registered activation name (aliases included)."""
    return sorted([*_SPECS, *_ALIASES])


def _build(name: str, param: float | None) -> Activation:
    key = (name, param)
    if key not in _BUILT:
        spec = _SPECS[name]
        fn = spec.build() if spec.default is None else spec.build(param)
        slope = spec.slope
        if spec.closed_form == "leaky" and slope is None:
            slope = float(param)
        _BUILT[key] = Activation(name=name, fn=fn, param=param, kinks=spec.kinks,
                                 smooth=spec.smooth, closed_form=spec.closed_form, slope=slope)
    return _BUILT[key]


def _check_elementwise(fn: Callable[..., Any], name: str) -> None:
    """A callable activation must map a float array to a float array of the same shape."""
    probe = jax.ShapeDtypeStruct((5, 3), jnp.float32)
    try:
        out = jax.eval_shape(fn, probe)
    except Exception as e:  # noqa: BLE001 - any failure means it is not an activation here
        raise TypeError(
            f"`activation` {name!r} must be an elementwise function of an array: calling it on a "
            f"float32 array of shape (5, 3) failed with {type(e).__name__}: {e}"
        ) from None
    shape, dtype = getattr(out, "shape", None), getattr(out, "dtype", None)
    if shape != (5, 3) or dtype is None or not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(
            f"`activation` {name!r} must be elementwise (an array of shape (5, 3) in, the same "
            f"shape of floats out), got {shape} of {dtype} for a float32 (5, 3) input."
        )


def get_activation(activation: str | Callable[..., Any] | Activation, **params: Any) -> Activation:
    """Resolve a name ('tanh', 'leaky_relu:0.2'), callable or `Activation` to an `Activation`.

    Examples:
      >>> jwinit.get_activation('leaky_relu:0.2').slope
      0.2
      >>> jwinit.get_activation('tanh').smooth
      True

    Raises:
      ValueError: unknown name or bad parameter, naming the legal values.
      TypeError: neither a string nor a callable.
    """
    if isinstance(activation, Activation):
        if params:
            raise ValueError(f"parameters {params} given with an already built {activation}.")
        return activation
    if callable(activation) and not isinstance(activation, str):
        if params:
            raise ValueError(f"parameters {params} given with a callable activation.")
        name = getattr(activation, "__name__", "custom")
        _check_elementwise(activation, name)
        return Activation(name=f"custom:{name}", fn=activation)
    if not isinstance(activation, str):
        raise TypeError(
            f"`activation` must be a name or a callable, got {type(activation).__name__} "
            f"{activation!r}; legal names: {', '.join(activation_names())}."
        )
    name, _, arg = activation.strip().partition(":")
    name = _ALIASES.get(name, name)
    spec = _SPECS.get(name)
    if spec is None:
        raise ValueError(
            f"unknown activation {activation!r}; legal names: {', '.join(activation_names())} "
            "(or any callable)."
        )
    if spec.default is None:
        if arg or params:
            raise ValueError(f"activation {name!r} takes no parameter, got {arg or params}.")
        return _build(name, None)
    if len(params) > 1 or (params and arg):
        raise ValueError(f"activation {name!r} takes one parameter, got {arg!r} and {params}.")
    value: Any = arg if arg else next(iter(params.values()), spec.default)
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"activation parameter for {name!r} must be a number, got {value!r}."
        ) from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"activation parameter for {name!r} must be finite, got {value}.")
    if spec.positive_param and value <= 0:
        raise ValueError(f"{name} `alpha` must be positive, got {value}.")
    return _build(name, value)

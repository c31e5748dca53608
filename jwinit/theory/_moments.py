"""The Gaussian moments of one activation: closed forms where known, quadrature otherwise.

Everything mean-field theory needs of phi is an expectation over centred Gaussians: E[phi(u)^2],
E[phi'(u)^2], E[phi'(u)^4] with u ~ N(0, q), and E[phi(u1) phi(u2)], E[phi'(u1) phi'(u2)] over a
pair of correlation c. `Moments` computes them from the facts an `Activation` carries: the 'leaky'
family (phi = a x + (1 - a) relu(x)) and erf in closed form, everything else by a split Gaussian
quadrature whose panels are cut at the activation's kinks and at its length scales as q changes
(:func:`jwinit._quadrature.split_rule`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jwinit._checks import check_int
from jwinit._quadrature import bivariate_expectation, hermite_rule, split_rule
from jwinit.activations import Activation, get_activation

__all__ = ["Moments", "moments", "ActivationLike", "q_floor"]

ActivationLike = str | Callable[..., Any] | Activation

# Quadrature layout (see jwinit._quadrature.split_rule): fixed panel edges in z that resolve the
# Gaussian, plus edges at b / sqrt(q) for b in _SCALE_BREAKS (u-space), which follow the
# activation's kinks (Activation.kinks) and its length scales (saturation of tanh/sigmoid by
# |u| ~ 20) as q changes.
_ZBREAKS = (-4.0, -2.0, 2.0, 4.0)
_SCALE_BREAKS = (-20.0, -6.0, -2.0, 0.0, 2.0, 6.0, 20.0)
_CUTOFF = 10.0
_DEGREE_1D = 16  # nodes per panel, one-dimensional expectations
# nodes per panel and dimension of bivariate expectations: 12 reach ~1e-10 in float64; in float32
# 8 already reach its rounding (~5e-7) at half the cost
_DEGREE_2D = {8: 12, 4: 8}
CHEAP_DEGREE = 40  # Gauss-Hermite degree of the cheap bivariate rule (Newton's first steps)


def q_floor(q):
    """max(q, sqrt(tiny)): moments of phi' at q = 0 as the q -> 0+ limit."""
    return jnp.maximum(q, jnp.asarray(np.sqrt(np.finfo(q.dtype).tiny), q.dtype))


@dataclasses.dataclass(frozen=True)
class Moments:
    """The Gaussian moments of phi: closed forms where known, quadrature otherwise.

    ``kind`` is 'leaky' (phi = a x + (1 - a) relu(x): linear, relu, leaky_relu, abs), 'erf' or
    'quad'. Equality/hash use ``key`` only, so compiled functions are cached per activation.
    """

    key: Any
    kind: str
    act: Activation = dataclasses.field(compare=False)
    slope: float = 0.0
    breaks: tuple[float, ...] = _SCALE_BREAKS
    kinks: tuple[float, ...] = (0.0,)
    degree: int | None = None

    # one-dimensional expectations over u = sqrt(q) z -------------------------------------
    def _e1(self, fn: Callable[[jax.Array], jax.Array], q: jax.Array,
            floor: bool = False) -> jax.Array:
        if floor:
            # Moments of phi' at q = 0 as the q -> 0+ limit: the nodes then never sit on a
            # kink, where autodiff's phi' is an arbitrary choice, not the one-sided average.
            q = q_floor(q)
        dt = q.dtype
        if self.degree is not None:
            z, w = hermite_rule(self.degree, dt)
        else:
            tiny = jnp.asarray(np.finfo(dt).tiny, dt)
            inv = 1 / jnp.maximum(jnp.sqrt(q), tiny)
            brk = jnp.concatenate(
                [jnp.asarray(_ZBREAKS, dt), jnp.asarray(self.breaks, dt) * inv]
            )
            z, w = split_rule(jax.lax.stop_gradient(brk), 1, _DEGREE_1D, _CUTOFF, dt)
        return jnp.sum(w * fn(jnp.sqrt(q) * z))

    def m2(self, q: jax.Array) -> jax.Array:
        """E[phi(sqrt(q) z)^2]."""
        if self.kind == "leaky":
            return q * (0.5 * (1 + self.slope**2))
        if self.kind == "erf":
            return (2 / math.pi) * jnp.arcsin(_erf_ratio(q, 1.0))
        return self._e1(lambda u: self.act(u) ** 2, q)

    def d2(self, q: jax.Array) -> jax.Array:
        """E[phi'(sqrt(q) z)^2]."""
        if self.kind == "leaky":
            return jnp.full_like(q, 0.5 * (1 + self.slope**2))
        if self.kind == "erf":
            return (4 / math.pi) / jnp.sqrt(1 + 4 * q)
        return self._e1(lambda u: self.act.deriv(u) ** 2, q, floor=True)

    def d4(self, q: jax.Array) -> jax.Array:
        """E[phi'(sqrt(q) z)^4]."""
        if self.kind == "leaky":
            return jnp.full_like(q, 0.5 * (1 + self.slope**4))
        if self.kind == "erf":
            return (16 / math.pi**2) / jnp.sqrt(1 + 8 * q)
        return self._e1(lambda u: self.act.deriv(u) ** 4, q, floor=True)

    def dm2(self, q: jax.Array) -> jax.Array:
        """d/dq E[phi(sqrt(q) z)^2], by autodiff (at max(q, sqrt(tiny)) to stay finite)."""
        floor = jnp.asarray(np.sqrt(np.finfo(q.dtype).tiny), q.dtype)
        q = jnp.maximum(q, floor)
        return jax.jvp(self.m2, (q,), (jnp.ones_like(q),))[1]

    # bivariate expectations, equal variances q, correlation c -----------------------------
    def k(self, q: jax.Array, c: jax.Array) -> jax.Array:
        """E[phi(u1) phi(u2)]."""
        c = jnp.clip(c, -1, 1)
        if self.kind == "leaky":
            a = self.slope
            return a * q * c + (1 - a) ** 2 * q * _arccos_kernel(c)
        if self.kind == "erf":
            return (2 / math.pi) * jnp.arcsin(_erf_ratio(q, c))
        return bivariate_expectation(self.act.fn, self.act.fn, q, q, c, **self._rule2(q.dtype))

    def kd(self, q: jax.Array, c: jax.Array) -> jax.Array:
        """E[phi'(u1) phi'(u2)]."""
        c = jnp.clip(c, -1, 1)
        if self.kind == "leaky":
            a = self.slope
            return a + (1 - a) ** 2 * (math.pi - jnp.arccos(c)) / (2 * math.pi) + 0 * q
        if self.kind == "erf":
            return (4 / math.pi) / jnp.sqrt(1 + 4 * q + 4 * q * q * (1 - c * c))
        d = self.act.deriv
        return bivariate_expectation(d, d, q_floor(q), q_floor(q), c, **self._rule2(q.dtype))

    def k_kd(self, q: jax.Array, c: jax.Array, *, cheap: bool = False
             ) -> tuple[jax.Array, jax.Array]:
        """(E[phi(u1) phi(u2)], E[phi'(u1) phi'(u2)]) on one set of nodes.

        With `cheap`, a product Gauss-Hermite rule of degree `CHEAP_DEGREE` (1600 nodes instead
        of ~20000): about 1e-4 accurate, enough to bring a Newton iteration close to its root
        before the accurate rule polishes it.
        """
        if self.kind != "quad":
            return self.k(q, c), self.kd(q, c)
        fn = self.act.fn

        def both(u):
            return jnp.stack(jax.jvp(fn, (u,), (jnp.ones_like(u),)), axis=-1)

        q = q_floor(q)
        rule = self._rule2(q.dtype)
        if cheap:
            rule["hermite"] = CHEAP_DEGREE
        kk = bivariate_expectation(both, both, q, q, jnp.clip(c, -1, 1), **rule)
        return kk[0], kk[1]

    def k_kd_pair(self, q1: jax.Array, q2: jax.Array, c: jax.Array
                  ) -> tuple[jax.Array, jax.Array]:
        """(E[phi(u1) phi(u2)], E[phi'(u1) phi'(u2)]) for E u1^2 = q1, E u2^2 = q2 (unequal
        variances: two inputs of different norms), correlation c. Closed forms: 'leaky'
        sqrt(q1 q2) (a c + (1 - a)^2 J(c)) and a + (1 - a)^2 (pi - arccos c) / (2 pi); erf
        (2/pi) arcsin(2 q12 / sqrt((1 + 2 q1)(1 + 2 q2))) and
        (4/pi) / sqrt((1 + 2 q1)(1 + 2 q2) - 4 q12^2), q12 = c sqrt(q1 q2) (Williams 1997)."""
        c = jnp.clip(c, -1, 1)
        if self.kind == "leaky":
            a = self.slope
            return (jnp.sqrt(q1 * q2) * (a * c + (1 - a) ** 2 * _arccos_kernel(c)),
                    self.kd(q1, c))
        if self.kind == "erf":
            q12 = c * jnp.sqrt(q1 * q2)
            den = (1 + 2 * q1) * (1 + 2 * q2)
            return ((2 / math.pi) * jnp.arcsin(2 * q12 / jnp.sqrt(den)),
                    (4 / math.pi) / jnp.sqrt(den - 4 * q12 * q12))
        fn = self.act.fn

        def both(u):
            return jnp.stack(jax.jvp(fn, (u,), (jnp.ones_like(u),)), axis=-1)

        kk = bivariate_expectation(both, both, q_floor(q1), q_floor(q2), c,
                                   **self._rule2(q1.dtype))
        return kk[0], kk[1]

    def _rule2(self, dtype: Any) -> dict[str, Any]:
        return dict(breaks=self.breaks, kinks=self.kinks, zbreaks=_ZBREAKS, panels=1,
                    degree=_DEGREE_2D[np.dtype(dtype).itemsize], cutoff=_CUTOFF,
                    hermite=self.degree)


def _arccos_kernel(c: jax.Array) -> jax.Array:
    """E[relu(z1) relu(c z1 + sqrt(1 - c^2) z2)] = (sqrt(1 - c^2) + (pi - arccos c) c) / (2 pi)."""
    return (jnp.sqrt(jnp.maximum(1 - c * c, 0)) + (math.pi - jnp.arccos(c)) * c) / (2 * math.pi)


def _erf_ratio(q: jax.Array, c: Any) -> jax.Array:
    """2 q c / (1 + 2 q), written to stay exact for tiny q and finite for q = inf."""
    small = 2 * q * c / (1 + 2 * q)
    large = c * (1 - 1 / (1 + 2 * jnp.where(q < 1, 1, q)))
    return jnp.where(q < 1, small, large)


def _model_key(act: Activation) -> Any:
    return act.fn if act.custom else (act.name, act.param)


@functools.lru_cache(maxsize=256)
def _cached_model(key: Any, act: Activation, degree: int | None) -> Moments:
    if act.closed_form == "leaky":
        return Moments(key=(key, None), kind="leaky", act=act, slope=float(act.slope))
    if act.closed_form == "erf":
        return Moments(key=(key, None), kind="erf", act=act)
    kinks = (0.0, *(k for k in act.kinks if k != 0.0))
    breaks = tuple(sorted(set(_SCALE_BREAKS + kinks)))
    return Moments(key=(key, degree), kind="quad", act=act, breaks=breaks, kinks=kinks,
                   degree=degree)


def moments(activation: ActivationLike, degree: int | None = None) -> Moments:
    """The (cached) `Moments` of an activation (`degree`: Gauss-Hermite of that degree)."""
    act = get_activation(activation)
    if degree is not None:
        degree = check_int(degree, "degree", minimum=1)
    return _cached_model(_model_key(act), act, degree)

"""Mean-field theory of signal propagation in wide random networks.

For a fully connected network with i.i.d. zero-mean weights and biases,

    h^{l+1} = W^{l+1} phi(h^l) + b^{l+1},   Var(W_ij) = sigma_w2 / n_l,   Var(b_i) = sigma_b2,

the pre-activations of every layer are, in the limit of infinite width, centred Gaussians whose
second moment q^l and whose correlation c^l between two inputs follow deterministic maps
(Poole et al. 2016; Schoenholz et al. 2017). With z, z1, z2 i.i.d. N(0, 1):

* length map      q' = sigma_w2 E[phi(sqrt(q) z)^2] + sigma_b2                     (`q_map`)
* its fixed point q* = q_map(q*), the stable one reached from q0 = 1           (`fixed_point`)
* gradient factor chi1 = sigma_w2 E[phi'(sqrt(q*) z)^2]                               (`chi1`)
* correlation map c' = (sigma_w2 E[phi(u1) phi(u2)] + sigma_b2) / q*,
  u1 = sqrt(q*) z1, u2 = sqrt(q*) (c z1 + sqrt(1 - c^2) z2)                          (`c_map`)
* its slope       chi_c = sigma_w2 E[phi'(u1) phi'(u2)]                               (`chi_c`)
* depth scales    xi_q = -1 / log(chi_q),  xi_c = -1 / log(chi_c(c*))          (`depth_scales`)
* edge of chaos   chi1 = 1                                               (`critical_sigma_w2`)
* per-layer forward / backward second moments of a finite-depth MLP                (`predict`)
* moments of the input-output Jacobian spectrum (Pennington et al. 2017, 2018)
  (`jacobian_spectrum`), and all of the above on a grid (`phase_diagram`).

Numerics: closed forms for 'linear', 'relu', 'leaky_relu', 'abs' (the degree-1 arc-cosine kernel
of Cho & Saul 2009) and 'erf' (Williams 1997); every other activation (any elementwise callable
too) by Gaussian quadrature with panel edges that follow the activation's kinks and length scales
as q changes (:func:`jwinit._quadrature.split_rule`). In float64 the one-dimensional
expectations are accurate to ~1e-12 and the bivariate ones (c-map) to ~1e-10 for
1e-4 <= q <= 1e4; in float32 to its rounding. ``degree=n`` switches to Gauss-Hermite of
degree n (fine for smooth activations at moderate q). Derivatives of phi and of the maps are taken
by autodiff. Every function is pure JAX: jit-able, and vmap-able over its numeric arguments, which
may also be arrays (broadcast against each other) or tracers. Computation is in float64 under
``jax.enable_x64`` and in float32 otherwise. Concrete arguments are validated eagerly. Where no
fixed point exists (ReLU with sigma_w2 > 2, say) q* is inf (run-away) or nan (no convergence)
and so is every quantity defined at q*, never a finite stand-in; quantities that do not depend
on q keep their value (the ReLU chi1 = sigma_w2 / 2).

Passing an activation as a callable (``jax.nn.relu`` instead of ``'relu'``) bypasses the closed
forms: this is how the tests check the closed forms against the quadrature.

References:
  Poole, Lahiri, Raghu, Sohl-Dickstein, Ganguli 2016, "Exponential expressivity in deep neural
  networks through transient chaos". Schoenholz, Gilmer, Ganguli, Sohl-Dickstein 2017, "Deep
  information propagation". Pennington, Schoenholz, Ganguli 2017, "Resurrecting the sigmoid in
  deep learning through dynamical isometry"; 2018, "The emergence of spectral universality in deep
  networks". Klambauer, Unterthiner, Mayr, Hochreiter 2017, "Self-normalizing neural networks".
  Cho & Saul 2009, "Kernel methods for deep learning". Williams 1997, "Computing with infinite
  networks".
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jwinit._quadrature import bivariate_expectation, hermite_rule, split_rule
from jwinit.activations import Activation, get_activation

__all__ = [
    "q_map",
    "fixed_point",
    "chi1",
    "chi_q",
    "c_map",
    "chi_c",
    "correlation_fixed_point",
    "depth_scales",
    "DepthScales",
    "critical_sigma_w2",
    "predict",
    "Prediction",
    "jacobian_spectrum",
    "JacobianSpectrum",
    "phase_diagram",
    "PhaseDiagram",
    "WEIGHT_ENSEMBLES",
]

ActivationLike = str | Callable[..., Any] | Activation
WEIGHT_ENSEMBLES = ("gaussian", "orthogonal")

# Quadrature layout (see jwinit._quadrature.split_rule): fixed panel edges in z that resolve the
# Gaussian, plus edges at b / sqrt(q) for b in _SCALE_BREAKS (u-space), which follow the
# activation's kinks (0 for the ReLU family, ELU, SELU; +-1 for hard_tanh) and its length scales
# (saturation of tanh/sigmoid by |u| ~ 20) as q changes.
_ZBREAKS = (-4.0, -2.0, 2.0, 4.0)
_SCALE_BREAKS = (-20.0, -6.0, -2.0, 0.0, 2.0, 6.0, 20.0)
_KINKS = {"hard_tanh": (-1.0, 1.0)}
_CUTOFF = 10.0
_DEGREE_1D = 16  # nodes per panel, one-dimensional expectations
_DEGREE_2D = 12  # nodes per panel and dimension, bivariate expectations
# Positively homogeneous activations phi(x) = a x + (1 - a) relu(x) and their slope a.
_HOMOGENEOUS = {"linear": 1.0, "relu": 0.0, "abs": -1.0}


# --------------------------------------------------------------------------------------------
# argument handling


def _float_dtype() -> np.dtype:
    return np.dtype(jnp.zeros((), float).dtype)


def _check_real(name: str, value: Any, *, low: float = 0.0, high: float = math.inf,
                legal: str = "finite and >= 0") -> None:
    """Validate a concrete real scalar/array argument (tracers pass unchecked)."""
    if isinstance(value, jax.core.Tracer):
        return
    try:
        arr = np.asarray(value)
    except Exception:  # noqa: BLE001 - anything that is not array-like
        arr = np.asarray(None)
    if arr.dtype == bool or arr.dtype.kind not in "fiu":
        raise TypeError(f"`{name}` must be a real number or array ({legal}), got {value!r}.")
    arr = arr.astype(np.float64)
    bad = ~np.isfinite(arr) | (arr < low) | (arr > high)
    if np.any(bad):
        shown = value if arr.ndim == 0 else arr[bad].ravel()[:4].tolist()
        raise ValueError(f"`{name}` must be {legal}, got {shown!r}.")


def _cast(*values: Any) -> list[jax.Array]:
    """Cast to the default float dtype and broadcast explicitly (strict rank promotion)."""
    dt = _float_dtype()
    arrs = [jnp.asarray(v).astype(dt) for v in values]
    shape = np.broadcast_shapes(*(a.shape for a in arrs))
    return [jnp.broadcast_to(a, shape) for a in arrs]


def _check_degree(degree: Any) -> None:
    if degree is not None and (
        isinstance(degree, bool) or not isinstance(degree, numbers.Integral) or degree < 1
    ):
        raise ValueError(f"`degree` must be None or a positive int, got {degree!r}.")


def _check_depth(depth: Any, *, static: bool) -> None:
    """`depth` must be an int >= 1 (a Python int when `static`; else also an int array/tracer)."""
    if isinstance(depth, jax.core.Tracer):
        if static:
            raise TypeError("`depth` must be a Python int (it sets the output length), got a "
                            "tracer.")
        return
    arr = np.asarray(depth)
    if isinstance(depth, bool) or arr.dtype.kind not in "iu" or (static and arr.ndim):
        raise TypeError(f"`depth` must be a positive int, got {depth!r}.")
    if np.any(arr < 1):
        raise ValueError(f"`depth` must be a positive int (>= 1), got {depth!r}.")


# --------------------------------------------------------------------------------------------
# Gaussian moments of one activation


def _q_floor(q):
    return jnp.maximum(q, jnp.asarray(np.sqrt(np.finfo(q.dtype).tiny), q.dtype))


@dataclasses.dataclass(frozen=True)
class _Model:
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
            q = _q_floor(q)
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
        return bivariate_expectation(self.act.fn, self.act.fn, q, q, c, **self._rule2())

    def kd(self, q: jax.Array, c: jax.Array) -> jax.Array:
        """E[phi'(u1) phi'(u2)]."""
        c = jnp.clip(c, -1, 1)
        if self.kind == "leaky":
            a = self.slope
            return a + (1 - a) ** 2 * (math.pi - jnp.arccos(c)) / (2 * math.pi) + 0 * q
        if self.kind == "erf":
            return (4 / math.pi) / jnp.sqrt(1 + 4 * q + 4 * q * q * (1 - c * c))
        d = self.act.deriv
        return bivariate_expectation(d, d, _q_floor(q), _q_floor(q), c, **self._rule2())

    def k_kd(self, q: jax.Array, c: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(E[phi(u1) phi(u2)], E[phi'(u1) phi'(u2)]) on one set of nodes."""
        if self.kind != "quad":
            return self.k(q, c), self.kd(q, c)
        fn = self.act.fn

        def both(u):
            return jnp.stack(jax.jvp(fn, (u,), (jnp.ones_like(u),)), axis=-1)

        q = _q_floor(q)
        kk = bivariate_expectation(both, both, q, q, jnp.clip(c, -1, 1), **self._rule2())
        return kk[0], kk[1]

    def _rule2(self) -> dict[str, Any]:
        return dict(breaks=self.breaks, kinks=self.kinks, zbreaks=_ZBREAKS, panels=1,
                    degree=_DEGREE_2D, cutoff=_CUTOFF, hermite=self.degree)


def _arccos_kernel(c: jax.Array) -> jax.Array:
    """E[relu(z1) relu(c z1 + sqrt(1 - c^2) z2)] = (sqrt(1 - c^2) + (pi - arccos c) c) / (2 pi)."""
    return (jnp.sqrt(jnp.maximum(1 - c * c, 0)) + (math.pi - jnp.arccos(c)) * c) / (2 * math.pi)


def _erf_ratio(q: jax.Array, c: Any) -> jax.Array:
    """2 q c / (1 + 2 q), written to stay exact for tiny q and finite for q = inf."""
    small = 2 * q * c / (1 + 2 * q)
    large = c * (1 - 1 / (1 + 2 * jnp.where(q < 1, 1, q)))
    return jnp.where(q < 1, small, large)


def _model_key(act: Activation) -> Any:
    return act.fn if act.name.startswith("custom") else (act.name, act.param)


@functools.lru_cache(maxsize=256)
def _cached_model(key: Any, act: Activation, degree: int | None) -> _Model:
    if act.name in _HOMOGENEOUS or act.name == "leaky_relu":
        slope = _HOMOGENEOUS.get(act.name, act.param)
        return _Model(key=(key, None), kind="leaky", act=act, slope=float(slope))
    if act.name == "erf":
        return _Model(key=(key, None), kind="erf", act=act)
    kinks = (0.0, *_KINKS.get(act.name, ()))
    breaks = tuple(sorted(set(_SCALE_BREAKS + kinks)))
    return _Model(key=(key, degree), kind="quad", act=act, breaks=breaks, kinks=kinks,
                  degree=degree)


def _model(activation: ActivationLike, degree: int | None) -> _Model:
    act = get_activation(activation)
    _check_degree(degree)
    degree = None if degree is None else int(degree)
    return _cached_model(_model_key(act), act, degree)


@functools.lru_cache(maxsize=512)
def _batched(core: Callable[..., Any], model: _Model, **static: Any) -> Callable[..., Any]:
    return jax.jit(jax.vmap(functools.partial(core, model, **static)))


def _compiled(core: Callable[..., Any], model: _Model, **static: Any) -> Callable[..., Any]:
    """`core` (a function of scalars) applied elementwise to broadcast arrays, compiled once.

    The arguments are flattened and padded (with their first entry) to a power-of-two length,
    so that one compiled program per length bucket serves every shape; the outputs are
    unpadded and reshaped, keeping any trailing axes the core returns (e.g. per-layer values).
    """
    fn = _batched(core, model, **static)

    def run(*args: jax.Array) -> Any:
        shape = args[0].shape
        n = math.prod(shape)
        size = 1 << max(n - 1, 0).bit_length()
        if n == 0:
            flat = [jnp.ones((1,), a.dtype) for a in args]
        else:
            flat = [jnp.pad(a.reshape(-1), (0, size - n), mode="edge") for a in args]
        out = fn(*flat)
        return jax.tree_util.tree_map(lambda o: o[:n].reshape(shape + o.shape[1:]), out)

    return run


# --------------------------------------------------------------------------------------------
# scalar cores (one sigma point; batched and jitted by _compiled)


def _eps(dt) -> float:
    return float(np.finfo(dt).eps)


def _fixed_point_core(m: _Model, sw, sb, q0, *, max_iter: int = 200):
    dt = sw.dtype
    eps = _eps(dt)
    inf = jnp.asarray(jnp.inf, dt)
    if m.kind == "leaky":
        # q' = r q + sb, r = sw (1 + a^2) / 2: q* = sb / (1 - r) if r < 1; at r = 1 every q is
        # fixed when sb = 0 (the iterates stay at q0) and none is otherwise; r > 1 diverges.
        r = sw * (0.5 * (1 + m.slope**2))
        critical = jnp.abs(r - 1) <= 4 * eps
        sub = sb / jnp.where(r < 1, 1 - r, 1)
        at_crit = jnp.where(sb == 0, q0, inf)
        sup = jnp.where((sb == 0) & (q0 == 0), 0, inf)
        return jnp.where(critical, at_crit, jnp.where(r < 1, sub, sup))

    def f(q):
        return sw * m.m2(q) + sb

    qmax = 1 / eps**2
    rtol, loose = 8 * eps, 1e3 * eps

    def body(state):
        q, it, _, gprev = state
        # One pass for the map and its slope (the slope is nan only at q = 0 exactly, where
        # the plain step below takes over).
        fq, dfq = jax.jvp(f, (q,), (jnp.ones_like(q),))
        g = fq - q
        scale = jnp.maximum(jnp.abs(fq), jnp.abs(q))
        ag = jnp.abs(g)
        # Converged: residual at rounding level, or stagnating at a level set by rounding.
        done = (ag <= rtol * scale) | ((ag >= 0.5 * gprev) & (ag <= loose * scale))
        newton = jnp.maximum(q - g / (dfq - 1), 0)  # q >= 0: an overshoot below 0 goes to 0
        use_newton = (dfq < 1) & jnp.isfinite(newton)
        # Slope >= 1 and still below the map: run away geometrically (inf is detected sooner).
        grow = ~use_newton & (g > 0) & (dfq >= 1)
        step = jnp.where(use_newton, newton, jnp.where(grow, jnp.maximum(fq, 4 * q), fq))
        return jnp.where(done, q, step), it + 1, done, ag

    def cond(state):
        q, it, done, _ = state
        return ~done & (it < max_iter) & jnp.isfinite(q) & (q < qmax)

    init = (q0, jnp.asarray(0, jnp.int32), jnp.asarray(False), inf)
    q, _, done, _ = jax.lax.while_loop(cond, body, init)
    runaway = (q >= qmax) | (q == inf)
    return jnp.where(done, q, jnp.where(runaway, inf, jnp.nan))


def _chi_q_core(m: _Model, sw, sb, q):
    if m.kind == "leaky":
        return sw * (0.5 * (1 + m.slope**2)) + 0 * q
    return sw * m.dm2(q)


def _local_core(m: _Model, sw, sb, q):
    """(q_map, chi1, chi_q) at length q: one compiled program for the three."""
    return sw * m.m2(q) + sb, sw * m.d2(q), _chi_q_core(m, sw, sb, q)


def _star_core(m: _Model, sw, sb, q0):
    """(q*, chi1, chi_q) at the fixed point reached from q0 (chi_q nan where q* is not finite)."""
    qs = _fixed_point_core(m, sw, sb, q0)
    finite = jnp.isfinite(qs)
    cq = _chi_q_core(m, sw, sb, jnp.where(finite, qs, 1))
    return qs, sw * m.d2(qs), jnp.where(finite, cq, jnp.nan)


def _pair_core(m: _Model, sw, sb, q, c):
    """(c_map, chi_c) at (q, c): one compiled program, one bivariate quadrature."""
    cm, _, kd = _c_map_and_slope(m, sw, sb, q, c, _c_denominator(m, sw, sb, q))
    return cm, _chi_c_from(m, sw, q, c, kd)


def _chi_c_core(m: _Model, sw, sb, q, c):
    return _chi_c_from(m, sw, q, c, m.kd(q, c))


def _chi_c_from(m: _Model, sw, q, c, kd):
    # At c = 1 the one-dimensional moment, so that chi_c(q, 1) == chi1(q) exactly.
    return sw * jnp.where(c == 1, m.d2(q), kd)


def _c_map_and_slope(m: _Model, sw, sb, q, c, den):
    """(c_map(c), d c_map / dc, E[phi'(u1) phi'(u2)]) at length q; `den` = q_map(q)."""
    if m.kind == "leaky":
        one = jnp.ones_like(q)
        k1, kd1, m1 = m.k(one, c), m.kd(one, c), m.k(one, one)
        cm = jnp.where(sb == 0, k1 / m1, (sw * q * k1 + sb) / (sw * q * m1 + sb))
        slope = jnp.where(sb == 0, kd1 / m1, sw * q * kd1 / (sw * q * m1 + sb))
        return cm, slope, kd1
    qf = _q_floor(q)
    k, kd = m.k_kd(qf, c)
    cm = jnp.where(c == 1, 1, jnp.clip((sw * k + sb) / den, -1, 1))  # c_map(1) == 1 exactly
    return cm, sw * qf * kd / den, kd


def _c_denominator(m: _Model, sw, sb, q):
    """q_map(q), the normalization of the covariance map (q floored as in the numerator)."""
    return sw * m.m2(q if m.kind == "leaky" else _q_floor(q)) + sb


def _c_star_at(m: _Model, sw, sb, q, *, max_iter: int = 100):
    """(c*, E[phi'(u1) phi'(u2)] at c*) at length q (Newton from c = 0; see the docstring)."""
    dt = sw.dtype
    eps = _eps(dt)
    chi = sw * m.d2(q)  # chi1 at q
    den = _c_denominator(m, sw, sb, q)

    def body(state):
        c, it, _, gprev, _ = state
        cm, slope, kd = _c_map_and_slope(m, sw, sb, q, c, den)
        g = cm - c
        ag = jnp.abs(g)
        done = (ag <= 8 * eps) | ((ag >= 0.5 * gprev) & (ag <= 1e3 * eps))
        newton = c + g / (1 - slope)
        step = jnp.where((slope < 1) & jnp.isfinite(newton), newton, c + g)
        return jnp.where(done, c, jnp.minimum(step, 1)), it + 1, done, ag, kd

    def cond(state):
        c, it, done, _, _ = state
        return ~done & (it < max_iter) & jnp.isfinite(c) & (chi > 1)

    init = (jnp.zeros_like(q), jnp.asarray(0, jnp.int32), jnp.asarray(False),
            jnp.asarray(jnp.inf, dt), jnp.zeros_like(q))
    c, _, done, _, kd = jax.lax.while_loop(cond, body, init)
    c = jnp.where(chi <= 1, jnp.ones_like(c), jnp.where(done, c, jnp.nan))
    return jnp.where(jnp.isfinite(q), c, jnp.nan), kd


def _depth_scale(chi):
    xi = -1 / jnp.log(jnp.where(chi >= 1, 0.5, chi))
    return jnp.where(chi >= 1, jnp.inf, xi)


def _phase_core(m: _Model, sw, sb):
    qs, c1, cq = _star_core(m, sw, sb, jnp.ones_like(sw))
    finite = jnp.isfinite(qs)
    cs, kd = _c_star_at(m, sw, sb, qs)
    xq = jnp.where(finite, _depth_scale(cq), jnp.nan)
    chic = jnp.where(cs == 1, c1, sw * kd)  # chi_c at c*: chi1 in the ordered phase
    xc = jnp.where(finite, _depth_scale(chic), jnp.nan)
    return qs, c1, cs, xq, xc


def _critical_core(m: _Model, sb):
    dt = sb.dtype
    if m.kind == "leaky":
        return jnp.full_like(sb, 1 / (0.5 * (1 + m.slope**2)))
    one = jnp.ones_like(sb)
    top = 2.0**24
    n_bisect = np.finfo(dt).nmant + 4

    def chi(sw):
        return sw * m.d2(_fixed_point_core(m, sw, sb, one))

    # One loop, one chi evaluation per step: grow [lo, hi] by doubling while chi1(hi) < 1 (nan,
    # i.e. no fixed point, counts as not below), then bisect it to full precision.
    def body(state):
        lo, hi, growing, it, _, _ = state
        x = jnp.where(growing, hi, 0.5 * (lo + hi))
        cx = chi(x)
        below = cx < 1
        lo = jnp.where(below, x, lo)
        hi = jnp.where(growing, jnp.where(below, 2 * hi, hi), jnp.where(below, hi, x))
        return lo, hi, growing & below & (hi < top), jnp.where(growing, it, it + 1), x, cx

    init = (jnp.zeros_like(sb), 0.25 * one, jnp.asarray(True), jnp.asarray(0, jnp.int32),
            jnp.zeros_like(sb), jnp.zeros_like(sb))
    _, _, _, _, x, cx = jax.lax.while_loop(lambda s: s[3] < n_bisect, body, init)
    found = jnp.where(jnp.abs(cx - 1) <= 1e3 * _eps(dt), x, jnp.nan)
    # sigma_b2 = 0 and phi(0) = 0: below sigma_w2 phi'(0)^2 = 1 the lengths collapse to q* = 0
    # (chi1 = sigma_w2 phi'(0)^2 < 1), and just above it chi1 = 1 + O((sigma_w2 - that)^2), too
    # flat for bisection to resolve beyond ~sqrt(eps). The transition is exactly at
    # 1 / phi'(0)^2 (Poole et al. 2016): snap to it when the crossing found is that one.
    # (With a kink at 0, phi'(0)^2 is the mean of the one-sided values: E[phi'(0+ z)^2].)
    phi0 = m.act.fn(jnp.zeros((), dt))
    slope0 = m.d2(jnp.zeros((), dt))
    origin = 1 / jnp.where(slope0 == 0, 1, slope0)
    near = jnp.abs(x - origin) <= 1e-2 * origin
    use_origin = (sb == 0) & (phi0 == 0) & (slope0 != 0) & near
    return jnp.where(use_origin, origin, found)


def _jacobian_core(m: _Model, sw, sb, depth, q, *, orthogonal: bool):
    mu1, mu2 = m.d2(q), m.d4(q)
    mean = (sw * mu1) ** depth
    s = 0.0 if orthogonal else 1.0
    var = depth * mean**2 * (mu2 / mu1**2 - 1 + s)
    return mean, var


def _predict_core(m: _Model, sw, sb, sw1, q0, *, depth: int, first_layer_bias: bool):
    q1 = sw1 * q0 + (sb if first_layer_bias else 0 * sb)

    def step(q, _):
        qn = sw * m.m2(q) + sb
        return qn, qn

    _, rest = jax.lax.scan(step, q1, None, length=depth - 1)
    forward = jnp.concatenate([q1[None], rest])
    chi = sw * jax.vmap(m.d2)(forward[:-1])  # d h^l from d h^{l+1}: E phi'(h^l)^2 sigma_w2
    tail = jnp.cumprod(chi[::-1])[::-1]
    backward = jnp.concatenate([tail, jnp.ones((1,), sw.dtype)])
    return forward, backward


def _slope(activation: ActivationLike, sigma_w2: Any, sigma_b2: Any, q: Any, degree: int | None,
           index: int) -> jax.Array:
    """Output `index` of the length-map program (1: chi1, 2: chi_q) at `q`, or at q* if None."""
    m = _model(activation, degree)
    _check_real("sigma_w2", sigma_w2)
    _check_real("sigma_b2", sigma_b2)
    if q is None:
        return _compiled(_star_core, m)(*_cast(sigma_w2, sigma_b2, 1.0))[index]
    _check_real("q", q)
    return _compiled(_local_core, m)(*_cast(sigma_w2, sigma_b2, q))[index]


def _pair(activation: ActivationLike, sigma_w2: Any, sigma_b2: Any, c: Any, q: Any,
          degree: int | None, index: int) -> jax.Array:
    """Output `index` of the two-input program (0: c_map, 1: chi_c) at (q or q*, c)."""
    m = _model(activation, degree)
    _check_real("sigma_w2", sigma_w2)
    _check_real("sigma_b2", sigma_b2)
    _check_real("c", c, low=-1.0, high=1.0, legal="in [-1, 1]")
    q = _q_or_star(m, sigma_w2, sigma_b2, q)
    return _compiled(_pair_core, m)(*_cast(sigma_w2, sigma_b2, q, c))[index]


def _q_or_star(m: _Model, sigma_w2: Any, sigma_b2: Any, q: Any) -> Any:
    """`q` validated, or q* (from the shared fixed-point program) when it is None."""
    if q is None:
        return _compiled(_star_core, m)(*_cast(sigma_w2, sigma_b2, 1.0))[0]
    _check_real("q", q)
    return q


# --------------------------------------------------------------------------------------------
# public API


def q_map(activation: ActivationLike, sigma_w2: Any, sigma_b2: Any, q: Any, *,
          degree: int | None = None) -> jax.Array:
    """The length map q' = sigma_w2 E[phi(sqrt(q) z)^2] + sigma_b2, z ~ N(0, 1).

    The second moment of the next layer's pre-activations given this layer's (Poole et al. 2016,
    eq. 3). Closed forms: relu q/2, leaky_relu(a) q (1 + a^2) / 2, abs and linear q,
    erf (2/pi) arcsin(2q / (1 + 2q)).

    Args:
      activation: a registered name ('relu', 'tanh', 'leaky_relu:0.2', ...), an `Activation` or
        an elementwise callable.
      sigma_w2: weight variance times fan-in (>= 0).
      sigma_b2: bias variance (>= 0).
      q: the input second moment (>= 0).
      degree: Gauss-Hermite degree to use instead of the default split quadrature (closed
        forms ignore it).

    Returns:
      q', broadcast over the shapes of the numeric arguments.

    Raises:
      ValueError: unknown activation, negative or non-finite concrete variances, bad `degree`.
      TypeError: non-numeric arguments.

    Examples:
      >>> theory.q_map('relu', 2.0, 0.0, 1.5)   # He init preserves the length
      Array(1.5, dtype=float32)
    """
    m = _model(activation, degree)
    for name, v in (("sigma_w2", sigma_w2), ("sigma_b2", sigma_b2), ("q", q)):
        _check_real(name, v)
    return _compiled(_local_core, m)(*_cast(sigma_w2, sigma_b2, q))[0]


def fixed_point(activation: ActivationLike, sigma_w2: Any, sigma_b2: Any, *, q0: Any = 1.0,
                degree: int | None = None) -> jax.Array:
    """The stable fixed point q* = q_map(q*) reached by iterating the length map from `q0`.

    Safeguarded Newton iteration on q_map(q) - q inside ``lax.while_loop`` (closed form
    q* = sigma_b2 / (1 - sigma_w2 (1 + a^2) / 2) for the ReLU family). Where the iterates run
    away (ReLU-like activations above sigma_w2 (1 + a^2) / 2 = 1, e.g. ReLU with sigma_w2 > 2)
    the result is ``inf``; where the iteration fails to converge, ``nan``. At exact ReLU
    criticality (sigma_w2 = 2, sigma_b2 = 0) every q is fixed and `q0` is returned.

    Args:
      activation: activation name, `Activation` or callable.
      sigma_w2, sigma_b2: weight and bias variances (>= 0).
      q0: starting length (>= 0); the iterates converge to the fixed point attracting it.
      degree: Gauss-Hermite degree instead of the default quadrature.

    Returns:
      q*, satisfying ``q_map(q*) == q*`` to a few float ulps, or inf/nan (see above).

    Examples:
      >>> theory.fixed_point('selu', 1.0, 0.0)   # Klambauer et al. 2017: the (0, 1) point
      Array(1., dtype=float32)
    """
    m = _model(activation, degree)
    for name, v in (("sigma_w2", sigma_w2), ("sigma_b2", sigma_b2), ("q0", q0)):
        _check_real(name, v)
    return _compiled(_star_core, m)(*_cast(sigma_w2, sigma_b2, q0))[0]


def chi1(activation: ActivationLike, sigma_w2: Any, sigma_b2: Any, *, q: Any = None,
         degree: int | None = None) -> jax.Array:
    """chi1 = sigma_w2 E[phi'(sqrt(q*) z)^2]: the per-layer growth of gradient second moments.

    It is also the slope of the correlation map at c = 1 (Poole et al. 2016, eq. 7): chi1 < 1 is
    the ordered phase, chi1 > 1 the chaotic one, chi1 = 1 the edge of chaos (Schoenholz et al.
    2017). ReLU: sigma_w2 / 2 (so He init, sigma_w2 = 2, is critical); erf: sigma_w2 (4/pi) /
    sqrt(1 + 4 q*).

    Args:
      activation: activation name, `Activation` or callable.
      sigma_w2, sigma_b2: weight and bias variances (>= 0).
      q: evaluate at this length instead of at q* (for a layer away from the fixed point).
      degree: Gauss-Hermite degree instead of the default quadrature.

    Returns:
      chi1 (nan where q* does not exist and the moment has no limit).

    Examples:
      >>> theory.chi1('relu', 2.0, 0.0)
      Array(1., dtype=float32)
    """
    return _slope(activation, sigma_w2, sigma_b2, q, degree, 1)


def chi_q(activation: ActivationLike, sigma_w2: Any, sigma_b2: Any, *, q: Any = None,
          degree: int | None = None) -> jax.Array:
    """chi_q = d q_map / dq at q*: the rate at which lengths approach their fixed point.

    chi_q = chi1 + sigma_w2 E[phi''(sqrt(q*) z) phi(sqrt(q*) z)] (Schoenholz et al. 2017, eq. 5),
    computed by autodiff of the length map (so kinks are handled). |q^l - q*| ~ chi_q^l.

    Args:
      activation, sigma_w2, sigma_b2, degree: as for :func:`chi1`.
      q: evaluate at this length instead of at q*.

    Returns:
      chi_q (nan where q* is not finite).

    Examples:
      >>> theory.chi_q('tanh', 1.5, 0.05)   # below chi1 = 0.95: lengths converge faster
      Array(0.5519832, dtype=float32)
    """
    return _slope(activation, sigma_w2, sigma_b2, q, degree, 2)


def c_map(activation: ActivationLike, sigma_w2: Any, sigma_b2: Any, c: Any, *, q: Any = None,
          degree: int | None = None) -> jax.Array:
    """The correlation map c' = (sigma_w2 E[phi(u1) phi(u2)] + sigma_b2) / q_map(q).

    (u1, u2) are centred Gaussians with E u1^2 = E u2^2 = q and correlation c, q = q* by default
    (Poole et al. 2016, eq. 5); the denominator is the same expression at c = 1, so
    ``c_map(1) == 1`` exactly. Closed forms: ReLU family via the arc-cosine kernel (Cho & Saul
    2009) E[relu(u1) relu(u2)] = q (sqrt(1 - c^2) + (pi - arccos c) c) / (2 pi); erf via
    E[erf(u1) erf(u2)] = (2/pi) arcsin(2 q c / (1 + 2 q)). For the ReLU family with
    sigma_b2 = 0 the map does not depend on q. Otherwise a two-dimensional split quadrature.

    Args:
      activation: activation name, `Activation` or callable.
      sigma_w2, sigma_b2: weight and bias variances (>= 0).
      c: input correlation in [-1, 1].
      q: the length of both inputs (default q*).
      degree: Gauss-Hermite degree (per dimension) instead of the default quadrature.

    Returns:
      c' (nan where q* is needed but not finite).

    Examples:
      >>> theory.c_map('relu', 2.0, 0.0, 0.0)   # 1 / pi
      Array(0.31830987, dtype=float32)
    """
    return _pair(activation, sigma_w2, sigma_b2, c, q, degree, 0)


def chi_c(activation: ActivationLike, sigma_w2: Any, sigma_b2: Any, c: Any, *, q: Any = None,
          degree: int | None = None) -> jax.Array:
    """The slope of the correlation map, dc'/dc = sigma_w2 E[phi'(u1) phi'(u2)] at q*.

    The derivative of the covariance map q12' = sigma_w2 E[phi(u1) phi(u2)] + sigma_b2 with
    respect to q12 = q c (Price's theorem; Schoenholz et al. 2017, eq. 9), evaluated at (q, c).
    At q = q* it is the slope of :func:`c_map`; at c = 1 it is chi1; at the stable correlation
    fixed point c* it sets the correlation depth scale xi_c = -1 / log(chi_c). (Where q* = 0,
    e.g. tanh with sigma_b2 = 0 in the ordered phase, this is the q* -> 0+ limit of the formula.)

    Args:
      activation, sigma_w2, sigma_b2, q, degree: as for :func:`c_map`.
      c: correlation in [-1, 1].

    Returns:
      chi_c.

    Examples:
      >>> theory.chi_c('relu', 2.0, 0.0, 0.0)   # P(u1 > 0, u2 > 0) sigma_w2 = 1/4 * 2
      Array(0.5, dtype=float32)
    """
    return _pair(activation, sigma_w2, sigma_b2, c, q, degree, 1)


def correlation_fixed_point(activation: ActivationLike, sigma_w2: Any, sigma_b2: Any, *,
                            degree: int | None = None) -> jax.Array:
    """The stable correlation fixed point c* of :func:`c_map` at q*.

    The map is increasing and convex on [0, 1] with c_map(1) = 1 and slope chi1 there, so:
    c* = 1 when chi1 <= 1 (ordered phase; two inputs become identical); when chi1 > 1 (chaotic
    phase) c* is the unique other fixed point in [0, 1), found by Newton's method from c = 0,
    which converges monotonically for a convex map (Poole et al. 2016).

    Args:
      activation, sigma_w2, sigma_b2, degree: as for :func:`c_map`.

    Returns:
      c* (nan where q* is not finite and the map has no limit).

    Examples:
      >>> theory.correlation_fixed_point('tanh', 1.0, 0.05)   # ordered
      Array(1., dtype=float32)
    """
    m = _model(activation, degree)
    _check_real("sigma_w2", sigma_w2)
    _check_real("sigma_b2", sigma_b2)
    return _compiled(_phase_core, m)(*_cast(sigma_w2, sigma_b2))[2]


class DepthScales(NamedTuple):
    """Depth scales (in layers) of Schoenholz et al. 2017: ``xi_q``, ``xi_c``."""

    xi_q: jax.Array
    xi_c: jax.Array


def depth_scales(activation: ActivationLike, sigma_w2: Any, sigma_b2: Any, *,
                 degree: int | None = None) -> DepthScales:
    """The depth scales over which lengths and correlations reach their fixed points.

    Schoenholz et al. 2017, eqs. (5)-(9): |q^l - q*| ~ exp(-l / xi_q), |c^l - c*| ~
    exp(-l / xi_c), with

        xi_q = -1 / log(chi_q),  chi_q = d q_map / dq (q*)
                                       = chi1 + sigma_w2 E[phi''(sqrt(q*) z) phi(sqrt(q*) z)],
        xi_c = -1 / log(chi_c*), chi_c* = sigma_w2 E[phi'(u1) phi'(u2)] at (q*, c*).

    In the ordered phase c* = 1 and chi_c* = chi1, so xi_c = -1 / log(chi1); xi_c diverges at the
    edge of chaos (chi1 = 1), which bounds the depth of trainable networks. A scale is ``inf``
    where its chi is >= 1 (marginal) and xi_q is ``nan`` where q* is not finite.

    Args:
      activation, sigma_w2, sigma_b2, degree: as for :func:`c_map`.

    Returns:
      ``DepthScales(xi_q, xi_c)`` (unpacks as a pair).

    Examples:
      >>> theory.depth_scales('tanh', 1.5, 0.05).xi_c   # chi1 = 0.939: -1 / log(chi1)
      Array(15.791035, dtype=float32)
    """
    m = _model(activation, degree)
    _check_real("sigma_w2", sigma_w2)
    _check_real("sigma_b2", sigma_b2)
    _, _, _, xq, xc = _compiled(_phase_core, m)(*_cast(sigma_w2, sigma_b2))
    return DepthScales(xq, xc)


class PhaseDiagram(NamedTuple):
    """Mean-field quantities on a (sigma_w2, sigma_b2) grid (see :func:`phase_diagram`)."""

    q_star: jax.Array
    chi1: jax.Array
    c_star: jax.Array
    xi_q: jax.Array
    xi_c: jax.Array


def phase_diagram(activation: ActivationLike, sigma_w2: Any, sigma_b2: Any, *,
                  degree: int | None = None) -> PhaseDiagram:
    """q*, chi1, c*, xi_q and xi_c at every (sigma_w2, sigma_b2), in one compiled call.

    The order-to-chaos diagram of Poole et al. 2016 (Fig. 2) and the depth scales of Schoenholz
    et al. 2017 (Fig. 1). The arguments broadcast: pass ``sw[:, None]`` and ``sb[None, :]`` for a
    grid. Closed-form activations cost microseconds per point; the others need a two-dimensional
    quadrature per Newton step for c* (about 20k nodes), some milliseconds per point on a CPU.

    Args:
      activation, degree: as for :func:`c_map`.
      sigma_w2, sigma_b2: arrays of variances (>= 0).

    Returns:
      A `PhaseDiagram` of arrays of the broadcast shape.

    Examples:
      >>> sw = jnp.linspace(0.5, 4, 64)[:, None]; sb = jnp.linspace(0, 0.3, 32)[None, :]
      >>> pd = theory.phase_diagram('tanh', sw, sb)   # pd.chi1 > 1 is the chaotic phase
    """
    m = _model(activation, degree)
    _check_real("sigma_w2", sigma_w2)
    _check_real("sigma_b2", sigma_b2)
    return PhaseDiagram(*_compiled(_phase_core, m)(*_cast(sigma_w2, sigma_b2)))


def critical_sigma_w2(activation: ActivationLike, sigma_b2: Any = 0.0, *,
                      degree: int | None = None) -> jax.Array:
    """The weight variance on the edge of chaos: chi1(sigma_w2, sigma_b2) = 1.

    Closed form for the ReLU family, 2 / (1 + a^2) (He et al. 2015; for sigma_b2 > 0 the length
    map has no finite fixed point there). Otherwise the bracket [0, sigma] is grown by doubling
    until chi1 >= 1 and bisected to full precision inside ``lax`` loops (vmap-able over
    `sigma_b2`); the result is checked to satisfy |chi1 - 1| <= 1e3 eps and is nan otherwise
    (no crossing, or chi1 jumps over 1 where q* diverges). Where several crossings exist the
    first one found from small sigma_w2 is returned. With sigma_b2 = 0 and phi(0) = 0 the
    transition is where the collapsed state q* = 0 loses stability, sigma_w2 = 1 / phi'(0)^2
    (Poole et al. 2016): tanh and hard_tanh give 1, erf pi / 4.

    Args:
      activation: activation name, `Activation` or callable.
      sigma_b2: bias variance (>= 0).
      degree: Gauss-Hermite degree instead of the default quadrature.

    Returns:
      sigma_w2 at criticality.

    Examples:
      >>> theory.critical_sigma_w2('relu')
      Array(2., dtype=float32)
    """
    m = _model(activation, degree)
    _check_real("sigma_b2", sigma_b2)
    (sb,) = _cast(sigma_b2)
    return _compiled(_critical_core, m)(sb)


class JacobianSpectrum(NamedTuple):
    """Mean and variance of the eigenvalue distribution of J J^T (see :func:`jacobian_spectrum`)."""

    mean: jax.Array
    variance: jax.Array


def jacobian_spectrum(activation: ActivationLike, sigma_w2: Any, sigma_b2: Any, depth: Any, *,
                      weights: str = "gaussian", q: Any = None,
                      degree: int | None = None) -> JacobianSpectrum:
    """Moments of the spectrum of J J^T for the input-output Jacobian of a deep MLP at q*.

    J = prod_{l=1..L} D^l W^l, D^l = diag(phi'(h^l)), all layers at the fixed point q*
    (Pennington, Schoenholz & Ganguli 2017, eqs. 13-17; Pennington et al. 2018). With
    mu_k = E[phi'(sqrt(q*) z)^(2k)], free probability gives, for width -> infinity,

        mean      m1        = (sigma_w2 mu_1)^L = chi1^L
        variance  m2 - m1^2 = L m1^2 (mu_2 / mu_1^2 - 1 - s_1),

    s_1 = -1 for Gaussian weights (W^T W Marchenko-Pastur, relative variance 1) and s_1 = 0 for
    (scaled) orthogonal weights. Linear networks: Gaussian variance L sigma_w2^(2L), orthogonal 0;
    ReLU at He init: mean 1, variance 2L (Gaussian) and L (orthogonal), so ReLU nets are never
    dynamically isometric.

    Args:
      activation: activation name, `Activation` or callable.
      sigma_w2, sigma_b2: weight and bias variances (>= 0).
      depth: number of layers L (>= 1).
      weights: 'gaussian' or 'orthogonal'.
      q: evaluate at this length instead of q*.
      degree: Gauss-Hermite degree instead of the default quadrature.

    Returns:
      ``JacobianSpectrum(mean, variance)``.

    Examples:
      >>> theory.jacobian_spectrum('linear', 1.0, 0.0, 10, weights='orthogonal')
      JacobianSpectrum(mean=Array(1., dtype=float32), variance=Array(0., dtype=float32))
    """
    m = _model(activation, degree)
    if weights not in WEIGHT_ENSEMBLES:
        raise ValueError(f"`weights` must be one of {WEIGHT_ENSEMBLES}, got {weights!r}.")
    _check_real("sigma_w2", sigma_w2)
    _check_real("sigma_b2", sigma_b2)
    _check_depth(depth, static=False)
    core = _compiled(_jacobian_core, m, orthogonal=weights == "orthogonal")
    q = _q_or_star(m, sigma_w2, sigma_b2, q)
    return JacobianSpectrum(*core(*_cast(sigma_w2, sigma_b2, depth, q)))


class Prediction(NamedTuple):
    """Per-layer mean-field prediction for an MLP (see :func:`predict`).

    Attributes:
      forward: shape (..., depth); ``forward[l]`` = E[(h^{l+1})^2].
      backward: shape (..., depth); ``backward[l]`` = E[(d<g, h^L>/dh^{l+1})^2].
      sigma_w2: hidden-layer weight variance times fan-in.
      sigma_b2: bias variance.
    """

    forward: jax.Array
    backward: jax.Array
    sigma_w2: jax.Array
    sigma_b2: jax.Array


def _sigma_from_inits(kernel_init, bias_init, width: int, input_dim: int) -> tuple[float, ...]:
    from jwinit.describe import describe

    def var_and_check(init, shape, what):
        d = describe(init, shape)
        if d.variance is None:
            raise ValueError(f"`{what}` {d.name!r} has no per-entry variance; cannot predict.")
        mean = complex(d.mean)
        n = math.prod(shape)
        allowed = 0.0 if d.exact else 6 * math.sqrt(max(d.variance, 0.0) / max(n, 1))
        if abs(mean) > allowed:
            raise ValueError(
                f"`{what}` {d.name!r} has mean {d.mean!r}; mean-field theory needs zero-mean "
                "weights and biases."
            )
        return float(d.variance)

    sw1 = var_and_check(kernel_init, (input_dim, width), "kernel_init") * input_dim
    sw = var_and_check(kernel_init, (width, width), "kernel_init") * width
    sb = 0.0 if bias_init is None else var_and_check(bias_init, (width,), "bias_init")
    return sw, sb, sw1


def predict(kernel_init: Any, activation: ActivationLike, depth: int, *, bias_init: Any = None,
            input_q: Any = 1.0, width: int = 1024, input_dim: int | None = None,
            first_layer_bias: bool = True, degree: int | None = None) -> Prediction:
    """Per-layer forward and backward second moments of an MLP, as the probe measures them.

    The network (layers l = 1..L = `depth`, all of width `width`, flax layout ``x @ W``):

        h^1 = W^1 x + b^1,   h^{l+1} = W^{l+1} phi(h^l) + b^{l+1}   (l = 1 .. L - 1),

    with inputs of mean square `input_q` (b^1 only if `first_layer_bias`), and a cotangent
    g ~ N(0, I) on the last pre-activation h^L (no loss, no activation after the last layer). This
    is the network `jwinit.probe.probe_mlp` measures, index for index. With 0-based index l:

        forward[l]  = q^{l+1} = E[(h^{l+1})^2]:
                      q^1 = sigma_w2^(1) input_q (+ sigma_b2),
                      q^{l+1} = sigma_w2 E[phi(sqrt(q^l) z)^2] + sigma_b2   (:func:`q_map`);
        backward[l] = E[(d<g, h^L> / dh^{l+1})^2]:
                      backward[L-1] = 1,
                      backward[l-1] = sigma_w2 E[phi'(sqrt(q^l) z)^2] backward[l]
                      (chi1 at each layer's own q, gradient independence; Schoenholz et al. 2017).

    Args:
      kernel_init: a jwinit initializer (its exact per-entry variance is read with
        `jwinit.describe` at shape (width, width), sigma_w2 = width Var(W), and at
        (input_dim, width) for the first layer, sigma_w2^(1) = input_dim Var(W^1); it must have
        mean 0) or a pair ``(sigma_w2, sigma_b2)`` of numbers or arrays/tracers.
      activation: activation name, `Activation` or callable.
      depth: number of layers L (a positive Python int).
      bias_init: bias initializer (sigma_b2 = its variance; default: no bias, sigma_b2 = 0).
        Only with an initializer `kernel_init`.
      input_q: mean square of the input entries (default 1).
      width: layer width used to describe the initializers (fan-in schemes do not depend on it).
      input_dim: input dimension (default `width`).
      first_layer_bias: whether the first layer adds a bias b^1 (default True, as in the probe;
        False for ``h^1 = W^1 x``).
      degree: Gauss-Hermite degree instead of the default quadrature.

    Returns:
      A `Prediction` (forward, backward of shape (..., depth), sigma_w2, sigma_b2).

    Raises:
      ValueError: bad depth/width, nonzero-mean initializers, negative variances, unknown
        activation.

    Examples:
      >>> p = theory.predict(jwinit.he_normal(), 'relu', depth=10)
      >>> p.forward   # all 2.0: He init preserves q^l = 2 input_q
    """
    m = _model(activation, degree)
    _check_depth(depth, static=True)
    depth = int(depth)
    _check_real("input_q", input_q)
    for name, v in (("width", width), ("input_dim", input_dim)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1):
            raise ValueError(f"`{name}` must be a positive int, got {v!r}.")
    if isinstance(kernel_init, tuple | list):
        if len(kernel_init) != 2 or bias_init is not None:
            raise ValueError(
                "`kernel_init` as numbers must be a pair (sigma_w2, sigma_b2) and then "
                f"`bias_init` must be None; got {kernel_init!r} and {bias_init!r}."
            )
        sw, sb = kernel_init
        _check_real("sigma_w2", sw)
        _check_real("sigma_b2", sb)
        sw1 = sw
    elif callable(kernel_init):
        if bias_init is not None and not callable(bias_init):
            raise TypeError(f"`bias_init` must be an initializer or None, got {bias_init!r}.")
        sw, sb, sw1 = _sigma_from_inits(kernel_init, bias_init, width, input_dim or width)
    else:
        raise TypeError(
            "`kernel_init` must be an initializer or a pair (sigma_w2, sigma_b2), got "
            f"{kernel_init!r}."
        )
    sw, sb, sw1, q0 = _cast(sw, sb, sw1, input_q)
    core = _compiled(_predict_core, m, depth=depth,
                     first_layer_bias=bool(first_layer_bias))
    forward, backward = core(sw, sb, sw1, q0)
    return Prediction(forward, backward, sw, sb)

"""The scalar cores of mean-field theory: fixed points, slopes, the correlation map, criticality.

Each core takes the `Moments` of one activation and scalar (sigma_w2, sigma_b2, ...) values and is
written with ``lax`` loops only, so that `jwinit.theory._batching.compiled` can vmap and jit it over
whole grids. Where no fixed point exists the result is inf (run-away) or nan (no convergence),
never a finite stand-in.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jwinit.theory._moments import Moments, q_floor


def _eps(dt) -> float:
    return float(np.finfo(dt).eps)


def fixed_point_core(m: Moments, sw, sb, q0, *, max_iter: int = 200):
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


def chi_q_core(m: Moments, sw, sb, q):
    if m.kind == "leaky":
        return sw * (0.5 * (1 + m.slope**2)) + 0 * q
    return sw * m.dm2(q)


def local_core(m: Moments, sw, sb, q):
    """(q_map, chi1, chi_q) at length q: one compiled program for the three."""
    return sw * m.m2(q) + sb, sw * m.d2(q), chi_q_core(m, sw, sb, q)


def star_core(m: Moments, sw, sb, q0):
    """(q*, chi1, chi_q) at the fixed point reached from q0 (chi_q nan where q* is not finite)."""
    qs = fixed_point_core(m, sw, sb, q0)
    finite = jnp.isfinite(qs)
    cq = chi_q_core(m, sw, sb, jnp.where(finite, qs, 1))
    return qs, sw * m.d2(qs), jnp.where(finite, cq, jnp.nan)


def pair_core(m: Moments, sw, sb, q, c):
    """(c_map, chi_c) at (q, c): one compiled program, one bivariate quadrature."""
    cm, _, kd = _c_map_and_slope(m, sw, sb, q, c, _c_denominator(m, sw, sb, q))
    return cm, _chi_c_from(m, sw, q, c, kd)


def _chi_c_from(m: Moments, sw, q, c, kd):
    # At c = 1 the one-dimensional moment, so that chi_c(q, 1) == chi1(q) exactly.
    return sw * jnp.where(c == 1, m.d2(q), kd)


def _c_map_and_slope(m: Moments, sw, sb, q, c, den, cheap: bool = False):
    """(c_map(c), d c_map / dc, E[phi'(u1) phi'(u2)]) at length q; `den` = q_map(q)."""
    if m.kind == "leaky":
        one = jnp.ones_like(q)
        k1, kd1, m1 = m.k(one, c), m.kd(one, c), m.k(one, one)
        cm = jnp.where(sb == 0, k1 / m1, (sw * q * k1 + sb) / (sw * q * m1 + sb))
        slope = jnp.where(sb == 0, kd1 / m1, sw * q * kd1 / (sw * q * m1 + sb))
        return cm, slope, kd1
    qf = q_floor(q)
    k, kd = m.k_kd(qf, c, cheap=cheap)
    cm = jnp.where(c == 1, 1, jnp.clip((sw * k + sb) / den, -1, 1))  # c_map(1) == 1 exactly
    return cm, sw * qf * kd / den, kd


def _c_denominator(m: Moments, sw, sb, q):
    """q_map(q), the normalization of the covariance map (q floored as in the numerator)."""
    return sw * m.m2(q if m.kind == "leaky" else q_floor(q)) + sb


def _c_star_at(m: Moments, sw, sb, q, *, c0=None, max_iter: int = 100, cheap_start: bool = True):
    """(c, E[phi'(u1) phi'(u2)] at c, converged) at length q: c = c* where converged.

    Newton on c_map(c) - c from `c0` (default 0). For quadrature activations with
    `cheap_start`, Newton first runs on a cheap Gauss-Hermite rule (1600 nodes, ~1e-4 accurate)
    and then on the accurate split rule from there, which then needs a few steps instead of ten
    or more. `max_iter` caps the accurate steps; where it stopped the iteration `converged` is
    False and the caller may continue from the returned c. In the ordered phase (chi1 <= 1)
    c* = 1 without iterating.
    """
    dt = sw.dtype
    eps = _eps(dt)
    chi = sw * m.d2(q)  # chi1 at q
    den = _c_denominator(m, sw, sb, q)

    def loop(start, cheap, tol, iters):
        def body(state):
            c, it, _, gprev, _ = state
            cm, slope, kd = _c_map_and_slope(m, sw, sb, q, c, den, cheap)
            g = cm - c
            ag = jnp.abs(g)
            done = (ag <= tol) | ((ag >= 0.5 * gprev) & (ag <= 1e3 * eps))
            newton = c + g / (1 - slope)
            step = jnp.where((slope < 1) & jnp.isfinite(newton), newton, c + g)
            return jnp.where(done, c, jnp.minimum(step, 1)), it + 1, done, ag, kd

        def cond(state):
            c, it, done, _, _ = state
            return ~done & (it < iters) & jnp.isfinite(c) & (chi > 1)

        init = (start, jnp.asarray(0, jnp.int32), jnp.asarray(False), jnp.asarray(jnp.inf, dt),
                jnp.zeros_like(q))
        c, _, done, _, kd = jax.lax.while_loop(cond, body, init)
        return c, done, kd

    start = jnp.zeros_like(q) if c0 is None else c0
    if m.kind == "quad" and cheap_start:
        cheap, _, _ = loop(start, True, jnp.maximum(1e-4, 8 * eps), 100)
        start = jnp.where(jnp.isfinite(cheap), cheap, start)
    c, done, kd = loop(start, False, 8 * eps, max_iter)
    ordered = chi <= 1
    return jnp.where(ordered, jnp.ones_like(c), c), kd, done | ordered


def _depth_scale(chi):
    xi = -1 / jnp.log(jnp.where(chi >= 1, 0.5, chi))
    return jnp.where(chi >= 1, jnp.inf, xi)


def phase_core(m: Moments, sw, sb):
    qs, c1, cq = star_core(m, sw, sb, jnp.ones_like(sw))
    cs, kd, done = _c_star_at(m, sw, sb, qs)
    cs = jnp.where(jnp.isfinite(qs) & done, cs, jnp.nan)
    return assemble_phase(sw, qs, c1, cq, cs, kd)


def assemble_phase(sw, qs, c1, cq, cs, kd):
    """(q*, chi1, c*, xi_q, xi_c) from the fixed points and E[phi'(u1) phi'(u2)] at c*."""
    finite = jnp.isfinite(qs)
    xq = jnp.where(finite, _depth_scale(cq), jnp.nan)
    chic = jnp.where(cs == 1, c1, sw * kd)  # chi_c at c*: chi1 in the ordered phase
    xc = jnp.where(finite, _depth_scale(chic), jnp.nan)
    return qs, c1, cs, xq, xc


def c_star_core(m: Moments, sw, sb, qs, c0, *, max_iter: int, cheap_start: bool):
    """`_c_star_at` at q* from `c0` with at most `max_iter` accurate Newton steps."""
    return _c_star_at(m, sw, sb, qs, c0=c0, max_iter=max_iter, cheap_start=cheap_start)


def critical_core(m: Moments, sb):
    dt = sb.dtype
    if m.kind == "leaky":
        return jnp.full_like(sb, 1 / (0.5 * (1 + m.slope**2)))
    one = jnp.ones_like(sb)
    top = 2.0**24
    n_bisect = np.finfo(dt).nmant + 4

    def chi(sw):
        return sw * m.d2(fixed_point_core(m, sw, sb, one))

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


def jacobian_core(m: Moments, sw, sb, depth, q, *, orthogonal: bool):
    mu1, mu2 = m.d2(q), m.d4(q)
    mean = (sw * mu1) ** depth
    s = 0.0 if orthogonal else 1.0
    var = depth * mean**2 * (mu2 / mu1**2 - 1 + s)
    return mean, var


def predict_core(m: Moments, sw, sb, sw1, q0, *, depth: int, first_layer_bias: bool):
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

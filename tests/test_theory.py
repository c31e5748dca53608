"""jwinit.theory: mean-field maps checked against closed forms, scipy references and simulation.

Tolerances: float32 results are compared at a few float32 ulps of an O(1) quantity (1e-6 to
1e-5 absolute) unless noted; float64 results (under ``jax.enable_x64``) at 1e-9 against
scipy's adaptive quadrature, whose own error at the tolerances used is below 1e-12. Monte Carlo
checks use several standard errors computed from the samples themselves.
"""

import contextlib
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, optimize

import jwinit
from jwinit import theory
from jwinit._quadrature import gaussian_expectation, panel_rule

EPS32 = float(np.finfo(np.float32).eps)


def x64():
    """Context manager turning on float64 (jax >= 0.7: ``jax.enable_x64``)."""
    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(True)
    from jax.experimental import enable_x64  # older jax

    return enable_x64()


# ------------------------------------------------------------------------------------------------
# independent float64 references: hand-written activations and derivatives, scipy quadrature

_A, _L = jwinit.SELU_ALPHA, jwinit.SELU_LAMBDA


def _sig(x):
    return 0.5 * (1 + math.tanh(x / 2))


def _ncdf(x):
    return 0.5 * math.erfc(-x / math.sqrt(2))


def _npdf(x):
    return math.exp(-x * x / 2) / math.sqrt(2 * math.pi)


REF = {  # name: (phi, phi', kinks)
    "tanh": (math.tanh, lambda x: 1 - math.tanh(x) ** 2, ()),
    "erf": (math.erf, lambda x: 2 / math.sqrt(math.pi) * math.exp(-x * x), ()),
    "sigmoid": (_sig, lambda x: _sig(x) * (1 - _sig(x)), ()),
    "selu": (lambda x: _L * (x if x > 0 else _A * math.expm1(x)),
             lambda x: _L * (1.0 if x > 0 else _A * math.exp(x)), (0.0,)),
    "elu": (lambda x: x if x > 0 else math.expm1(x), lambda x: 1.0 if x > 0 else math.exp(x),
            (0.0,)),
    "gelu": (lambda x: x * _ncdf(x), lambda x: _ncdf(x) + x * _npdf(x), ()),
    "softplus": (lambda x: max(x, 0) + math.log1p(math.exp(-abs(x))), _sig, ()),
    "silu": (lambda x: x * _sig(x), lambda x: _sig(x) * (1 + x * (1 - _sig(x))), ()),
    "hard_tanh": (lambda x: max(-1.0, min(1.0, x)), lambda x: 1.0 if abs(x) < 1 else 0.0,
                  (-1.0, 1.0)),
    "relu": (lambda x: max(x, 0.0), lambda x: 1.0 if x > 0 else 0.0, (0.0,)),
    "leaky_relu:0.2": (lambda x: x if x > 0 else 0.2 * x, lambda x: 1.0 if x > 0 else 0.2,
                       (0.0,)),
}


def ref_gauss(f, q, kinks=()):
    """E[f(sqrt(q) z)], z ~ N(0, 1), by scipy adaptive quadrature (kinks as break points)."""
    if q == 0:
        return f(0.0)
    s = math.sqrt(q)
    pts = sorted({0.0, *[k / s for k in kinks if abs(k / s) < 11]})
    return integrate.quad(lambda z: f(s * z) * _npdf(z), -12, 12, points=pts, limit=400,
                          epsabs=1e-15, epsrel=1e-13)[0]


def ref_fixed_point(name, sw, sb):
    """The fixed point attracting q0 = 1: brentq on the side q_map(1) - 1 points to."""
    phi, _, kinks = REF[name]

    def h(q):
        return sw * ref_gauss(lambda u: phi(u) ** 2, q, kinks) + sb - q

    if h(1.0) >= 0:  # the iterates increase to the first root above 1
        hi = 2.0
        while h(hi) > 0:
            hi *= 2
        return optimize.brentq(h, hi / 2, hi, xtol=1e-14, rtol=1e-14)
    lo = 0.5  # the iterates decrease to the first root below 1 (0 if there is none)
    while h(lo) < 0 and lo > 1e-12:
        lo /= 2
    if h(lo) < 0:
        return 0.0
    return optimize.brentq(h, lo, 2 * lo, xtol=1e-15, rtol=1e-14)


def ref_cross(f, q, c, kinks):
    """E[f(u1) f(u2)], (u1, u2) ~ N(0, q [[1, c], [c, 1]]), nested scipy quadrature."""
    s, r = math.sqrt(q), math.sqrt(1 - c * c)

    def inner(z1):
        pts = sorted({(k / s - c * z1) / r for k in kinks} | {0.0})
        pts = [p for p in pts if abs(p) < 11]
        return integrate.quad(lambda z2: f(s * (c * z1 + r * z2)) * _npdf(z2), -12, 12,
                              points=pts or None, limit=200, epsabs=1e-14, epsrel=1e-12)[0]

    pts = sorted({0.0, *[k / s for k in kinks if abs(k / s) < 11]})
    return integrate.quad(lambda z1: f(s * z1) * inner(z1) * _npdf(z1), -12, 12, points=pts,
                          limit=200, epsabs=1e-14, epsrel=1e-12)[0]


# ------------------------------------------------------------------------------------------------
# agreement with float64 scipy adaptive quadrature on a grid


GRID = [(0.7, 0.0), (0.7, 0.2), (1.5, 0.0), (1.5, 0.2), (1.8, 0.05)]


@pytest.mark.parametrize("name", [n for n in REF if n != "silu"])  # silu: like gelu
def test_fixed_point_and_chi1_match_scipy_reference(name):
    sw = np.array([g[0] for g in GRID])
    sb = np.array([g[1] for g in GRID])
    with x64():
        q = np.asarray(theory.fixed_point(name, sw, sb))
        c1 = np.asarray(theory.chi1(name, sw, sb))
        qm = np.asarray(theory.q_map(name, sw, sb, 1.3))
        assert q.dtype == np.float64
    phi, dphi, kinks = REF[name]
    q_ref = np.array([ref_fixed_point(name, a, b) for a, b in GRID])
    # (at q* = 0 the q -> 0+ limit, as the theory defines it)
    c1_ref = np.array([a * ref_gauss(lambda u: dphi(u) ** 2, max(qr, 1e-300), kinks)
                       for (a, _), qr in zip(GRID, q_ref, strict=True)])
    qm_ref = sw * ref_gauss(lambda u: phi(u) ** 2, 1.3, kinks) + sb
    # The issue asks for 1e-6; both sides are accurate to ~1e-12, so hold them to 1e-9.
    np.testing.assert_allclose(q, q_ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(c1, c1_ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(qm, qm_ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name, sw, sb, c", [
    ("tanh", 2.0, 0.05, -0.3), ("selu", 1.0, 0.0, 0.6), ("hard_tanh", 1.5, 0.1, 0.95),
    ("elu", 1.5, 0.1, 0.99),  # kinks and c near 1: the hardest case for the 2-D rule
])
def test_c_map_and_chi_c_match_scipy_reference(name, sw, sb, c):
    phi, dphi, kinks = REF[name]
    with x64():
        q = float(theory.fixed_point(name, sw, sb))
        got = float(theory.c_map(name, sw, sb, c))
        slope = float(theory.chi_c(name, sw, sb, c))
    num = sw * ref_cross(phi, q, c, kinks) + sb
    den = sw * ref_gauss(lambda u: phi(u) ** 2, q, kinks) + sb
    assert got == pytest.approx(num / den, abs=1e-9)
    assert slope == pytest.approx(sw * ref_cross(dphi, q, c, kinks), abs=1e-9)


# ------------------------------------------------------------------------------------------------
# closed forms against the quadrature (a callable activation bypasses the closed forms)


def test_erf_closed_form_against_quadrature():
    q = np.logspace(-3, 3, 13)
    c = np.linspace(-0.95, 0.999, 13)
    erf = jax.scipy.special.erf
    with x64():
        closed = np.asarray(theory.q_map("erf", 1.0, 0.0, q))
        quad = np.asarray(theory.q_map(erf, 1.0, 0.0, q))
        formula = 2 / np.pi * np.arcsin(2 * q / (1 + 2 * q))
        np.testing.assert_allclose(closed, formula, rtol=1e-14)
        np.testing.assert_allclose(quad, formula, rtol=1e-11)  # quadrature, float64
        # c-map kernel (2/pi) arcsin(2 q c / (1 + 2 q)) and its derivative moments.
        cm = theory.c_map("erf", 1.0, 0.0, c, q=q)
        np.testing.assert_allclose(cm, theory.c_map(erf, 1.0, 0.0, c, q=q), atol=1e-11)
        np.testing.assert_allclose(theory.chi_c("erf", 1.0, 0.0, c, q=q),
                                   theory.chi_c(erf, 1.0, 0.0, c, q=q), atol=1e-11)
        np.testing.assert_allclose(theory.chi1("erf", 1.0, 0.0, q=q),
                                   4 / np.pi / np.sqrt(1 + 4 * q), rtol=1e-14)
        np.testing.assert_allclose(theory.chi1(erf, 1.0, 0.0, q=q),
                                   4 / np.pi / np.sqrt(1 + 4 * q), rtol=1e-11)
    # float32: the same, to float32 rounding of O(1) values.
    np.testing.assert_allclose(theory.q_map(erf, 1.0, 0.0, q), formula, rtol=8 * EPS32)
    np.testing.assert_allclose(theory.q_map("erf", 1.0, 0.0, q), formula, rtol=8 * EPS32)


@pytest.mark.parametrize("name, fn", [
    ("relu", jax.nn.relu),
    ("leaky_relu:0.2", lambda x: jnp.where(x > 0, x, 0.2 * x)),
    ("abs", jnp.abs),  # slope -1 of the same formula (linear, slope 1, is exact either way)
])
def test_relu_family_closed_forms_against_quadrature(name, fn):
    q = np.array([1e-3, 0.5, 1.0, 7.0, 300.0])
    c = np.array([-1.0, -0.3, 0.0, 0.9, 0.9999])
    with x64():
        for f in (theory.q_map, ):
            np.testing.assert_allclose(f(name, 1.3, 0.1, q), f(fn, 1.3, 0.1, q), rtol=1e-12)
        np.testing.assert_allclose(theory.chi1(name, 1.3, 0.1, q=q),
                                   theory.chi1(fn, 1.3, 0.1, q=q), rtol=1e-12)
        # Arc-cosine kernel (Cho & Saul 2009) vs the two-dimensional quadrature.
        np.testing.assert_allclose(theory.c_map(name, 1.3, 0.1, c, q=q),
                                   theory.c_map(fn, 1.3, 0.1, c, q=q), atol=1e-10)
        # E[phi' phi'] has a jump along a line: the split rule still reaches 1e-9.
        np.testing.assert_allclose(theory.chi_c(name, 1.3, 0.1, c, q=q),
                                   theory.chi_c(fn, 1.3, 0.1, c, q=q), atol=1e-9)
    if name == "relu":  # the arc-cosine kernel itself, normalized: c' = k(c) / k(1), sb = 0
        theta = np.arccos(c)
        expected = (np.sqrt(1 - c**2) + (np.pi - theta) * c) / np.pi
        np.testing.assert_allclose(theory.c_map("relu", 2.0, 0.0, c), expected, atol=4e-7)


# ------------------------------------------------------------------------------------------------
# the defining properties


def test_he_init_is_critical_for_relu():
    assert float(theory.chi1("relu", 2.0, 0.0)) == 1.0
    assert float(theory.critical_sigma_w2("relu")) == 2.0
    assert float(theory.critical_sigma_w2("leaky_relu:0.2")) == pytest.approx(2 / 1.04, 1e-7)
    # The quadrature path agrees (ReLU as an anonymous callable).
    assert float(theory.chi1(jax.nn.relu, 2.0, 0.0)) == pytest.approx(1.0, abs=4 * EPS32)
    # He init read off the initializer: exact second moments at every depth, forward and back.
    p = theory.predict(jwinit.he_normal(), "relu", 32, width=256)
    assert float(p.sigma_w2) == pytest.approx(2.0, 1e-6) and float(p.sigma_b2) == 0.0
    np.testing.assert_allclose(p.forward, 2.0, rtol=1e-6)  # q^1 = 2 * input_q
    np.testing.assert_allclose(p.backward, 1.0, rtol=1e-5)
    # Correlations approach 1 only polynomially at criticality: no finite depth scale.
    assert float(theory.depth_scales("relu", 2.0, 0.0).xi_c) == math.inf
    # Glorot (sigma_w2 = 1) halves the second moment per layer.
    g = theory.predict(jwinit.glorot_normal(), "relu", 6, width=128)
    np.testing.assert_allclose(g.forward, 0.5 ** np.arange(6), rtol=1e-6)


def test_selu_fixed_point_under_lecun_weights():
    """Klambauer et al. 2017: mean 0, second moment 1 is the fixed point of SELU nets."""
    d = jwinit.describe(jwinit.lecun_normal(), (400, 400))
    sw = d.variance * 400
    assert sw == pytest.approx(1.0, 1e-12)
    assert float(theory.q_map("selu", sw, 0.0, 1.0)) == pytest.approx(1.0, abs=4 * EPS32)
    assert float(theory.fixed_point("selu", sw, 0.0)) == pytest.approx(1.0, abs=4 * EPS32)
    # Attracting from both sides (chi_q < 1), with E[selu(z)] = 0 at the fixed point.
    for q0 in (0.2, 5.0):
        assert float(theory.fixed_point("selu", sw, 0.0, q0=q0)) == pytest.approx(1.0, 1e-6)
    assert float(theory.chi_q("selu", sw, 0.0)) < 1
    with x64():
        mean = gaussian_expectation(jwinit.get_activation("selu"), panel_rule())
        assert float(theory.fixed_point("selu", 1.0, 0.0)) == pytest.approx(1.0, abs=1e-14)
    assert abs(float(mean)) < 1e-13
    p = theory.predict(jwinit.lecun_normal(), "selu", 20, width=400)
    np.testing.assert_allclose(p.forward, 1.0, rtol=1e-5)


@pytest.mark.parametrize("x64_on", [False, True], ids=["float32", "float64"])
def test_fixed_points_are_fixed(x64_on):
    sw = jnp.array([0.5, 1.0, 1.4, 2.0, 4.0, 9.0])[:, None]
    sb = jnp.array([0.0, 1e-3, 0.1, 1.0])[None, :]
    ctx = x64() if x64_on else contextlib.nullcontext()
    with ctx:
        eps = float(jnp.finfo(jnp.zeros((), float).dtype).eps)
        for name in ("tanh", "erf", "hard_tanh") if x64_on else ("tanh", "erf"):
            q = theory.fixed_point(name, sw, sb)
            assert q.shape == (6, 4) and bool(jnp.all(jnp.isfinite(q)))
            # q* = q_map(q*) to the rounding of the map itself (a sum of ~200 terms: 8 eps).
            resid = jnp.abs(theory.q_map(name, sw, sb, q) - q)
            assert bool(jnp.all(resid <= 8 * eps * q)), (name, resid / (eps * q))


def test_nonconvergent_fixed_points_are_inf_or_nan():
    # ReLU family above criticality: the lengths grow without bound.
    assert float(theory.fixed_point("relu", 3.0, 0.0)) == math.inf
    assert float(theory.fixed_point("relu", 2.0, 0.1)) == math.inf
    assert float(theory.fixed_point("relu", 2.0, 0.0, q0=0.7)) == pytest.approx(0.7)  # all fixed
    assert float(theory.fixed_point("relu", 1.0, 0.0)) == 0.0
    # Smooth ReLU-like activations: the Newton iteration detects the run-away.
    for name, sw in (("elu", 2.5), ("selu", 2.0)):
        assert float(theory.fixed_point(name, sw, 0.1)) == math.inf, name
    ds = theory.depth_scales("elu", 2.5, 0.1)
    assert math.isnan(float(ds.xi_q)) and math.isnan(float(ds.xi_c))
    assert math.isnan(float(theory.correlation_fixed_point("relu", 3.0, 0.1)))
    # No sigma_w2 makes chi1 = 1 for GELU with a bias: chi1 -> 1 only as q* -> inf.
    assert math.isnan(float(theory.critical_sigma_w2("gelu", 0.05)))


@pytest.mark.parametrize("name", ["tanh", "erf", "hard_tanh", "elu"])
def test_critical_sigma_w2_gives_chi1_one(name):
    sb = jnp.array([0.0, 0.05, 0.3])
    sw = theory.critical_sigma_w2(name, sb)  # vectorized over sigma_b2
    assert sw.shape == (3,) and bool(jnp.all(jnp.isfinite(sw)))
    # Bisection to full float32 precision; chi1 itself carries float32 rounding (~1e-6).
    np.testing.assert_allclose(theory.chi1(name, sw, sb), 1.0, atol=2e-5)
    # On either side of the line: ordered below, chaotic above.
    assert bool(jnp.all(theory.chi1(name, 0.97 * sw, sb) < 1))
    assert bool(jnp.all(theory.chi1(name, 1.03 * sw, sb) > 1))
    known = {"tanh": 1.0, "erf": math.pi / 4, "hard_tanh": 1.0}  # sigma_b2 = 0: chi1 = sw phi'(0)^2
    if name in known:
        assert float(sw[0]) == pytest.approx(known[name], rel=1e-5)


def test_depth_scales_follow_schoenholz():
    """xi_q = -1/log(chi_q), xi_c = -1/log(chi_c*): checked against the maps' own iterates."""
    with x64():
        # Ordered phase: c* = 1 and xi_c = -1 / log(chi1).
        sw, sb = 1.2, 0.3
        ds = theory.depth_scales("tanh", sw, sb)
        c1 = float(theory.chi1("tanh", sw, sb))
        assert float(theory.correlation_fixed_point("tanh", sw, sb)) == 1.0
        assert float(ds.xi_c) == pytest.approx(-1 / math.log(c1), rel=1e-12)
        # Chaotic phase: c* < 1 is fixed and attracting at rate chi_c*.
        sw, sb = 2.5, 0.1
        ds = theory.depth_scales("tanh", sw, sb)
        cs = float(theory.correlation_fixed_point("tanh", sw, sb))
        assert 0 < cs < 1
        assert float(theory.c_map("tanh", sw, sb, cs)) == pytest.approx(cs, abs=1e-13)
        chic = float(theory.chi_c("tanh", sw, sb, cs))
        assert float(ds.xi_c) == pytest.approx(-1 / math.log(chic), rel=1e-12)
        # The c-map iterates' distance to c* shrinks by chi_c* per layer (linearization).
        c = cs + 1e-4
        d = []
        for _ in range(4):
            c = float(theory.c_map("tanh", sw, sb, c))
            d.append(c - cs)
        assert d[-1] / d[-2] == pytest.approx(chic, rel=1e-3)  # O(1e-4) nonlinearity
        # Same for lengths: q^l - q* shrinks by chi_q = exp(-1 / xi_q).
        qs = float(theory.fixed_point("tanh", sw, sb))
        q = qs * (1 + 1e-5)
        e = []
        for _ in range(3):
            q = float(theory.q_map("tanh", sw, sb, q))
            e.append(q - qs)
        assert e[-1] / e[-2] == pytest.approx(math.exp(-1 / float(ds.xi_q)), rel=1e-3)
        # chi_q = chi1 + sigma_w2 E[phi'' phi] (Schoenholz et al. eq. 5), tanh'' = -2 tanh tanh'.
        t = REF["tanh"][0]
        extra = sw * ref_gauss(lambda u: -2 * t(u) ** 2 * (1 - t(u) ** 2), qs)
        chi1_ = float(theory.chi1("tanh", sw, sb))
        assert float(theory.chi_q("tanh", sw, sb)) == pytest.approx(chi1_ + extra, rel=1e-10)
    # ReLU with a bias in the ordered phase: both scales are -1 / log(sigma_w2 / 2).
    ds = theory.depth_scales("relu", 1.5, 0.1)
    np.testing.assert_allclose(ds, -1 / math.log(0.75), rtol=1e-6)
    # At the edge of chaos the correlation depth scale diverges.
    crit = theory.critical_sigma_w2("tanh", 0.05)
    assert float(theory.depth_scales("tanh", crit, 0.05).xi_c) > 1e3


def test_phase_diagram_vmapped_under_jit():
    sw = jnp.linspace(0.5, 3.0, 6)
    sb = jnp.array([0.0, 0.05, 0.2])

    @jax.jit
    def grid(sw, sb):
        def point(a, b):
            return (theory.fixed_point("tanh", a, b), theory.chi1("tanh", a, b),
                    theory.correlation_fixed_point("tanh", a, b))
        return jax.vmap(jax.vmap(point, in_axes=(None, 0)), in_axes=(0, None))(sw, sb)

    q, c1, cs = grid(sw, sb)
    assert q.shape == c1.shape == cs.shape == (6, 3)
    pd = theory.phase_diagram("tanh", sw[:, None], sb[None, :])  # broadcasting, own program
    np.testing.assert_allclose(q, pd.q_star, rtol=1e-6, atol=1e-6)  # q* = 0 at sw = 1: ~4 eps
    np.testing.assert_allclose(c1, pd.chi1, rtol=1e-6)
    # c* is the root of c_map(c) - c. Each program evaluates c_map as a float32 sum of ~2e4
    # quadrature terms (pairwise summation: error <= log2(2e4) eps ~ 16 eps of a sum of size
    # <= 1); an error d in c_map moves the root by d / (1 - chi_c*). Two programs: twice that.
    eps = float(jnp.finfo(jnp.float32).eps)
    slope = np.asarray(theory.chi_c("tanh", sw[:, None], sb[None, :], pd.c_star))
    amplification = np.where(np.asarray(pd.c_star) < 1, 1 / (1 - np.minimum(slope, 0.999)), 1)
    assert np.all(np.abs(np.asarray(cs) - np.asarray(pd.c_star)) <= 2 * 16 * eps * amplification)
    # Matches the one-point eager call.
    assert float(q[4, 1]) == pytest.approx(float(theory.fixed_point("tanh", 2.5, 0.05)), 1e-6)
    # The order-chaos boundary sits on the critical line, and c* < 1 exactly in the chaos.
    crit = theory.critical_sigma_w2("tanh", sb)
    assert bool(jnp.all((c1 > 1) == (sw[:, None] > crit[None, :])))
    assert bool(jnp.all((cs < 1) == (c1 > 1)))
    assert bool(jnp.all(jnp.isfinite(pd.xi_q) & (pd.xi_c > 0)))


def test_gradients_flow_through_the_maps():
    # d q'/d sigma_w2 = E[phi(sqrt(q) z)^2]; d q'/d q = chi_q at q (autodiff through quadrature).
    g = jax.grad(lambda s: theory.q_map("tanh", s, 0.1, 1.0))(1.5)
    assert float(g) == pytest.approx(float(theory.q_map("tanh", 1.0, 0.0, 1.0)), 1e-6)
    dq = jax.grad(lambda q: theory.q_map("tanh", 1.5, 0.1, q))(0.8)
    assert float(dq) == pytest.approx(float(theory.chi_q("tanh", 1.5, 0.1, q=0.8)), 1e-5)


def test_hermite_degree_option():
    q = jnp.array([0.1, 1.0, 3.0])
    np.testing.assert_allclose(theory.q_map("tanh", 1.0, 0.0, q, degree=96),
                               theory.q_map("tanh", 1.0, 0.0, q), rtol=2e-6)
    # Product Gauss-Hermite in 2-D: spectral for smooth phi at moderate q (it degrades as
    # tanh(sqrt(q) z) sharpens, which is why the split rule is the default).
    q = jnp.array([0.1, 0.5, 1.0])
    np.testing.assert_allclose(theory.c_map("tanh", 1.0, 0.0, 0.5, q=q, degree=64),
                               theory.c_map("tanh", 1.0, 0.0, 0.5, q=q), atol=2e-6)


# ------------------------------------------------------------------------------------------------
# predict: the layer convention of the probe, checked on a simulated finite-width MLP


def _simulate(rng, sw, sb, depth, width, batch):
    """One random tanh MLP in float64 NumPy: per-layer mean squares of h^{l+1} (forward) and of
    d<g, h^L>/dh^{l+1} for g ~ N(0, I) (backward, by hand-written backpropagation)."""
    x = rng.standard_normal((batch, width))
    ws = rng.standard_normal((depth, width, width)) * math.sqrt(sw / width)
    bs = rng.standard_normal((depth, width)) * math.sqrt(sb)
    hs = [x @ ws[0] + bs[0]]
    for l in range(1, depth):
        hs.append(np.tanh(hs[-1]) @ ws[l] + bs[l])
    delta = rng.standard_normal((batch, width))
    grads = [delta]
    for l in range(depth - 1, 0, -1):
        delta = (delta @ ws[l].T) * (1 - np.tanh(hs[l - 1]) ** 2)
        grads.append(delta)
    return [np.mean(h**2) for h in hs], [np.mean(g**2) for g in grads[::-1]]


def test_predict_matches_a_simulated_network_layer_by_layer():
    depth, width, batch, seeds = 6, 128, 64, 16
    sw, sb = 1.6, 0.1
    rng = np.random.default_rng(3)
    fw, bw = (np.array(a) for a in zip(*[_simulate(rng, sw, sb, depth, width, batch)
                                         for _ in range(seeds)], strict=True))
    p = theory.predict((sw, sb), "tanh", depth)
    for meas, pred in ((fw, p.forward), (bw, p.backward)):
        mean, se = meas.mean(0), meas.std(0, ddof=1) / math.sqrt(seeds)
        # 4 standard errors (from the seeds) plus the O(depth / width) finite-width correction
        # to mean-field theory (Roberts, Yaida & Hanin 2022): here 6 / 128 relative.
        tol = 4 * se + depth / width * np.abs(pred)
        assert np.all(np.abs(mean - pred) <= tol), (mean, pred, tol)
    # The recursions themselves: forward[0] = sw * input_q + sb, forward[l] = q_map(forward[l-1]),
    # backward[-1] = 1, backward[l] = chi1(q = forward[l]) * backward[l + 1].
    f, b = np.asarray(p.forward), np.asarray(p.backward)
    assert f[0] == pytest.approx(sw + sb)
    np.testing.assert_allclose(f[1:], theory.q_map("tanh", sw, sb, f[:-1]), rtol=1e-6)
    assert b[-1] == 1.0
    np.testing.assert_allclose(b[:-1], theory.chi1("tanh", sw, sb, q=f[:-1]) * b[1:], rtol=1e-6)
    # Without a first-layer bias (h^1 = W^1 x) and with another input scale.
    p0 = theory.predict((sw, sb), "tanh", depth, first_layer_bias=False, input_q=2.0)
    assert float(p0.forward[0]) == pytest.approx(2 * sw)


def test_predict_reads_initializers():
    # Glorot with a different input dimension: layer 1 has its own sigma_w2 = 2 d / (d + n).
    p = theory.predict(jwinit.glorot_normal(), "tanh", 4, width=256, input_dim=64)
    assert float(p.sigma_w2) == pytest.approx(1.0, 1e-6)
    assert float(p.forward[0]) == pytest.approx(2 * 64 / (64 + 256), 1e-6)
    # A zero-mean bias initializer sets sigma_b2 = Var(b).
    p = theory.predict(jwinit.he_normal(), "relu", 3, bias_init=jwinit.normal(0.1))
    assert float(p.sigma_b2) == pytest.approx(0.01, 1e-6)
    np.testing.assert_allclose(p.forward, [2.01, 2.02, 2.03], rtol=1e-6)
    # Vectorized over a grid of (sigma_w2, sigma_b2) pairs: one row per point.
    sw = jnp.array([1.0, 2.0, 3.0])
    pv = jax.jit(lambda s: theory.predict((s, 0.0), "relu", 5))(sw)
    assert pv.forward.shape == (3, 5)
    np.testing.assert_allclose(pv.forward[:, -1], sw * (sw / 2) ** 4, rtol=1e-6)
    with pytest.raises(ValueError, match="zero-mean"):
        theory.predict(jwinit.he_normal(), "relu", 3, bias_init=jwinit.constant(0.1))


# ------------------------------------------------------------------------------------------------
# Jacobian spectrum (Pennington, Schoenholz & Ganguli 2017)


def test_jacobian_spectrum_closed_forms():
    L, sw = 7, 1.3
    g = theory.jacobian_spectrum("linear", sw, 0.0, L)
    assert float(g.mean) == pytest.approx(sw**L, 1e-6)
    assert float(g.variance) == pytest.approx(L * sw ** (2 * L), 1e-6)  # products of Ginibre
    o = theory.jacobian_spectrum("linear", 1.0, 0.0, L, weights="orthogonal")
    assert (float(o.mean), float(o.variance)) == (1.0, 0.0)  # orthogonal: perfect isometry
    # ReLU at He init: mean 1, variance 2L (Gaussian) or L (orthogonal): never isometric.
    assert float(theory.jacobian_spectrum("relu", 2.0, 0.0, L).variance) == 2 * L
    assert float(theory.jacobian_spectrum("relu", 2.0, 0.0, L, weights="orthogonal").variance) == L
    # erf: mu_k in closed form, against the quadrature of the same activation.
    with x64():
        for w in theory.WEIGHT_ENSEMBLES:
            a = theory.jacobian_spectrum("erf", 1.7, 0.1, 5, weights=w)
            b = theory.jacobian_spectrum(jax.scipy.special.erf, 1.7, 0.1, 5, weights=w)
            np.testing.assert_allclose(a, b, rtol=1e-10)


def _jacobian_moments(rng, sw, q, depth, n, samples, orthogonal):
    """Per-sample (m1, m2 - m1^2) of the spectrum of J J^T, J = prod D^l W^l, D^l = tanh' at q*,
    W^l Gaussian N(0, sw / n) or sqrt(sw) times Haar orthogonal (QR with the sign fix)."""
    out = []
    for _ in range(samples):
        J = np.eye(n)
        for _ in range(depth):
            g = rng.standard_normal((n, n))
            if orthogonal:
                qm, r = np.linalg.qr(g)
                w = qm * np.sign(np.diag(r)) * math.sqrt(sw)
            else:
                w = g * math.sqrt(sw / n)
            d = 1 - np.tanh(math.sqrt(q) * rng.standard_normal(n)) ** 2
            J = d[:, None] * (w @ J)
        m = J @ J.T
        m1 = np.trace(m) / n
        out.append((m1, np.sum(m * m) / n - m1**2))
    return np.array(out).T


@pytest.mark.parametrize("weights", theory.WEIGHT_ENSEMBLES)
def test_jacobian_spectrum_against_monte_carlo(weights):
    # Widths 32 and 64 (small matrices keep LAPACK single-threaded and the test fast).
    sw, sb, depth, samples = 1.5, 0.05, 3, 256
    q = float(theory.fixed_point("tanh", sw, sb))
    th = theory.jacobian_spectrum("tanh", sw, sb, depth, weights=weights)
    ortho = weights == "orthogonal"
    rng = np.random.default_rng(1)
    m1a, va = _jacobian_moments(rng, sw, q, depth, 32, samples, ortho)
    m1b, vb = _jacobian_moments(rng, sw, q, depth, 64, samples, ortho)
    # E[m1] = chi1^L exactly at any width (independent layers): a pure standard-error test.
    m1 = np.concatenate([m1a, m1b])
    assert abs(m1.mean() - float(th.mean)) <= 4 * m1.std(ddof=1) / math.sqrt(m1.size)
    # The variance formula is the width -> infinity limit; its leading finite-width correction
    # is O(1/n), removed by Richardson extrapolation 2 v(2n) - v(n) (the O(1/n^2) rest is ~1e-3
    # relative at n = 32..64, below the statistical error). Tolerance: 4 standard errors of the
    # extrapolated estimate (about 5% of the Gaussian value and 3% of the orthogonal one here).
    ext = 2 * vb.mean() - va.mean()
    se = math.sqrt(4 * vb.var(ddof=1) / samples + va.var(ddof=1) / samples)
    assert abs(ext - float(th.variance)) <= 4 * se, (ext, float(th.variance), se)
    # Gaussian weights widen the spectrum by exactly L m1^2 over orthogonal ones (the
    # Marchenko-Pastur term s_1 = -1 of W^T W), at equal mean.
    other = theory.jacobian_spectrum("tanh", sw, sb, depth,
                                     weights="gaussian" if ortho else "orthogonal")
    gauss, orth = (other, th) if ortho else (th, other)
    assert float(gauss.mean) == pytest.approx(float(orth.mean), rel=1e-6)
    assert float(gauss.variance) - float(orth.variance) == pytest.approx(
        depth * float(th.mean) ** 2, rel=1e-5)


# ------------------------------------------------------------------------------------------------
# errors


def test_errors_name_the_argument_and_the_legal_values():
    with pytest.raises(ValueError, match=r"unknown activation 'swishy'.*relu"):
        theory.q_map("swishy", 1.0, 0.0, 1.0)
    with pytest.raises(ValueError, match=r"`sigma_w2` must be finite and >= 0, got -1.0"):
        theory.fixed_point("tanh", -1.0, 0.0)
    with pytest.raises(ValueError, match=r"`sigma_b2` must be finite and >= 0, got \[-0.5\]"):
        theory.chi1("tanh", jnp.ones(2), jnp.array([0.0, -0.5]))
    with pytest.raises(ValueError, match="`q` must be finite and >= 0"):
        theory.q_map("tanh", 1.0, 0.0, -2.0)
    with pytest.raises(ValueError, match="`sigma_w2` must be finite"):
        theory.depth_scales("tanh", math.nan, 0.0)
    with pytest.raises(ValueError, match=r"`c` must be in \[-1, 1\], got 1.5"):
        theory.c_map("tanh", 1.0, 0.0, 1.5)
    with pytest.raises(ValueError, match="`sigma_b2` must be finite and >= 0"):
        theory.critical_sigma_w2("tanh", -0.1)
    with pytest.raises(TypeError, match="`sigma_w2` must be a real number"):
        theory.q_map("tanh", "big", 0.0, 1.0)
    with pytest.raises(TypeError, match="`activation` must be a name or a callable"):
        theory.q_map(3, 1.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="`degree` must be an int >= 1, got 0"):
        theory.q_map("tanh", 1.0, 0.0, 1.0, degree=0)
    with pytest.raises(ValueError, match=r"`weights` must be one of \('gaussian', 'orthogonal'\)"):
        theory.jacobian_spectrum("tanh", 1.0, 0.0, 3, weights="haar")
    with pytest.raises(ValueError, match=r"`depth` must be a positive int \(>= 1\), got 0"):
        theory.predict((1.0, 0.0), "tanh", 0)
    with pytest.raises(TypeError, match="`depth` must be a positive int"):
        theory.predict((1.0, 0.0), "tanh", 2.5)
    with pytest.raises(TypeError, match="`kernel_init` must be an initializer or a pair"):
        theory.predict("he_normal", "relu", 3)
    with pytest.raises(ValueError, match="pair"):
        theory.predict((1.0, 0.0, 2.0), "relu", 3)
    # Tracers are not checked (and do not fail) under jit.
    assert bool(jnp.isfinite(jax.jit(lambda s: theory.fixed_point("tanh", s, 0.0))(1.5)))


def test_default_dtype_follows_x64():
    assert theory.q_map("tanh", 1.0, 0.0, 1.0).dtype == jnp.float32
    assert theory.fixed_point("relu", 1.0, 0.1).dtype == jnp.float32
    with x64():
        assert theory.q_map("tanh", 1.0, 0.0, 1.0).dtype == jnp.float64
        assert theory.chi1("erf", np.float32(1.0), 0.0).dtype == jnp.float64

"""constant/zeros/ones/uniform/normal/truncated_normal: jax equality, exact moments, bounds,
the closed-form std correction, complex dtypes, and bad input.

Tolerances: K = 6 standard errors (see test_variance.py for the derivation).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import jwinit
from jwinit.distributions import complex_truncnorm_second_moment, truncnorm_moments

K = 6.0


@pytest.mark.parametrize(
    "name, arg", [("uniform", 0.3), ("normal", 0.3), ("truncated_normal", 0.3), ("constant", -7.0)]
)
@pytest.mark.parametrize("shape", [(8,), (30, 20), (3, 3, 4, 5)])
def test_equal_to_jax(name, arg, shape):
    key = jax.random.key(2)
    ours = getattr(jwinit, name)(arg)(key, shape)
    ref = getattr(jax.nn.initializers, name)(arg)(key, shape)
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(ref))


def test_truncated_normal_bounds_equal_to_jax():
    key = jax.random.key(3)
    ours = jwinit.truncated_normal(0.5, lower=-1.0, upper=3.0)(key, (100, 10))
    ref = jax.nn.initializers.truncated_normal(0.5, lower=-1.0, upper=3.0)(key, (100, 10))
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(ref))


def test_zeros_ones():
    k = jax.random.key(0)
    np.testing.assert_array_equal(np.asarray(jwinit.zeros()(k, (3, 4))), np.zeros((3, 4)))
    np.testing.assert_array_equal(np.asarray(jwinit.ones()(k, (3, 4))), np.ones((3, 4)))
    assert jwinit.zeros()(k, (2,), jnp.int32).dtype == jnp.int32
    assert jwinit.ones(jnp.bfloat16)(k, (2,)).dtype == jnp.bfloat16


def test_zeros_used_like_jax_closure_gives_clear_error():
    with pytest.raises(TypeError, match="factories"):
        jwinit.zeros(jax.random.key(0))


TAILS = [(5, 7), (8, 9), (-math.inf, -6), (3, math.inf), (-1e6, -5), (2, 2.5), (30, math.inf),
         (-math.inf, math.inf), (0, math.inf), (-math.inf, 1.5)]


@pytest.mark.parametrize("lower, upper",
                         [(-2, 2), (-1, 3), (0, 1), (-0.5, 0.5), (1, 4),
                          *(t for t in TAILS if t != (30, math.inf))])
def test_truncnorm_moments_match_scipy(lower, upper):
    m, v = truncnorm_moments(lower, upper)
    rm, rv = stats.truncnorm.stats(lower, upper, moments="mv")
    assert m == pytest.approx(float(rm), rel=1e-10, abs=1e-12)
    assert v == pytest.approx(float(rv), rel=1e-8)


@pytest.mark.parametrize("a", [6.0, 30.0, 1e3])
def test_truncnorm_moments_far_tail_to_float64_precision(a):
    """Beyond a ~ 25 scipy's truncnorm loses digits (its variance at a = 30 is 7e-8 off);
    here an independent composite Simpson rule on 400001 points of the density
    exp(-a y - y^2 / 2), y = x - a, on [0, 40 / a] (the rest weighs < e^-40)."""
    y = np.linspace(0.0, 40.0 / a, 400_001)
    w = np.exp(-a * y - 0.5 * y * y)
    simpson = np.full(y.size, 2.0)
    simpson[1::2] = 4.0
    simpson[0] = simpson[-1] = 1.0
    m = [float(np.sum(simpson * w * y**k)) for k in range(3)]
    mean_y = m[1] / m[0]
    var = m[2] / m[0] - mean_y**2
    got_mean, got_var = truncnorm_moments(a, math.inf)
    assert got_mean == pytest.approx(a + mean_y, rel=1e-13)
    assert got_var == pytest.approx(var, rel=1e-9)
    # the lower tail is the mirror image
    assert truncnorm_moments(-math.inf, -a) == (-got_mean, got_var)


@pytest.mark.parametrize("lower, upper", TAILS)
def test_truncated_normal_samples_any_interval_exactly(lower, upper):
    """Far tails and infinite bounds: samples in float32 follow scipy's truncnorm.

    Sample moments within K standard errors of the exact ones (the variance's SE from the
    distribution's fourth moment, estimated from the sample), a Kolmogorov-Smirnov test at level
    1e-3, the support respected, and no collapse onto few values (in float32 the erf inversion
    gave ~10 distinct values on [5, 7])."""
    n = 200_000
    init = jwinit.truncated_normal(1.0, lower=lower, upper=upper)
    x = np.asarray(init(jax.random.key(11), (n,)), np.float64)
    ref = stats.truncnorm(lower, upper)
    mean, var = float(ref.mean()), float(ref.var())
    assert abs(x.mean() - mean) <= K * math.sqrt(var / n)
    fourth = np.mean((x - x.mean()) ** 4)
    assert abs(x.var() - var) <= K * math.sqrt((fourth - var * var) / n)
    assert stats.kstest(x, ref.cdf).pvalue > 1e-3
    assert lower <= x.min() and x.max() <= upper
    # float32 spacing at |x| is about |x| 2^-23; a range of width w around it holds that many
    width = min(upper, mean + 6 * math.sqrt(var)) - max(lower, mean - 6 * math.sqrt(var))
    levels = width / (max(abs(mean), 1.0) * 2.0**-23)
    assert len(np.unique(x)) >= min(0.2 * n, 0.2 * levels)
    d = jwinit.describe(init, (n,))
    assert d.mean == pytest.approx(mean, rel=1e-10) and d.variance == pytest.approx(var, rel=1e-6)


@pytest.mark.parametrize("lower, upper", [(5, 6), (-math.inf, -4), (8, 9)])
def test_preserve_std_in_the_tails(lower, upper):
    init = jwinit.truncated_normal(0.1, lower=lower, upper=upper, preserve_std=True)
    x = np.asarray(init(jax.random.key(12), (200_000,)), np.float64)
    assert jwinit.describe(init, (4,)).std == pytest.approx(0.1, rel=1e-10)
    assert abs(x.std() / 0.1 - 1) <= K * math.sqrt(2 / x.size)


def test_normal_and_truncated_normal_take_a_mean():
    key, n = jax.random.key(13), 100_000
    x = np.asarray(jwinit.normal(0.5, mean=3.0)(key, (n,)), np.float64)
    assert abs(x.mean() - 3.0) <= K * 0.5 / math.sqrt(n)
    np.testing.assert_allclose(x - 3.0, np.asarray(jwinit.normal(0.5)(key, (n,))), atol=1e-6)
    t = jwinit.truncated_normal(0.5, mean=-1.0)  # Keras TruncatedNormal(mean=-1, stddev=0.5)
    y = np.asarray(t(key, (n,)), np.float64)
    assert -2.0 <= y.min() and y.max() <= 0.0
    assert jwinit.describe(t, (3,)).mean == -1.0


def test_uniform_on_any_interval():
    key, n = jax.random.key(14), 100_000
    init = jwinit.uniform(low=-0.25, high=0.75)  # torch.nn.init.uniform_(w, -0.25, 0.75)
    x = np.asarray(init(key, (n,)), np.float64)
    assert -0.25 <= x.min() and x.max() < 0.75
    assert abs(x.mean() - 0.25) <= K * math.sqrt(1 / 12 / n)
    d = jwinit.describe(init, (3,))
    assert d.mean == 0.25 and d.variance == pytest.approx(1 / 12) and d.bounds == (-0.25, 0.75)
    # the default form is jax's, value for value
    np.testing.assert_array_equal(np.asarray(jwinit.uniform(0.3)(key, (50,))),
                                  np.asarray(jax.nn.initializers.uniform(0.3)(key, (50,))))


@pytest.mark.parametrize("lower, upper", [(-2, 2), (-1, 3), (0, 1), (-0.5, 0.5)])
def test_truncated_normal_preserve_std(lower, upper):
    stddev = 0.25
    init = jwinit.truncated_normal(stddev, lower=lower, upper=upper, preserve_std=True)
    x = np.asarray(init(jax.random.key(5), (400, 500)), np.float64)
    m, v = truncnorm_moments(lower, upper)
    c = stddev / math.sqrt(v)
    assert abs(x.std() / stddev - 1) <= K * math.sqrt(2 / x.size) / 2
    assert abs(x.mean() - c * m) <= K * stddev / math.sqrt(x.size)
    assert x.min() >= c * lower * (1 + 1e-6) - 1e-7 and x.max() <= c * upper * (1 + 1e-6)
    d = jwinit.describe(init, (400, 500))
    assert d.std == pytest.approx(stddev, rel=1e-12)
    assert d.bounds == pytest.approx((c * lower, c * upper))


def test_truncated_normal_without_correction_has_smaller_std():
    x = np.asarray(jwinit.truncated_normal(1.0)(jax.random.key(6), (500, 400)), np.float64)
    assert abs(x.std() / 0.87962566103423978 - 1) <= K * math.sqrt(2 / x.size) / 2


def test_complex_truncated_normal_second_moment():
    # E|w|^2 = stddev^2 with preserve_std; = stddev^2 * 0.92537 without.
    n = (500, 400)
    for preserve, factor in [(True, 1.0), (False, complex_truncnorm_second_moment(2.0))]:
        init = jwinit.truncated_normal(0.5, preserve_std=preserve)
        x = np.asarray(init(jax.random.key(7), n, jnp.complex64), np.complex128)
        assert abs(np.mean(np.abs(x) ** 2) / (0.25 * factor) - 1) <= K / math.sqrt(x.size)
        m2 = complex_truncnorm_second_moment(2.0)
        assert np.abs(x).max() <= 0.5 * 2 / math.sqrt(m2 if preserve else 1.0) * (1 + 1e-6)
        assert jwinit.describe(init, n, jnp.complex64).variance == pytest.approx(0.25 * factor)
    assert complex_truncnorm_second_moment(2.0) == pytest.approx(
        1 - 4 * math.exp(-4) / (1 - math.exp(-4)), rel=1e-14)


def test_complex_truncated_normal_needs_symmetric_bounds():
    init = jwinit.truncated_normal(1.0, lower=-1.0, upper=2.0)
    with pytest.raises(ValueError, match="modulus"):
        init(jax.random.key(0), (4, 4), jnp.complex64)


def test_complex_normal_and_uniform():
    x = np.asarray(jwinit.normal(0.5)(jax.random.key(8), (500, 400), jnp.complex64))
    assert abs(np.mean(np.abs(x) ** 2) / 0.25 - 1) <= K / math.sqrt(x.size)
    u = np.asarray(jwinit.uniform(2.0)(jax.random.key(9), (500, 400), jnp.complex64))
    for part in (u.real, u.imag):
        check = part.astype(np.float64)
        assert check.min() >= 0 and check.max() < 2.0
        assert abs(check.mean() - 1.0) <= K * math.sqrt(4 / 12 / check.size)


@pytest.mark.parametrize("scale", [0.1, 2.0])
def test_uniform_moments(scale):
    x = np.asarray(jwinit.uniform(scale)(jax.random.key(10), (400, 500)), np.float64)
    assert x.min() >= 0 and x.max() < scale
    assert abs(x.mean() - scale / 2) <= K * scale / math.sqrt(12 * x.size)
    assert abs(x.var() / (scale**2 / 12) - 1) <= K * math.sqrt(0.8 / x.size)


@pytest.mark.parametrize(
    "factory, kwargs, exc, match",
    [
        (jwinit.normal, {"stddev": 0.0}, ValueError, "stddev"),
        (jwinit.normal, {"stddev": -1.0}, ValueError, "stddev"),
        (jwinit.uniform, {"scale": 0}, ValueError, "scale"),
        (jwinit.truncated_normal, {"stddev": -0.1}, ValueError, "stddev"),
        (jwinit.truncated_normal, {"lower": 2.0, "upper": 2.0}, ValueError, "lower"),
        (jwinit.truncated_normal, {"lower": 3.0, "upper": -1.0}, ValueError, "lower"),
        (jwinit.truncated_normal, {"preserve_std": 1}, TypeError, "preserve_std"),
        (jwinit.normal, {"stddev": "big"}, TypeError, "stddev"),
        (jwinit.normal, {"dtype": jnp.int32}, TypeError, "floating"),
        (jwinit.constant, {"value": "x"}, TypeError, "value"),
        (jwinit.truncated_normal, {"lower": math.nan}, ValueError, "`lower`"),
        (jwinit.truncated_normal, {"lower": math.inf, "upper": math.inf}, ValueError, "lower"),
        (jwinit.truncated_normal, {"mean": math.inf}, ValueError, "`mean`"),
        (jwinit.normal, {"mean": "0"}, TypeError, "`mean`"),
        (jwinit.uniform, {"low": 1.0, "high": 0.0}, ValueError, "`low` must be less"),
        (jwinit.uniform, {"low": 1.0}, ValueError, "`low` and `high` go together"),
        (jwinit.uniform, {"scale": 0.1, "low": 0.0, "high": 1.0}, ValueError, "either `scale`"),
    ],
)
def test_bad_arguments(factory, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        factory(**kwargs)


def test_non_key_raises_type_error():
    init = jwinit.normal(1.0)
    with pytest.raises(TypeError, match="PRNG key"):
        init(0, (3, 3))
    with pytest.raises(TypeError, match="PRNG key"):
        init(jnp.zeros((2,), jnp.float32), (3, 3))
    # raw uint32 keys are accepted, as everywhere in JAX
    assert init(jax.random.PRNGKey(0), (3, 3)).shape == (3, 3)


def test_int_dtype_at_call_raises():
    with pytest.raises(TypeError, match="floating or complex"):
        jwinit.normal(1.0)(jax.random.key(0), (3,), jnp.int32)

"""variance_scaling and its named variants: equality with jax.nn.initializers, exact moments,
bounds, and the errors for bad arguments.

Statistical tolerances: for n i.i.d. samples the relative standard error of the sample variance is
sqrt((kurtosis - 1) / n) <= sqrt(2 / n) for the normal, truncated normal and uniform laws
(kurtosis 3, 2.36 and 1.8); the standard error of the mean is sigma / sqrt(n). We allow
K = 6 standard errors (a false failure has probability ~2e-9; with fixed seeds the outcome is
deterministic anyway).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jwinit
from jwinit import registry
from jwinit.distributions import truncnorm_moments

K = 6.0
SHAPES = [(64, 32), (5, 16, 32), (3, 3, 16, 32), (3, 3, 3, 8, 16), (4, 64, 32)]
SHARED = ["glorot_uniform", "glorot_normal", "lecun_uniform", "lecun_normal", "he_uniform",
          "he_normal", "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal"]


def check_moments(x, mean, var, bounds=None):
    x = np.asarray(x, np.float64).ravel()
    n = x.size
    assert abs(x.mean() - mean) <= K * math.sqrt(var / n), (x.mean(), mean)
    assert abs(x.var() / var - 1) <= K * math.sqrt(2 / n), (x.var(), var)
    if bounds is not None:
        assert x.min() >= bounds[0] and x.max() <= bounds[1]


@pytest.mark.parametrize("name", SHARED)
@pytest.mark.parametrize("shape", SHAPES)
def test_equal_to_jax_float32(name, shape):
    key = jax.random.key(7)
    ours = getattr(jwinit, name)()(key, shape, jnp.float32)
    ref = getattr(jax.nn.initializers, name)()(key, shape, jnp.float32)
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(ref))


@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg", "fan_geo_avg"])
@pytest.mark.parametrize("distribution", ["truncated_normal", "normal", "uniform"])
def test_variance_scaling_equal_to_jax_with_axes(mode, distribution):
    key = jax.random.key(3)
    kw = dict(in_axis=(0, 1), out_axis=-1, batch_axis=2)
    shape = (4, 6, 3, 10)
    ours = jwinit.variance_scaling(0.7, mode, distribution, **kw)(key, shape)
    ref = jax.nn.initializers.variance_scaling(0.7, mode, distribution, **kw)(key, shape)
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(ref))


@pytest.mark.parametrize("name", ["he_normal", "glorot_uniform", "lecun_normal"])
def test_equal_to_jax_float64_under_x64(name):
    with jax.enable_x64(True):
        key = jax.random.key(11)
        ours = getattr(jwinit, name)()(key, (3, 40, 20), jnp.float64)
        ref = getattr(jax.nn.initializers, name)()(key, (3, 40, 20), jnp.float64)
        assert ours.dtype == jnp.float64
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(ref))


@pytest.mark.parametrize("name, alias", [
    ("he_normal", "kaiming_normal"), ("he_uniform", "kaiming_uniform"),
    ("glorot_normal", "xavier_normal"), ("glorot_uniform", "xavier_uniform"),
    ("identity", "eye"), ("zer_o", "zero_hadamard"),
])
def test_aliases_are_the_same_factory(name, alias):
    assert getattr(jwinit, name) is getattr(jwinit, alias)
    assert registry.entry(alias).factory is registry.get(name)
    assert alias in registry.entry(name).aliases


def test_every_registered_alias_is_public_and_the_same_factory():
    for e in registry.entries():
        for alias in e.aliases:
            assert getattr(jwinit, alias) is getattr(jwinit, e.name) is e.factory


@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg", "fan_geo_avg"])
@pytest.mark.parametrize("distribution", ["truncated_normal", "normal", "uniform"])
def test_variance_scaling_moments(mode, distribution):
    shape = (3, 3, 48, 96)
    fan_in, fan_out = 3 * 3 * 48, 3 * 3 * 96
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2,
         "fan_geo_avg": math.sqrt(fan_in * fan_out)}[mode]
    target = 1.7 / n
    x = jwinit.variance_scaling(1.7, mode, distribution)(jax.random.key(1), shape)
    bounds = None
    if distribution == "uniform":
        bounds = (-math.sqrt(3 * target), math.sqrt(3 * target))
    elif distribution == "truncated_normal":
        r = 2 * math.sqrt(target) / math.sqrt(truncnorm_moments(-2, 2)[1])
        bounds = (-r * (1 + 1e-6), r * (1 + 1e-6))
    check_moments(x, 0.0, target, bounds)
    d = jwinit.describe(jwinit.variance_scaling(1.7, mode, distribution), shape)
    assert d.variance == pytest.approx(target, rel=1e-12)
    assert d.mode == mode and (d.fan_in, d.fan_out) == (fan_in, fan_out)


@pytest.mark.parametrize("slope", [0.0, 0.01, 0.2, 1.0])
def test_he_negative_slope(slope):
    x = jwinit.he_normal(negative_slope=slope)(jax.random.key(2), (512, 512))
    check_moments(x, 0.0, 2 / ((1 + slope**2) * 512))
    if slope == 0.0:  # default path stays bit-identical to jax
        ref = jax.nn.initializers.he_normal()(jax.random.key(2), (512, 512))
        np.testing.assert_array_equal(np.asarray(x), np.asarray(ref))


@pytest.mark.parametrize("distribution", ["truncated_normal", "normal", "uniform"])
def test_complex_second_moment_is_exact(distribution):
    # E|w|^2 = scale / fan_in for complex dtypes. Tolerance: |w|^2 has variance <= (E|w|^2)^2
    # (exponential law for the complex normal; smaller for the disk and the truncated law).
    shape = (400, 500)
    x = np.asarray(jwinit.variance_scaling(2.0, "fan_in", distribution)(
        jax.random.key(4), shape, jnp.complex64), np.complex128)
    target = 2.0 / 400
    m2 = np.mean(np.abs(x) ** 2)
    assert abs(m2 / target - 1) <= K / math.sqrt(x.size)
    assert abs(x.mean()) <= K * math.sqrt(target / x.size)
    # real and imaginary parts are independent with equal variance
    assert abs(x.real.var() / x.imag.var() - 1) <= 2 * K * math.sqrt(2 / x.size)


def test_complex_truncated_normal_fixes_jax_bias():
    # The complex truncated normal's E|z|^2 is exactly 1 - b^2 e^{-b^2} / (1 - e^{-b^2}) = 0.9254
    # for the modulus bound b = 2 (jax.nn.initializers divides by 0.9531^2 = 0.9084 instead, a
    # ~1.9% excess). Ours is within K standard errors of the target: |z|^2 of the truncated
    # complex normal has relative standard deviation below 1, so SE <= 1 / sqrt(n).
    shape = (500, 800)
    key = jax.random.key(5)
    ours = np.asarray(jwinit.he_normal()(key, shape, jnp.complex64), np.complex128)
    target = 2 / 500
    se = 1 / math.sqrt(ours.size)
    assert abs(np.mean(np.abs(ours) ** 2) / target - 1) <= K * se


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_half_precision_keeps_distribution(dtype):
    x = jwinit.he_uniform()(jax.random.key(6), (256, 1024), dtype)
    assert x.dtype == dtype
    r = math.sqrt(6 / 256)
    # rounding to bf16 moves each value by <= 2^-8 relative: widen the bound by that.
    check_moments(x, 0.0, 2 / 256, (-r * (1 + 2**-7), r * (1 + 2**-7)))


def test_describe_truncated_normal_effective_variance():
    d = jwinit.describe(jwinit.he_normal(), (100, 10))
    assert d.variance == pytest.approx(0.02, rel=1e-8)
    assert d.bounds[1] == pytest.approx(2 * math.sqrt(0.02) / 0.87962566103423978)
    assert "fan_in=100" in str(d) and "truncated_normal" in str(d)


@pytest.mark.parametrize(
    "args, match",
    [
        ((0.0, "fan_in", "normal"), "scale"),
        ((-1.0, "fan_in", "normal"), "scale"),
        ((float("nan"), "fan_in", "normal"), "scale"),
        ((1.0, "fan_sum", "normal"), r"`mode`.*fan_in.*fan_sum"),
        ((1.0, "fan_in", "gaussian"), r"`distribution`.*truncated_normal.*gaussian"),
    ],
)
def test_variance_scaling_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        jwinit.variance_scaling(*args)


def test_scale_type_error():
    with pytest.raises(TypeError, match="scale"):
        jwinit.variance_scaling("2", "fan_in", "normal")
    with pytest.raises(TypeError, match="negative_slope"):
        jwinit.he_normal(negative_slope="0.1")


def test_one_dimensional_shape_raises_naming_shape():
    init = jwinit.glorot_uniform()
    with pytest.raises(ValueError, match=r"shape \(16,\)"):
        init(jax.random.key(0), (16,))

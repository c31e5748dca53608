"""Framework presets against each framework's formula (and, for Flax, its actual values).

Distribution checks use the Kolmogorov-Smirnov statistic: D < c / sqrt(n) with c = 1.95, the
0.1% critical value (sqrt(-ln(0.0005) / 2)); variances use K = 6 standard errors, sqrt(2 / n)
relative, as in test_recipes.
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import jwinit
from jwinit import presets

K = 6.0
KS_C = 1.95
DTYPES = [jnp.float32, jnp.bfloat16, jnp.float16, jnp.complex64]
SHARDED = [jnp.float32, jnp.bfloat16]


def draw(init, shape, seed=0, dtype=jnp.float32):
    """One eager draw: JAX caches the compiled sampler by size and dtype across initializers."""
    return np.asarray(init(jax.random.key(seed), shape, dtype), np.float64)


def assert_uniform(x, bound):
    x = np.ravel(x)
    assert np.max(np.abs(x)) <= bound
    d = scipy.stats.kstest(x, scipy.stats.uniform(-bound, 2 * bound).cdf).statistic
    assert d < KS_C / math.sqrt(x.size), d
    assert abs(np.mean(x**2) / (bound**2 / 3) - 1) < K * math.sqrt(2 / x.size)


# --------------------------------------------------------------------------------------------
# PyTorch


def test_torch_linear_weight_and_bias_uniform_one_over_sqrt_fan_in():
    n_in, n_out = 200, 300
    p = presets.torch_linear(n_in)
    assert isinstance(p, presets.LayerInit)
    bound = 1 / math.sqrt(n_in)
    # kaiming_uniform(a=sqrt(5)): gain sqrt(2 / 6), bound gain * sqrt(3 / fan_in) = 1/sqrt(fan_in)
    assert math.sqrt(2 / 6) * math.sqrt(3 / n_in) == pytest.approx(bound)
    assert_uniform(draw(p.kernel_init, (n_in, n_out)), bound)
    assert_uniform(draw(p.bias_init, (20000,)), bound)
    d = jwinit.describe(p.kernel_init, (n_in, n_out))
    assert d.fan_in == n_in and d.variance == pytest.approx(1 / (3 * n_in))
    assert d.bounds == (pytest.approx(-bound), pytest.approx(bound))
    torch_layout = presets.torch_linear(n_in, layout="torch")
    assert_uniform(draw(torch_layout.kernel_init, (n_out, n_in)), bound)
    with pytest.raises(ValueError, match=r"in_features=200.*\(300, 200\).*fan_in 300"):
        p.kernel_init(jax.random.key(0), (n_out, n_in))


def test_torch_linear_in_a_flax_dense():
    layer = nn.Dense(64, **presets.torch_linear(32)._asdict())
    params = layer.init(jax.random.key(0), jnp.ones((1, 32)))["params"]
    bound = 1 / math.sqrt(32)
    assert params["kernel"].shape == (32, 64)
    assert np.max(np.abs(params["kernel"])) <= bound and np.max(np.abs(params["bias"])) <= bound
    assert np.abs(params["bias"]).min() > 0  # not zeros, unlike Flax's default


@pytest.mark.parametrize("kernel_size,groups", [((3, 3), 4), ((5,), 1)])
def test_torch_conv(kernel_size, groups):
    c_in, c_out = 16, 32
    fan_in = c_in // groups * math.prod(kernel_size)
    bound = 1 / math.sqrt(fan_in)
    p = presets.torch_conv(c_in, kernel_size, groups=groups)
    flax_shape = (*kernel_size, c_in // groups, c_out)
    assert_uniform(draw(p.kernel_init, flax_shape), bound)
    assert_uniform(draw(p.bias_init, (10000,)), bound)
    assert jwinit.describe(p.kernel_init, flax_shape).fan_in == fan_in
    pt = presets.torch_conv(c_in, kernel_size, groups=groups, layout="torch")
    assert_uniform(draw(pt.kernel_init, (c_out, c_in // groups, *kernel_size)), bound)
    with pytest.raises(ValueError, match="kernel_size="):
        p.kernel_init(jax.random.key(0), (7, 7, c_in // groups, c_out))


def test_torch_conv_in_a_flax_conv():
    layer = nn.Conv(8, (3, 3), **presets.torch_conv(4, (3, 3))._asdict())
    params = layer.init(jax.random.key(0), jnp.ones((1, 6, 6, 4)))["params"]
    assert np.max(np.abs(params["kernel"])) <= 1 / 6 and np.max(np.abs(params["bias"])) <= 1 / 6


def test_torch_embedding_is_standard_normal():
    init = presets.torch_embedding()
    x = draw(init, (500, 64))
    assert abs(np.mean(x**2) - 1) < K * math.sqrt(2 / x.size)
    assert abs(np.mean(x)) < K / math.sqrt(x.size)
    d = scipy.stats.kstest(x.ravel(), scipy.stats.norm.cdf).statistic
    assert d < KS_C / math.sqrt(x.size)
    assert jwinit.describe(init, (500, 64)).variance == 1.0


def test_torch_rnn_uniform_and_fused_bias():
    h = 64
    k = 1 / math.sqrt(h)
    p = presets.torch_rnn(h)
    assert presets.torch_lstm is presets.torch_rnn and presets.torch_gru is presets.torch_rnn
    assert_uniform(draw(p.kernel_init, (10, h)), k)  # any input size: bound from hidden size
    assert_uniform(draw(p.recurrent_kernel_init, (h, h)), k)
    # fused bias = b_ih + b_hh: triangular on [-2k, 2k], Var = 2 k^2 / 3
    b = draw(p.bias_init, (20000,)).ravel()
    tri = scipy.stats.triang(0.5, loc=-2 * k, scale=4 * k)
    assert scipy.stats.kstest(b, tri.cdf).statistic < KS_C / math.sqrt(b.size)
    assert jwinit.describe(p.bias_init, (h,)).variance == pytest.approx(2 * k * k / 3)
    assert_uniform(draw(presets.torch_rnn(h, fuse_biases=False).bias_init, (20000,)), k)


def test_torch_rnn_in_a_flax_lstm_cell():
    h = 16
    cell = nn.LSTMCell(h, **presets.torch_rnn(h)._asdict())
    x = jnp.ones((1, 5))
    carry = cell.initialize_carry(jax.random.key(0), x.shape)
    params = cell.init(jax.random.key(1), carry, x)["params"]
    k = 1 / math.sqrt(h)
    leaves = jax.tree_util.tree_leaves_with_path(params)
    for path, leaf in leaves:
        limit = 2 * k if "bias" in jax.tree_util.keystr(path) else k
        assert np.max(np.abs(np.asarray(leaf))) <= limit, path


def test_torch_bias():
    assert_uniform(draw(presets.torch_bias(50), (20000,)), 1 / math.sqrt(50))


# --------------------------------------------------------------------------------------------
# Keras, Haiku, Flax, Equinox


def test_keras_dense():
    p = presets.keras_dense()
    bound = math.sqrt(6 / (300 + 200))
    assert_uniform(draw(p.kernel_init, (300, 200)), bound)
    assert not draw(p.bias_init, (200,)).any()


def test_haiku_linear_truncated_normal_not_rescaled():
    p = presets.haiku_linear()
    fan_in = 400
    x = draw(p.kernel_init, (fan_in, 100))
    s = 1 / math.sqrt(fan_in)
    assert np.max(np.abs(x)) <= 2 * s
    trunc = scipy.stats.truncnorm(-2, 2, scale=s)
    assert scipy.stats.kstest(x.ravel(), trunc.cdf).statistic < KS_C / math.sqrt(x.size)
    d = jwinit.describe(p.kernel_init, (fan_in, 100))
    assert d.variance == pytest.approx(trunc.var()) and d.variance == pytest.approx(0.7737 / 400,
                                                                                    rel=1e-4)
    assert abs(np.mean(x**2) / d.variance - 1) < K * math.sqrt(2 / x.size)
    z = np.asarray(p.kernel_init(jax.random.key(0), (fan_in, 100), jnp.complex64))
    assert np.max(np.abs(z.real)) <= 2 * s and np.max(np.abs(z.imag)) <= 2 * s
    assert jwinit.describe(p.kernel_init, (fan_in, 100), jnp.complex64).variance == (
        pytest.approx(2 * trunc.var()))
    assert not draw(p.bias_init, (100,)).any()


def test_flax_dense_equals_flax_defaults():
    x = jnp.ones((2, 48))
    key = jax.random.key(3)
    default = nn.Dense(24).init(key, x)["params"]
    preset = nn.Dense(24, **presets.flax_dense()._asdict()).init(key, x)["params"]
    for name in ("kernel", "bias"):
        np.testing.assert_array_equal(np.asarray(preset[name]), np.asarray(default[name]))


def test_equinox_linear():
    n_in, n_out = 100, 300
    bound = 1 / math.sqrt(n_in)
    p = presets.equinox_linear(n_in)
    assert_uniform(draw(p.kernel_init, (n_in, n_out)), bound)
    assert_uniform(draw(p.bias_init, (20000,)), bound)
    eqx = presets.equinox_linear(n_in, layout="equinox")
    assert_uniform(draw(eqx.kernel_init, (n_out, n_in)), bound)
    with pytest.raises(ValueError, match=r"\(100, 300\)"):
        eqx.kernel_init(jax.random.key(0), (n_in, n_out))


# --------------------------------------------------------------------------------------------
# every preset initializer: jit, dtypes, out_sharding

ALL = {
    "torch_linear": (presets.torch_linear(64), (64, 32)),
    "torch_conv": (presets.torch_conv(8, (3, 3)), (3, 3, 8, 16)),
    "torch_embedding": (presets.torch_embedding(), (64, 32)),
    "torch_rnn": (presets.torch_rnn(32), (64, 32)),
    "torch_bias": (presets.torch_bias(64), (64, 32)),
    "keras_dense": (presets.keras_dense(), (64, 32)),
    "haiku_linear": (presets.haiku_linear(), (64, 32)),
    "flax_dense": (presets.flax_dense(), (64, 32)),
    "equinox_linear": (presets.equinox_linear(64), (64, 32)),
}


def inits_of(value):
    return dict(value._asdict()) if isinstance(value, tuple) else {"init": value}


@pytest.fixture(scope="module")
def mesh():
    return jax.make_mesh((8,), ("x",))


@pytest.mark.parametrize("name", list(ALL))
def test_preset_contract(name, mesh):
    """Every initializer of every preset in one compiled program: every dtype, and placed on the
    8 devices (float32, bfloat16; placement does not depend on the dtype), equal to the plain
    result; eager equal to jit to a few ulps for the float32 kernel."""
    value, kernel_shape = ALL[name]
    inits = inits_of(value)
    key = jax.random.key(9)
    shapes = {role: kernel_shape if "kernel" in role or role == "init" else (kernel_shape[-1],)
              for role in inits}
    specs = {role: P(*(None,) * (len(s) - 1), "x") for role, s in shapes.items()}
    out = jax.jit(lambda k: {(role, jnp.dtype(dt).name): (
        init(k, shapes[role], dt),
        init(k, shapes[role], dt, out_sharding=NamedSharding(mesh, specs[role]))
        if dt in SHARDED else None)
        for role, init in inits.items() for dt in DTYPES})(key)
    for (role, dt), (x, placed) in out.items():
        assert x.shape == shapes[role] and x.dtype == jnp.dtype(dt), role
        assert np.all(np.isfinite(np.asarray(x)))
        if placed is not None:
            assert placed.sharding.spec == specs[role]
            np.testing.assert_array_equal(np.asarray(placed), np.asarray(x))
        d = jwinit.describe(inits[role], shapes[role], dt)
        assert d.exact and d.variance is not None  # against samples: test_describe_samples.py
    role = next(iter(inits))
    eager = inits[role](key, shapes[role], jnp.float32)
    np.testing.assert_allclose(np.asarray(eager), np.asarray(out[role, "float32"][0]),
                               rtol=4 * float(jnp.finfo(jnp.float32).eps), atol=1e-7)


# --------------------------------------------------------------------------------------------
# argument errors


def test_argument_errors():
    with pytest.raises(ValueError, match="`in_features` must be an int >= 1, got 0"):
        presets.torch_linear(0)
    with pytest.raises(TypeError, match="`in_features` must be an int"):
        presets.equinox_linear(3.0)
    with pytest.raises(ValueError, match=r"`layout`.*\('flax', 'torch', 'equinox'\)"):
        presets.torch_linear(8, layout="tf")
    with pytest.raises(TypeError,
                       match=r"`kernel_size` of `torch_conv` must be a sequence.*\(3, 3\)"):
        presets.torch_conv(8, 3)
    with pytest.raises(ValueError, match="`groups`=3 must divide `in_channels`=8"):
        presets.torch_conv(8, (3, 3), groups=3)
    with pytest.raises(TypeError, match="`fuse_biases` must be a bool"):
        presets.torch_rnn(8, fuse_biases="yes")
    with pytest.raises(ValueError, match="`hidden_size` must be an int >= 1"):
        presets.torch_rnn(0)

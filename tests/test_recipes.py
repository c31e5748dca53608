"""Literature recipes: each one's std against its paper's formula, and the property it exists for.

Variance estimates from n draws have relative standard error sqrt((kurtosis - 1) / n) <= sqrt(2 / n)
for the normal, truncated normal and uniform; tests allow K = 6 standard errors, so a failure means
a wrong formula, not bad luck with the fixed seed.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import jwinit
from jwinit import registry

K = 6.0  # standard errors allowed for a statistical estimate
DTYPES = [jnp.float32, jnp.bfloat16, jnp.float16, jnp.complex64]
SHARDED = [jnp.float32, jnp.bfloat16]


def gaussian(seed, shape):
    """Test inputs from NumPy (no compilation)."""
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


def assert_variance(x, target, k=K):
    """Mean square of `x` equals `target` within k standard errors, sqrt(2 / n) relative."""
    x = np.asarray(x).astype(np.complex128)
    est = float(np.mean(np.abs(x) ** 2))
    assert abs(est / target - 1) < k * math.sqrt(2 / x.size), (est, target)


def draw(init, shape, seed=0, dtype=jnp.float32):
    """One eager draw: JAX caches the compiled sampler by size and dtype across initializers."""
    return np.asarray(init(jax.random.key(seed), shape, dtype), np.float64)


# --------------------------------------------------------------------------------------------
# random walk, SNN, ReLU bias, IRNN, GPT-2


@pytest.mark.parametrize("activation,n", [("linear", 256), ("relu", 256), ("relu", 4),
                                          ("identity", 10)])
def test_random_walk_std_formula(activation, n):
    if activation == "relu":
        g = math.sqrt(2) * math.exp(1.2 / (max(n, 6) - 2.4))
    else:
        g = math.exp(1 / (2 * n))
    init = jwinit.random_walk(activation)
    shape = (n, 40000 // n)
    assert_variance(draw(init, shape), g * g / n)
    d = jwinit.describe(init, shape)
    assert d.variance == pytest.approx(g * g / n) and d.extra["gain"] == pytest.approx(g)
    assert d.fan_in == n and d.distribution == "normal"


def test_snn_is_lecun_normal_with_selu_constants():
    key, shape = jax.random.key(0), (300, 200)
    np.testing.assert_array_equal(np.asarray(jwinit.snn()(key, shape)),
                                  np.asarray(jwinit.lecun_normal()(key, shape)))
    d = jwinit.describe(jwinit.snn(), shape)
    assert d.variance == pytest.approx(1 / 300)
    assert d.extra["selu_alpha"] == jwinit.SELU_ALPHA == pytest.approx(1.6732632423543772)
    assert d.extra["selu_lambda"] == jwinit.SELU_LAMBDA == pytest.approx(1.0507009873554805)
    assert_variance(draw(jwinit.snn(distribution="normal"), shape), 1 / 300)


def test_snn_selu_network_self_normalizes():
    """Klambauer et al.: with SELU and Var(W) = 1/n, activations converge to mean 0, variance 1
    and stay there through depth. 16 networks of 32 layers of width 256 on 128 inputs.

    Tolerance: each network's per-layer mean and variance fluctuate with its random weights; the
    standard error of their average over the 16 networks is measured from the networks themselves
    (a t-statistic with 15 degrees of freedom: 5 standard errors is far beyond any plausible
    fluctuation), plus the finite-width bias of the fixed point, O(1 / width) (bounded by
    4 / width)."""
    width, depth, nets = 256, 32, 16
    keys = jax.random.split(jax.random.key(1), nets)
    ws = jax.vmap(lambda k: jwinit.snn(batch_axis=0)(k, (depth, width, width)))(keys)
    x = gaussian(2, (128, width))

    @jax.jit
    def forward(x, ws):
        def layer(h, w):
            h = jax.nn.selu(h @ w)
            return h, (jnp.mean(h), jnp.var(h))

        return jax.vmap(lambda w: jax.lax.scan(layer, x, w)[1])(ws)

    means, variances = (np.asarray(a, np.float64) for a in forward(x, ws))  # (nets, depth)
    late = slice(depth // 2, None)  # after the approach to the fixed point
    for values, target in ((means, 0.0), (variances, 1.0)):
        avg = values[:, late].mean(axis=0)
        se = values[:, late].std(axis=0, ddof=1) / math.sqrt(nets)
        assert np.all(np.abs(avg - target) <= 5 * se + 4 / width), (avg, se)


def test_relu_bias_and_irnn():
    b = jwinit.relu_bias()(jax.random.key(0), (7,), jnp.bfloat16)
    assert b.dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(b, np.float32), np.float32(jnp.bfloat16(0.1)))
    assert jwinit.describe(jwinit.relu_bias(0.01), (7,)).mean == pytest.approx(0.01)
    w = jwinit.irnn(0.5)(jax.random.key(0), (16, 16))
    np.testing.assert_array_equal(np.asarray(w), 0.5 * np.eye(16))
    # IRNN: with zero input and zero bias a ReLU RNN keeps its (non-negative) state forever.
    h0 = jnp.abs(gaussian(1, (16,)))
    h = jax.lax.fori_loop(0, 100, lambda _, h: jax.nn.relu(h @ jwinit.irnn()(
        jax.random.key(0), (16, 16))), h0)
    np.testing.assert_array_equal(np.asarray(h), np.asarray(h0))


def test_gpt2_residual_std():
    init = jwinit.gpt2_residual(12)
    target = 0.02**2 / 24
    assert jwinit.describe(init, (768, 3072)).variance == pytest.approx(target)
    assert_variance(draw(init, (768, 256)), target)
    assert_variance(draw(jwinit.gpt2_residual(48, stddev=0.01), (1000,)), 1e-4 / 96)


# --------------------------------------------------------------------------------------------
# Fixup


def test_fixup_scale_and_variance():
    assert jwinit.fixup_scale(16, 2) == pytest.approx(0.25)  # 16^(-1/2)
    assert jwinit.fixup_scale(16, 3) == pytest.approx(0.5)  # 16^(-1/4)
    assert jwinit.fixup_scale(1, 2) == 1.0
    init = jwinit.fixup(16, 2)
    target = 2 / 512 / 16  # He: 2 / fan_in, times L^(-1/(m-1))
    d = jwinit.describe(init, (512, 128))
    assert d.target_variance == pytest.approx(target) and d.fan_in == 512
    assert d.variance == pytest.approx(jwinit.describe(jwinit.he_normal(), (512, 128)).variance
                                       / 16)
    assert_variance(draw(init, (512, 128)), d.variance)
    custom = jwinit.fixup(9, 3, jwinit.glorot_uniform())
    assert jwinit.describe(custom, (100, 100)).variance == pytest.approx(1 / 100 / 3)
    for helper in (jwinit.fixup_branch_output(), jwinit.fixup_classifier()):
        assert not np.asarray(helper(jax.random.key(0), (64, 10))).any()


@jax.jit
def residual_mlp_output_ratio(w1, w2, x):
    """x_{l+1} = x_l + W2_l relu(W1_l x_l), scanned over the stacked layer axis; returns
    E|x_L|^2 / E|x_0|^2 and x_L."""

    def block(h, w):
        return h + jax.nn.relu(h @ w[0].astype(jnp.float32)) @ w[1].astype(jnp.float32), None

    y = jax.lax.scan(block, x, (w1, w2))[0]
    return jnp.mean(y**2) / jnp.mean(x**2), y


@pytest.fixture(scope="module")
def mesh():
    return jax.make_mesh((8,), ("x",))


def test_fixup_residual_mlp_variance_does_not_grow_with_depth(mesh):
    """Fixup residual MLP (m = 2 layers per branch) at depth 8 and 64.

    * Fixup proper (last layer of each branch zero): the output equals the input exactly.
    * Ablation with the last layer also Fixup-scaled: each branch adds 2 s^4 = 2 / L^2 of the
      variance (He: E[relu(h)^2] = s^2 q, then 2 s^2 of that), so the ratio is (1 + 2/L^2)^L:
      1.279 at L = 8 and 1.032 at L = 64 -- it shrinks with depth.
    * Plain He without Fixup grows as 3^L.

    Width n = 128, batch 256 (N = 32768 entries). The measured ratio fluctuates mostly with the
    weights: each branch's energy by about 2 / sqrt(n) relative (W1 and W2 each contribute
    sqrt(2 / n)), independently over the L blocks, and the cross term 2 <x, b> by
    2 sqrt(2) / (L sqrt(N)) per block. So sd^2 = (T - 1)^2 (4 / n) / L + 8 / (N L) with T the
    theory (0.018 at L = 8, 0.002 at L = 64; 20 seeds give 0.020 and 0.003); K = 6 of them.
    Weights in float32 and bfloat16 (the same draw, cast), and placed on the 8 devices.
    """
    width, batch = 128, 256
    x = gaussian(0, (batch, width))
    sharding = NamedSharding(mesh, P(None, None, "x"))
    ratios = {}
    for depth in (8, 64):
        shape = (depth, width, width)
        first = jwinit.fixup(depth, 2, jwinit.he_normal(batch_axis=0))
        last = jwinit.fixup_branch_output()

        @jax.jit
        def weights(k1, k2, first=first, last=last, shape=shape):
            return (first(k1, shape), first(k1, shape, out_sharding=sharding), last(k2, shape),
                    first(k2, shape), first(k2, shape, jnp.bfloat16))

        w1, w1_sharded, w2, w2_scaled, w2_bf16 = weights(jax.random.key(depth),
                                                          jax.random.key(depth + 1))
        assert len(w1_sharded.sharding.device_set) == 8 and w2_bf16.dtype == jnp.bfloat16
        np.testing.assert_array_equal(np.asarray(w1_sharded), np.asarray(w1))
        ratio, y = residual_mlp_output_ratio(w1_sharded, w2, x)  # Fixup proper: the identity
        assert float(ratio) == 1.0
        np.testing.assert_array_equal(np.asarray(y), np.asarray(x))
        theory = (1 + 2 / depth**2) ** depth
        sd = math.sqrt((theory - 1) ** 2 * 4 / width / depth + 8 / (batch * width * depth))
        ratios[depth] = float(residual_mlp_output_ratio(w1, w2_scaled, x)[0])
        assert abs(ratios[depth] - theory) < K * sd, (depth, ratios[depth], theory, sd)
        in_bf16 = float(residual_mlp_output_ratio(w1, w2_bf16, x)[0])
        assert abs(in_bf16 - theory) < K * sd, (depth, in_bf16, theory, sd)
    assert ratios[64] < ratios[8]
    he = jax.jit(jwinit.he_normal(batch_axis=0), static_argnums=(1,))
    grown, _ = residual_mlp_output_ratio(he(jax.random.key(2), (8, width, width)),
                                         he(jax.random.key(3), (8, width, width)), x)
    assert float(grown) > 3**8 / 2  # about 3^8 = 6561


# --------------------------------------------------------------------------------------------
# T-Fixup


@pytest.mark.parametrize("stack", ["encoder", "decoder"])
def test_t_fixup_roles_against_formula(stack):
    n, d = 6, 256
    roles = jwinit.t_fixup(n, d, stack=stack)
    assert set(roles) == {"query", "key", "value", "attention_output", "mlp", "embedding", "bias"}
    s = 0.67 * n**-0.25 if stack == "encoder" else (9 * n) ** -0.25
    xavier = 2 / (d + 4 * d)  # mlp kernel (d, 4d)
    for role, factor in [("query", 1.0), ("key", 1.0), ("value", s), ("attention_output", s),
                         ("mlp", s)]:
        desc = jwinit.describe(roles[role], (d, 4 * d))
        assert desc.variance == pytest.approx(factor**2 * xavier), role
        assert desc.bounds[1] == pytest.approx(factor * math.sqrt(3 * xavier)), role
    w = draw(roles["mlp"], (d, 4 * d))
    assert_variance(w, s * s * xavier)
    assert np.max(np.abs(w)) <= s * math.sqrt(3 * xavier)
    emb_var = (9 * n) ** -0.5 / d
    assert jwinit.describe(roles["embedding"], (1000, d)).variance == pytest.approx(emb_var)
    assert_variance(draw(roles["embedding"], (1000, d)), emb_var)
    assert not np.asarray(roles["bias"](jax.random.key(0), (d,))).any()
    dec_emb = jwinit.t_fixup(6, d, stack="encoder", num_decoder_layers=12)["embedding"]
    assert jwinit.describe(dec_emb, (10, d)).variance == pytest.approx((9 * 12) ** -0.5 / d)


def test_t_fixup_constants():
    d = jwinit.describe(jwinit.t_fixup(6, 512)["mlp"], (512, 512))
    assert d.extra["factor"] == pytest.approx(0.42809, rel=1e-4)  # 0.67 * 6^(-1/4)
    d = jwinit.describe(jwinit.t_fixup(6, 512, stack="decoder")["mlp"], (512, 512))
    assert d.extra["factor"] == pytest.approx(0.36889, rel=1e-4)  # (9 * 6)^(-1/4)


# --------------------------------------------------------------------------------------------
# DeepNet


def test_deepnorm_constants_table():
    enc = jwinit.deepnorm_constants(num_encoder_layers=12)
    assert set(enc) == {"encoder"}
    assert enc["encoder"].alpha == pytest.approx(24**0.25)
    assert enc["encoder"].beta == pytest.approx(96**-0.25)
    dec = jwinit.deepnorm_constants(num_decoder_layers=200)
    assert dec["decoder"] == (pytest.approx(400**0.25), pytest.approx(1600**-0.25))
    both = jwinit.deepnorm_constants(18, 18)
    n = m = 18
    assert both["encoder"].alpha == pytest.approx(0.81 * (n**4 * m) ** (1 / 16))
    assert both["encoder"].beta == pytest.approx(0.87 * (n**4 * m) ** (-1 / 16))
    assert both["decoder"].alpha == pytest.approx((3 * m) ** 0.25)
    assert both["decoder"].beta == pytest.approx((12 * m) ** -0.25)
    # The reference code's 1 / 1.15 agrees with the table's rounded 0.87 to 0.05%.
    assert both["encoder"].beta == pytest.approx((n**4 * m) ** (-1 / 16) / 1.15, rel=5e-4)
    # Figure 1 of the paper: 1000-layer decoder-only model (M = 1000).
    big = jwinit.deepnorm_constants(0, 1000)["decoder"]
    assert big.alpha == pytest.approx(6.687, rel=1e-3) and big.beta == pytest.approx(0.1057,
                                                                                      rel=1e-3)


@pytest.mark.parametrize("args,stack", [((12, 0), None), ((0, 24), None), ((6, 6), "encoder"),
                                        ((6, 6), "decoder")])
def test_deepnet_roles_against_formula(args, stack):
    roles = jwinit.deepnet(*args, stack=stack)
    which = stack or ("encoder" if args[1] == 0 else "decoder")
    beta = jwinit.deepnorm_constants(*args)[which].beta
    fi, fo = 512, 2048
    xavier = 2 / (fi + fo)
    for role, gain in [("query", 1.0), ("key", 1.0), ("value", beta),
                       ("attention_output", beta), ("mlp", beta)]:
        d = jwinit.describe(roles[role], (fi, fo))
        assert d.variance == pytest.approx(gain**2 * xavier), role
        assert d.distribution == "normal" and d.extra["beta"] == pytest.approx(beta)
    assert_variance(draw(roles["mlp"], (fi, 256)), beta**2 * 2 / (fi + 256))
    assert not np.asarray(roles["bias"](jax.random.key(0), (8,))).any()


# --------------------------------------------------------------------------------------------
# muP


@pytest.mark.parametrize("width", [128, 512, 2048])
def test_mup_roles_against_formula(width):
    base, sigma, d_in, d_out = 128, 1.5, 64, 10
    roles = jwinit.mup(base, width, sigma=sigma)
    assert jwinit.describe(roles["input"], (d_in, width)).variance == pytest.approx(
        sigma**2 / d_in)
    assert jwinit.describe(roles["hidden"], (width, width)).variance == pytest.approx(
        sigma**2 / width)
    out_var = jwinit.describe(roles["output"], (width, d_out)).variance
    assert out_var == pytest.approx(sigma**2 * base / width**2)
    assert_variance(draw(roles["output"], (width, 2000)), out_var)
    assert_variance(draw(roles["hidden"], (width, 64)), sigma**2 / width)
    if width == base:  # muP coincides with standard parametrization at the base width
        assert out_var == pytest.approx(sigma**2 / width)
    zero = jwinit.mup(base, width, zero_readout=True)["output"]
    assert not np.asarray(zero(jax.random.key(0), (width, d_out))).any()


def test_mup_output_scales_as_inverse_width_squared():
    v = [jwinit.describe(jwinit.mup(64, w)["output"], (w, 10)).variance for w in (64, 256, 1024)]
    assert v[0] / v[1] == pytest.approx(16) and v[1] / v[2] == pytest.approx(16)


def test_mup_lr_scales():
    assert jwinit.mup_lr_scales(128, 512) == {"input": 1.0, "hidden": 0.25, "output": 0.25,
                                              "bias": 1.0}
    assert jwinit.mup_lr_scales(128, 512, "sgd") == {"input": 4.0, "hidden": 1.0,
                                                     "output": 0.25, "bias": 4.0}


# --------------------------------------------------------------------------------------------
# Lasagne-style glorot / he


@pytest.mark.parametrize("gain,value", [
    (1.0, 1.0), (2.5, 2.5), ("relu", math.sqrt(2)), ("tanh", 5 / 3), ("selu", 0.75),
    ("leaky_relu", math.sqrt(2 / (1 + 0.01**2))), ("leaky_relu:0.2", math.sqrt(2 / 1.04)),
    ("linear", 1.0), ("conv2d", 1.0),
])
def test_gain_resolution(gain, value):
    assert jwinit.resolve_gain(gain) == pytest.approx(value)
    assert jwinit.describe(jwinit.he(gain), (100, 50)).variance == pytest.approx(value**2 / 100)
    assert jwinit.describe(jwinit.glorot(gain), (100, 50)).variance == pytest.approx(
        value**2 * 2 / 150)


def test_gain_by_quadrature_for_names_outside_pytorchs_table():
    g = jwinit.resolve_gain("gelu")
    assert g == pytest.approx(float(jwinit.gain("gelu")))
    assert jwinit.resolve_gain(jnp.tanh) == pytest.approx(float(jwinit.gain("tanh")))


def test_lasagne_distributions():
    g = math.sqrt(2)
    w = draw(jwinit.glorot(gain="relu"), (300, 200))
    bound = g * math.sqrt(6 / 500)
    assert np.max(np.abs(w)) <= bound and np.max(np.abs(w)) > 0.99 * bound
    assert_variance(w, g * g * 2 / 500)
    w = draw(jwinit.he(gain="relu"), (300, 200))  # plain normal, as Lasagne's HeNormal
    assert_variance(w, 2 / 300)
    assert np.max(np.abs(w)) > 3 * math.sqrt(2 / 300)  # not truncated at 2 std
    w = draw(jwinit.he(gain=2.0, distribution="uniform"), (300, 200))
    assert np.max(np.abs(w)) <= 2 * math.sqrt(3 / 300)


# --------------------------------------------------------------------------------------------
# role recipes: every initializer in every dict, under jit, across dtypes, with out_sharding

ROLE_ENTRIES = [e for e in registry.entries() if e.kind == "role"]


def test_role_entries_are_registered():
    assert {e.name for e in ROLE_ENTRIES} >= {"t_fixup", "deepnet", "mup"}
    for e in ROLE_ENTRIES:
        assert e.distribution and e.variance and e.paper and e.factory.__doc__


@pytest.mark.parametrize("e", ROLE_ENTRIES, ids=lambda e: e.name)
def test_role_recipes_contract(e, mesh):
    """Every role of every recipe in one compiled program: every dtype, and placed on the 8
    devices (float32, bfloat16; placement does not depend on the dtype), equal to the plain
    result; eager equal to jit to a few ulps in float32."""
    roles = e.factory(**e.example)
    key = jax.random.key(5)
    shape = (64, 32)
    sharding = NamedSharding(mesh, P("x", None))
    out = jax.jit(lambda k: {(role, jnp.dtype(dt).name): (
        init(k, shape, dt),
        init(k, shape, dt, out_sharding=sharding) if dt in SHARDED else None)
        for role, init in roles.items() for dt in DTYPES})(key)
    for (role, dt), (x, placed) in out.items():
        assert x.shape == shape and x.dtype == jnp.dtype(dt), role
        assert np.all(np.isfinite(np.asarray(x))), role
        if placed is not None:
            assert placed.sharding.spec == P("x", None) and placed.dtype == x.dtype
            np.testing.assert_array_equal(np.asarray(placed), np.asarray(x))
        if dt == "float32":
            np.testing.assert_allclose(np.asarray(roles[role](key, shape)), np.asarray(x),
                                       rtol=4 * float(jnp.finfo(jnp.float32).eps), atol=1e-7)
        assert jwinit.describe(roles[role], shape, dt).variance is not None  # vs samples:
        # tests/test_describe_samples.py checks every role's stated variance


# --------------------------------------------------------------------------------------------
# argument errors


def test_argument_errors():
    with pytest.raises(ValueError, match=r"`activation`.*\('linear', 'identity', 'relu'\)"):
        jwinit.random_walk("tanh")
    with pytest.raises(ValueError, match=r"`branch_layers` must be an int >= 2, got 1"):
        jwinit.fixup(8, 1)
    with pytest.raises(ValueError, match=r"`blocks` must be an int >= 1"):
        jwinit.fixup(0, 2)
    with pytest.raises(TypeError, match="`blocks` must be an int"):
        jwinit.fixup(8.0, 2)
    with pytest.raises(TypeError, match="`base` of `fixup` must be an initializer"):
        jwinit.fixup(8, 2, base="he_normal")
    with pytest.raises(ValueError, match=r"`stack`.*\('encoder', 'decoder'\)"):
        jwinit.t_fixup(6, 512, stack="middle")
    with pytest.raises(ValueError, match="both 0"):
        jwinit.deepnet()
    with pytest.raises(ValueError, match="two stacks"):
        jwinit.deepnet(6, 6)
    with pytest.raises(ValueError, match=r"no decoder.*legal: \('encoder',\)"):
        jwinit.deepnet(6, 0, stack="decoder")
    with pytest.raises(ValueError, match="`width` must be an int >= 1"):
        jwinit.mup(128, 0)
    with pytest.raises(ValueError, match=r"`optimizer`.*\('adam', 'sgd'\)"):
        jwinit.mup_lr_scales(128, 256, "lion")
    with pytest.raises(ValueError, match=r"`distribution`.*'truncated_normal'"):
        jwinit.he(distribution="cauchy")
    with pytest.raises(ValueError, match="`gain` must be a positive real number, got -1.0"):
        jwinit.glorot(gain=-1.0)
    with pytest.raises(ValueError, match=r"unknown activation 'nope'.*relu"):
        jwinit.he(gain="nope")
    with pytest.raises(ValueError, match="`num_layers` must be an int >= 1"):
        jwinit.gpt2_residual(0)
    with pytest.raises(ValueError, match=r"\(5,\)"):
        jwinit.random_walk()(jax.random.key(0), (5,))
    with pytest.raises(ValueError, match=r"\(5,\)"):
        jwinit.fixup(4, 2)(jax.random.key(0), (5,))

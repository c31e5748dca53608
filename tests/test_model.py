"""LSUV and signal reports on real Flax models (linen and nnx)."""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jwinit
from jwinit.data_dependent import lsuv, signal_report

DEPTH, WIDTH, BATCH = 8, 256, 512


class LinenMLP(nn.Module):
    kernel_init: object

    @nn.compact
    def __call__(self, x):
        for i in range(DEPTH):
            x = nn.Dense(WIDTH, kernel_init=self.kernel_init, name=f"dense{i}")(x)
            if i < DEPTH - 1:
                x = nn.tanh(x)
        return x


class NnxMLP(nnx.Module):
    def __init__(self, kernel_init, rngs):
        self.layers = nnx.List(
            [nnx.Linear(WIDTH, WIDTH, kernel_init=kernel_init, rngs=rngs) for _ in range(DEPTH)])

    def __call__(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < DEPTH - 1:
                x = jnp.tanh(x)
        return x


@pytest.fixture(scope="module")
def batch():
    return jax.random.normal(jax.random.key(1), (BATCH, WIDTH))


def test_lsuv_linen_reaches_unit_variance(batch):
    model = LinenMLP(jwinit.normal(0.01))  # badly scaled: the signal vanishes
    variables = model.init(jax.random.key(0), batch)
    before = signal_report(model, batch, variables)
    assert before.layers[-1].variance < 1e-6
    new = lsuv(model, batch, variables, tol=0.02)
    after = signal_report(model, batch, new)
    assert len(after) == DEPTH
    for s in after.layers:
        assert abs(s.variance - 1) <= 0.02, (s.path, s.variance)
    # the paper's variant: orthogonal re-sampling first
    new = lsuv(model, batch, variables, reinit=jax.nn.initializers.orthogonal(),
               key=jax.random.key(3))
    w = np.asarray(new["params"]["dense3"]["kernel"], np.float64)
    gram = w.T @ w
    np.testing.assert_allclose(gram / gram[0, 0], np.eye(WIDTH), atol=1e-4)


def test_lsuv_nnx_in_place(batch):
    model = NnxMLP(jwinit.normal(1.0), nnx.Rngs(0))  # badly scaled: saturating
    out = lsuv(model, batch, tol=0.02)
    assert out is model
    report = signal_report(model, batch)
    assert [s.path for s in report.layers] == [("layers", i) for i in range(DEPTH)]
    for s in report.layers:
        assert abs(s.variance - 1) <= 0.02, (s.path, s.variance)


def test_signal_report_gradient_is_exact_for_one_layer():
    layer = nn.Dense(64, kernel_init=jwinit.he_normal())
    x = jnp.ones((32, 16))
    variables = layer.init(jax.random.key(0), x)
    report = signal_report(layer, x, variables, key=jax.random.key(5))
    g = jax.random.normal(jax.random.key(5), (32, 64))
    # d<g, y>/dy = g exactly
    assert report.layers[0].grad_second_moment == pytest.approx(float(jnp.mean(g**2)), rel=1e-6)
    y = layer.apply(variables, x)
    assert report.layers[0].second_moment == pytest.approx(float(jnp.mean(y**2)), rel=1e-6)


def test_signal_report_linen_equals_nnx_for_same_weights(batch):
    lin = LinenMLP(jwinit.glorot_normal())
    variables = lin.init(jax.random.key(0), batch)
    model = NnxMLP(jwinit.glorot_normal(), nnx.Rngs(1))
    for i, layer in enumerate(model.layers):
        layer.kernel[...] = variables["params"][f"dense{i}"]["kernel"]
    a = signal_report(lin, batch, variables, key=jax.random.key(2))
    b = signal_report(model, batch, key=jax.random.key(2))
    np.testing.assert_allclose(a.second_moments, b.second_moments, rtol=1e-5)
    np.testing.assert_allclose(a.grad_second_moments, b.grad_second_moments, rtol=1e-5)
    assert "dense0" in str(a)


@pytest.mark.parametrize("init, per_layer", [(jwinit.he_normal(), 1.0),
                                             (jwinit.glorot_normal(), 0.5)],
                         ids=["he", "glorot"])
def test_relu_signal_in_a_real_model_follows_mean_field(init, per_layer):
    class ReluMLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            for i in range(DEPTH):
                x = nn.Dense(WIDTH, kernel_init=init)(x)
                x = nn.relu(x) if i < DEPTH - 1 else x
            return x

    x = jax.random.normal(jax.random.key(0), (BATCH, WIDTH))
    m = ReluMLP()
    report = signal_report(m, x, m.init(jax.random.key(1), x))
    q = report.second_moments
    # Mean field: E[h_{l+1}^2] = (sigma_w2 / 2) E[h_l^2] with sigma_w2 = 2 (He) or 1 (Glorot on
    # square layers), i.e. a factor 1 or 1/2 per layer. At width n each layer multiplies the
    # second moment by a random factor whose log has standard deviation sqrt(5 / n) and mean
    # -2.5 / n (Hanin & Nica 2019); over k = 7 layers: 4 standard deviations plus the drift.
    k = DEPTH - 1
    band = 4 * math.sqrt(5 * k / WIDTH) + 2.5 * k / WIDTH
    assert abs(math.log(q[-1] / q[0]) - k * math.log(per_layer)) <= band
    # the two cases are told apart: their predictions differ by 7 log 2 = 4.85 > 2 bands
    assert 7 * math.log(2) > 2 * band


def test_model_errors(batch):
    model = LinenMLP(jwinit.he_normal())
    with pytest.raises(ValueError, match="variables"):
        lsuv(model, batch)
    with pytest.raises(TypeError, match="model"):
        lsuv(lambda x: x, batch)
    variables = model.init(jax.random.key(0), batch)
    with pytest.raises(ValueError, match="tol"):
        lsuv(model, batch, variables, tol=0.0)
    with pytest.raises(ValueError, match="max_iters"):
        lsuv(model, batch, variables, max_iters=0)
    with pytest.raises(ValueError, match="reinit"):
        lsuv(model, batch, variables, reinit=jwinit.he_normal())
    with pytest.raises(ValueError, match="nnx"):
        lsuv(NnxMLP(jwinit.he_normal(), nnx.Rngs(0)), batch, variables)


class _DropoutLayerNormNet(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        for _ in range(4):
            x = nn.Dense(64, kernel_init=jwinit.normal(0.01))(x)
            x = nn.relu(x)
            x = nn.Dropout(0.2, deterministic=not train)(x)
        x = nn.LayerNorm()(x)
        return nn.Dense(10, kernel_init=jwinit.normal(0.01))(x)


def test_lsuv_and_report_with_dropout_in_training_mode_and_layernorm():
    """Dropout in training mode needs a 'dropout' rng: it comes from `key`, the same mask in
    every pass, so LSUV's rescaling converges; the report is reproducible for a key."""
    model = _DropoutLayerNormNet()
    x = jax.random.normal(jax.random.key(0), (256, 32))
    v = model.init(jax.random.key(1), x)
    kw = {"train": True}
    new = lsuv(model, x, v, tol=0.02, apply_kwargs=kw, key=jax.random.key(2))
    report = signal_report(model, x, new, apply_kwargs=kw, key=jax.random.key(2))
    assert len(report.layers) == 5
    for layer in report.layers:
        assert abs(layer.variance - 1.0) <= 0.02 + 1e-6, (layer.path, layer.variance)
    again = signal_report(model, x, new, apply_kwargs=kw, key=jax.random.key(2))
    np.testing.assert_array_equal(again.second_moments, report.second_moments)
    other = signal_report(model, x, new, apply_kwargs=kw, key=jax.random.key(3))
    assert not np.array_equal(other.second_moments, report.second_moments)  # another mask


def test_an_overflowing_output_is_a_clear_error():
    model = nn.Sequential([nn.Dense(16, kernel_init=jwinit.constant(1e30)), jnp.exp,
                           nn.Dense(4)])
    x = jnp.ones((8, 16))
    v = model.init(jax.random.key(0), x)
    for call in (lambda: signal_report(model, x, v), lambda: lsuv(model, x, v)):
        with pytest.raises(ValueError, match="NaN or inf"):
            call()


def test_lsuv_names_a_layer_whose_output_is_exactly_zero(batch):
    """A zero kernel in the middle: no rescaling reaches the target, and before this was an
    error LSUV returned with that layer and every later one at variance 0."""
    model = LinenMLP(jwinit.normal(0.5))
    variables = model.init(jax.random.key(0), batch)
    params = dict(variables["params"])
    params["dense1"] = {**params["dense1"], "kernel": jnp.zeros_like(params["dense1"]["kernel"])}
    with pytest.raises(ValueError, match=r"layer .*dense1.*exactly zero.*variance 0"):
        lsuv(model, batch, {"params": params}, tol=0.02)
    nnx_model = NnxMLP(jwinit.normal(0.5), nnx.Rngs(0))
    nnx_model.layers[1].kernel.value = jnp.zeros_like(nnx_model.layers[1].kernel.value)
    with pytest.raises(ValueError, match=r"layer .*1.*exactly zero"):
        lsuv(nnx_model, batch, tol=0.02)


def test_signal_report_states_a_verdict(batch):
    """An orthogonal linear chain keeps every norm: ratio 1, preserved; with gain 2 each layer
    multiplies E[h^2] by 4 forward and the gradient's by 4 backward (g_l = 2 Q^T g_(l+1)): 4^7
    over 8 layers, exploding both ways; N(0, 0.01^2) tanh layers shrink E[h^2] by 256 * 1e-4 per
    layer: vanishing. The printed report ends with the verdict."""
    def chain(gain):
        return nn.Sequential([nn.Dense(WIDTH, use_bias=False,
                                       kernel_init=jwinit.orthogonal(scale=gain))
                              for _ in range(DEPTH)])

    for gain, want, ratio in ((1.0, "preserved", 1.0), (2.0, "exploding", 4.0 ** 7)):
        model = chain(gain)
        v = signal_report(model, batch, model.init(jax.random.key(0), batch)).verdict()
        assert (v["verdict"], v["forward"], v["backward"]) == (want, want, want), v
        assert v["forward_ratio"] == pytest.approx(ratio, rel=1e-4)
        assert v["backward_ratio"] == pytest.approx(ratio, rel=1e-4)
    small = LinenMLP(jwinit.normal(0.01))
    report = signal_report(small, batch, small.init(jax.random.key(0), batch))
    v = report.verdict()
    assert (v["verdict"], v["forward"], v["backward"]) == ("vanishing", "vanishing", "vanishing")
    h = report.second_moments
    assert v["forward_ratio"] == pytest.approx(h[-1] / h[0])
    assert str(report).splitlines()[-1].startswith("verdict: vanishing (forward E[h^2] last/first")


def test_lsuv_and_weight_norm_init_keep_a_partitioned_models_annotations(batch):
    """A model written with `nn.with_partitioning` kernels: LSUV and weight-norm init give the
    values they give the same model without annotations, bit for bit, inside the same boxes
    (with their axis names), so the result still shards."""
    plain = LinenMLP(jwinit.normal(0.01))
    boxed = LinenMLP(nn.with_partitioning(jwinit.normal(0.01), (None, "model")))
    x = batch[:64]
    v_plain = plain.init(jax.random.key(0), x)
    v_boxed = boxed.init(jax.random.key(0), x)
    assert isinstance(v_boxed["params"]["dense0"]["kernel"], nn.Partitioned)
    for fn in (lambda m, v: lsuv(m, x, v, tol=0.02), lambda m, v: jwinit.weight_norm_init(m, x, v)):
        want, got = fn(plain, v_plain), fn(boxed, v_boxed)
        for i in range(DEPTH):
            k = got["params"][f"dense{i}"]["kernel"]
            assert isinstance(k, nn.Partitioned) and k.names == (None, "model")
            np.testing.assert_array_equal(k.unbox(), want["params"][f"dense{i}"]["kernel"])
        spec = nn.get_partition_spec(got)["params"]["dense0"]["kernel"]
        assert spec == jax.sharding.PartitionSpec(None, "model")

"""The reference architectures of `jwinit.models`: exact forward passes, the names recipes
address, and clear errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jwinit
from jwinit.models import RNN, ResNet


def _rnn_reference(p, x, phi):
    """The recurrence written out with numpy, step by step."""
    w_in, b_in = np.asarray(p["input"]["kernel"]), np.asarray(p["input"]["bias"])
    w_rec = np.asarray(p["recurrent"]["kernel"])
    h = np.zeros((x.shape[0], w_rec.shape[0]))
    for t in range(x.shape[1]):
        h = phi(x[:, t] @ w_in + b_in + h @ w_rec)
    return h @ np.asarray(p["head"]["kernel"]) + np.asarray(p["head"]["bias"])


@pytest.mark.parametrize("activation, phi", [("tanh", np.tanh),
                                             ("relu", lambda z: np.maximum(z, 0.0))])
def test_rnn_is_the_elman_recurrence(activation, phi):
    x = np.asarray(jax.random.normal(jax.random.key(0), (5, 7, 3)), np.float64)
    model = RNN(width=6, output_dim=2, activation=activation)
    v = model.init(jax.random.key(1), jnp.asarray(x, jnp.float32))
    v = jax.tree.map(lambda a: a + 0.1, v)  # nonzero biases too
    got = np.asarray(model.apply(v, jnp.asarray(x, jnp.float32)), np.float64)
    np.testing.assert_allclose(got, _rnn_reference(v["params"], x, phi), rtol=1e-5, atol=1e-5)


def test_irnn_sums_nonnegative_inputs_exactly():
    """Le et al. 2015: a ReLU RNN with identity recurrence and zero biases copies its state, so
    with nonnegative drives it sums them: h_T = sum_t x_t W_in (to float32 rounding)."""
    x = jnp.abs(jax.random.normal(jax.random.key(0), (4, 50, 2)))
    model = RNN(width=8, output_dim=8, activation="relu")
    v = jwinit.init_params(model, jax.random.key(1), x, {
        r"recurrent/kernel$": jwinit.irnn(), r"input/kernel$": jwinit.constant(0.5),
        r"head/kernel$": jwinit.identity(), r"bias$": jwinit.zeros()})
    want = 0.5 * jnp.sum(x, axis=(1, 2))[:, None] * jnp.ones((1, 8))
    np.testing.assert_allclose(model.apply(v, x), want, rtol=1e-6)


def test_resnet_names_shapes_and_fixup():
    model = ResNet(stages=(2, 1), channels=8, output_dim=5, image_shape=(8, 8, 1))
    x = jax.random.normal(jax.random.key(0), (16, 64))
    v = model.init(jax.random.key(1), x)
    p = v["params"]
    assert sorted(p) == ["block_0", "block_1", "block_2", "head", "stem"]
    assert "shortcut" not in p["block_0"] and p["block_2"]["shortcut"]["kernel"].shape == (
        1, 1, 8, 16)
    assert p["block_2"]["Conv_0"]["kernel"].shape == (3, 3, 8, 16)
    assert model.apply(v, x).shape == (16, 5)
    # Fixup on one stage: every branch adds exactly zero, so the head sees relu(stem(x)), pooled
    one = ResNet(stages=(6,), channels=8, output_dim=5, image_shape=(8, 8, 1))
    fix = jwinit.init_params(one, jax.random.key(2), x,
                             jwinit.fixup_rules(6, 2, branch_last="Conv_1"))
    assert not np.any(np.asarray(fix["params"]["block_5"]["Conv_1"]["kernel"]))
    assert not np.any(np.asarray(one.apply(fix, x)))  # zero classifier
    _, state = one.apply(fix, x, mutable=["intermediates"], capture_intermediates=lambda m, _: (
        m.name is not None and (m.name == "stem" or m.name.startswith("block_"))))
    seen = state["intermediates"]
    stem = seen["stem"]["__call__"][0]
    for i in range(6):  # the residual stream after every block is the stem's output, exactly
        np.testing.assert_array_equal(seen[f"block_{i}"]["__call__"][0], stem)
    for i in range(6):  # while the branches' first layers are random (He scaled by 6^(-1/2))
        assert float(jnp.std(fix["params"][f"block_{i}"]["Conv_0"]["kernel"])) > 0


def test_signal_report_on_a_batchnorm_resnet_under_jit():
    model = ResNet(stages=(1, 1), channels=8, output_dim=4, norm="batch", image_shape=(8, 8, 1))
    x = jax.random.normal(jax.random.key(0), (32, 64))
    v = model.init(jax.random.key(1), x)
    eager = jwinit.signal_report(model, x, v, apply_kwargs={"train": True})
    traced = jax.jit(lambda v: jwinit.signal_report(model, x, v,
                                                    apply_kwargs={"train": True}))(v)
    names = ["/".join(map(str, layer.path)) for layer in eager.layers]
    assert names == ["stem", "block_0/Conv_0", "block_0/Conv_1", "block_1/Conv_0",
                     "block_1/Conv_1", "block_1/shortcut", "head"]
    np.testing.assert_allclose(traced.second_moments, eager.second_moments, rtol=1e-5)
    lsuv = jwinit.lsuv(model, x, v, tol=0.02, apply_kwargs={"train": True})
    for layer in jwinit.signal_report(model, x, lsuv, apply_kwargs={"train": True}).layers:
        assert abs(layer.variance - 1.0) <= 0.02 + 1e-6, (layer.path, layer.variance)


def test_mlp_with_a_width_per_layer_is_the_autoencoder_written_out():
    """MLP(depth=5, width=(256, 128, 32, 128, 256)): those kernels in order, and the forward pass
    phi(... phi(x W0 + b0) ...) Wout + bout computed layer by layer with numpy."""
    widths = (256, 128, 32, 128, 256)
    model = jwinit.models.MLP(depth=5, width=widths, output_dim=64, activation="sigmoid")
    x = jax.random.normal(jax.random.key(1), (3, 64))
    params = model.init(jax.random.key(0), x)["params"]
    shapes = [params[f"Dense_{i}"]["kernel"].shape for i in range(6)]
    assert shapes == [(64, 256), (256, 128), (128, 32), (32, 128), (128, 256), (256, 64)]
    h = np.asarray(x, np.float64)
    for i in range(6):
        layer = params[f"Dense_{i}"]
        h = h @ np.asarray(layer["kernel"]) + np.asarray(layer["bias"])
        h = 1 / (1 + np.exp(-h)) if i < 5 else h
    np.testing.assert_allclose(np.asarray(model.apply({"params": params}, x)), h, rtol=2e-5,
                               atol=2e-6)
    uniform = jwinit.models.MLP(depth=2, width=8, output_dim=1)
    assert (jax.tree.map(jnp.shape, uniform.init(jax.random.key(0), x)["params"])["Dense_1"]
            ["kernel"]) == (8, 8)


@pytest.mark.parametrize("model, x, words", [
    (jwinit.models.MLP(depth=2, width=(8,), output_dim=1), jnp.ones((2, 3)),
     ["`width`", "`depth` (2)", "(8,)"]),
    (jwinit.models.MLP(depth=1, width=0, output_dim=1), jnp.ones((2, 3)), ["`width`", "0"]),
    (RNN(width=4, output_dim=1), jnp.ones((2, 3)), ["(batch, steps, features)", "(2, 3)"]),
    (RNN(width=0, output_dim=1), jnp.ones((2, 3, 1)), ["`width`", "0"]),
    (ResNet(stages=(1,), channels=4, output_dim=2, image_shape=(8, 8, 1)), jnp.ones((2, 60)),
     ["(batch, 64)", "(2, 60)"]),
    (ResNet(stages=(1,), channels=4, output_dim=2), jnp.ones((2, 64)), ["image_shape"]),
    (ResNet(stages=(), channels=4, output_dim=2), jnp.ones((2, 8, 8, 1)), ["`stages`"]),
    (ResNet(stages=(1,), channels=4, output_dim=2, norm="group"), jnp.ones((2, 8, 8, 1)),
     ["`norm`", "group"]),
])
def test_bad_model_inputs(model, x, words):
    with pytest.raises(ValueError) as e:
        model.init(jax.random.key(0), x)
    for w in words:
        assert w in str(e.value), (w, str(e.value))

"""`jwinit.trainability`: the NTK's predictions of full-batch gradient descent, checked against
gradient descent itself (a plain optax loop on the whole batch)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jwinit
from jwinit import theory


@pytest.fixture(scope="module")
def batch():
    d = jwinit.data.digits()
    x = np.asarray(d.x_train[:64], np.float32)
    y = np.eye(10, dtype=np.float32)[d.y_train[:64]]
    return x, y, np.asarray(d.y_train[:64])


def gradient_descent(model, variables, x, y, lr, steps):
    """Full-batch gradient descent on mean((f - y)^2): the loss at steps 0..steps."""
    params, rest = variables["params"], {k: v for k, v in variables.items() if k != "params"}
    tx = optax.sgd(lr)

    def loss_of(p):
        return jnp.mean((model.apply({"params": p, **rest}, x) - y) ** 2)

    @jax.jit
    def step(p, s):
        loss, g = jax.value_and_grad(loss_of)(p)
        u, s = tx.update(g, s, p)
        return optax.apply_updates(p, u), s, loss

    state, losses = tx.init(params), []
    for _ in range(steps):
        params, state, loss = step(params, state)
        losses.append(float(loss))
    losses.append(float(loss_of(params)))
    return np.asarray(losses)


def test_a_linear_model_follows_the_prediction_exactly_and_lr_max_is_the_edge(batch):
    """A linear model is its own linearization: gradient descent's mse equals loss_curve step for
    step (float32 rounding), at 0.5 lr_max it falls, at 0.98 lr_max it still falls (slowly,
    oscillating), at 1.02 lr_max it grows without bound."""
    x, y, _ = batch
    model = jwinit.models.MLP(depth=0, width=1, output_dim=10)
    variables = model.init(jax.random.key(0), x)
    r = jwinit.trainability(model, variables, x, y)
    assert (r.n, r.outputs, r.loss, r.kernel) == (64, 10, "mse", "empirical")
    # the NTK of Dense is x1 . x2 + 1 for every output
    x64 = x.astype(np.float64)
    want = np.linalg.eigvalsh(x64 @ x64.T + 1)[::-1]
    np.testing.assert_allclose(r.eigenvalues, want, rtol=1e-5, atol=1e-6 * want[0])
    assert r.lr_max == pytest.approx(64 * 10 / r.lambda_max, rel=1e-12)
    lr = 0.5 * r.lr_max
    measured = gradient_descent(model, variables, x, y, lr, 30)
    np.testing.assert_allclose(measured, r.loss_curve(lr, 30), rtol=2e-4)
    assert measured[-1] < 0.5 * measured[0]
    for factor, grows in ((0.98, False), (1.02, True)):
        losses = gradient_descent(model, variables, x, y, factor * r.lr_max, 400)
        assert bool(losses[-1] > losses[0]) == grows, (factor, losses[0], losses[-1])
        predicted = r.loss_curve(factor * r.lr_max, 400)
        assert bool(predicted[-1] > predicted[0]) == grows
    # gradient flow is the small-step limit of the discrete curve
    np.testing.assert_allclose(r.loss_curve(1e-3 * r.lr_max, 1000)[::100],
                               r.loss_curve(1e-3 * r.lr_max, 1000, flow=True)[::100], rtol=2e-3)


def test_the_predicted_residuals_are_a_linear_models_own_and_square_to_the_loss_curve(batch):
    """A linear model is its own linearization: its residual f_t(x) - y under gradient descent
    equals residual_curve step for step (float32 rounding), and the predicted residuals' mean
    square is loss_curve to float64 rounding."""
    x, y, _ = batch
    model = jwinit.models.MLP(depth=0, width=1, output_dim=10)
    variables = model.init(jax.random.key(0), x)
    r = jwinit.trainability(model, variables, x, y)
    lr = 0.5 * r.lr_max
    predicted = r.residual_curve(lr, 30)
    assert predicted.shape == (31, 64, 10)
    np.testing.assert_allclose(np.mean(predicted ** 2, axis=(1, 2)), r.loss_curve(lr, 30),
                               rtol=1e-10)
    np.testing.assert_allclose(predicted[0], r.residual, rtol=1e-10, atol=1e-12)
    params = variables["params"]

    @jax.jit
    def step(p):
        g = jax.grad(lambda q: jnp.mean((model.apply({"params": q}, x) - y) ** 2))(p)
        return jax.tree.map(lambda a, b: a - lr * b, p, g)

    scale = np.abs(predicted[0]).max()
    for t in range(31):
        measured = np.asarray(model.apply({"params": params}, x), np.float64) - y
        np.testing.assert_allclose(measured, predicted[t], rtol=0, atol=1e-4 * scale)
        params = step(params)
    with pytest.raises(ValueError, match="`steps` must be an int >= 0, got -1"):
        r.residual_curve(lr, -1)


def test_a_wide_network_follows_the_prediction_and_a_narrow_one_departs(batch):
    """At 0.1 lr_max for 40 steps (ReLU MLP, depth 2): the measured mse's largest relative
    departure from the linearized prediction is ten times smaller at width 512 than at width 32
    (lazy training against feature learning, Lee et al. 2019; measured 0.4% and 15%), and small
    in itself at width 512."""
    x, y, _ = batch
    departure = {}
    for width in (32, 512):
        model = jwinit.models.MLP(depth=2, width=width, output_dim=10, activation="relu")
        variables = model.init(jax.random.key(1), x)
        r = jwinit.trainability(model, variables, x, y)
        lr = 0.1 * r.lr_max
        measured = gradient_descent(model, variables, x, y, lr, 40)
        departure[width] = np.max(np.abs(measured / r.loss_curve(lr, 40) - 1))
    assert departure[512] < departure[32] / 10, departure
    assert departure[512] < 0.02, departure


def test_the_infinite_width_kernel_is_reported_side_by_side(batch):
    x, y, _ = batch
    model = jwinit.models.MLP(depth=2, width=256, output_dim=10, activation="relu")
    variables = model.init(jax.random.key(2), x)
    f = theory.kernel_fn("relu", 2, 1.0, 0.0, parameterization="standard", width=256,
                         use_bias=True)
    r = jwinit.trainability(model, variables, x, y, kernel=f)
    assert r.infinite.kernel == "infinite" and r.infinite.n == 64
    want = np.sort(np.linalg.eigvalsh(np.asarray(f(x).ntk, np.float64)))[::-1]
    np.testing.assert_allclose(r.infinite.eigenvalues, want, rtol=1e-9)
    assert r.infinite.lr_max == pytest.approx(640 / want[0], rel=1e-12)
    np.testing.assert_array_equal(r.infinite.residual, r.residual)
    text = repr(r)
    assert "empirical" in text and "infinite" in text and "lr_max" in text


def test_cross_entropy_lr_max_and_no_closed_form_curve(batch):
    x, _, labels = batch
    model = jwinit.models.MLP(depth=1, width=64, output_dim=10)
    variables = model.init(jax.random.key(3), x)
    r = jwinit.trainability(model, variables, x, labels, loss="cross_entropy")
    assert r.lr_max == pytest.approx(2 * 64 * 10 / r.lambda_max, rel=1e-12)
    assert r.residual is None
    with pytest.raises(ValueError, match="mse.*'cross_entropy'"):
        r.loss_curve(0.1, 10)


class IntParam(nn.Module):
    @nn.compact
    def __call__(self, x):
        self.param("count", lambda k, s: jnp.zeros(s, jnp.int32), (1,))
        return nn.Dense(10)(x)


@pytest.mark.parametrize("case,error,words", [
    ("loss", ValueError, ["`loss`", "'hinge'", "'mse'", "'cross_entropy'"]),
    ("y_rows", ValueError, ["`y`", "one row per example", "(64)", "(63, 10)"]),
    ("y_outputs", ValueError, ["`y`", "10 outputs", "(64, 3)"]),
    ("labels", ValueError, ["`y`", "integer labels in [0, 10)"]),
    ("kernel", TypeError, ["`kernel`", "kernel_fn"]),
    ("kernel_shape", ValueError, ["`kernel(x)`", "(64, 64)", "(3, 3)"]),
    ("int_params", TypeError, ["non-floating", "int32"]),
    ("too_big", ValueError, ["`batch_size`=64", "fits"]),
    ("lr", ValueError, ["`learning_rate`", "-1"]),
])
def test_bad_inputs_are_named(batch, case, error, words):
    x, y, labels = batch
    model = jwinit.models.MLP(depth=1, width=16, output_dim=10)
    variables = model.init(jax.random.key(0), x)
    kw = dict(loss="mse")
    if case == "loss":
        kw["loss"] = "hinge"
    elif case == "y_rows":
        y = y[:63]
    elif case == "y_outputs":
        y = y[:, :3]
    elif case == "labels":
        kw["loss"], y = "cross_entropy", labels + 5
    elif case == "kernel":
        kw["kernel"] = "relu"
    elif case == "kernel_shape":
        kw["kernel"] = lambda x: np.eye(3)
    elif case == "int_params":
        model = IntParam()
        variables = model.init(jax.random.key(0), x)
    elif case == "too_big":
        kw.update(batch_size=64, memory_bytes=1000)
    with pytest.raises(error) as e:
        r = jwinit.trainability(model, variables, x, y, **kw)
        if case == "lr":
            r.loss_curve(-1, 10)
    for w in words:
        assert w in str(e.value), (w, str(e.value))

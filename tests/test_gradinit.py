"""GradInit (Zhu et al. 2021): the constraint, the look-ahead objective, exact rescaling, errors."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import jwinit
from jwinit.learned_scales import _iteration
from jwinit.models import ResidualMLP

X = jax.random.normal(jax.random.key(0), (512, 12))
Y = (jnp.arange(512) % 4).astype(jnp.int32)


def _loss(model, v, x=X, y=Y):
    return float(jnp.mean(optax.softmax_cross_entropy_with_integer_labels(model.apply(v, x), y)))


def test_gradinit_tames_an_exploding_residual_network_and_rescales_exactly():
    model = ResidualMLP(blocks=12, width=32, output_dim=4, kernel_init=jwinit.he_normal())
    v = model.init(jax.random.key(1), X)
    r = jwinit.gradinit(model, X, Y, v, learning_rate=0.01, optimizer="sgd", gamma=1.0,
                        steps=40, batch_size=64, scale_lr=0.05, key=3)
    # He init: 12 blocks double E[h^2] each, the gradient norm is far above gamma at first ...
    assert r.violated[0] and r.objective[0] > np.log(100.0)  # ||g||_2 > 100 gamma
    # ... and GradInit brings it under gamma, then minimizes the look-ahead loss
    assert not r.violated[-1] and r.objective[-1] < _loss(model, v)
    # the result is exactly alpha * theta_0, tensor by tensor, with alpha >= min_scale
    for (path, a), t0, t1 in zip(jax.tree_util.tree_flatten_with_path(r.scales)[0],
                                 jax.tree.leaves(v["params"]), jax.tree.leaves(
                                     r.variables["params"]), strict=True):
        assert a >= np.float32(0.01), path
        np.testing.assert_array_equal(t1, jnp.float32(a) * t0)
    # one SGD step at eta from the learned init decreases the loss
    def after_step(variables):
        g = jax.grad(lambda p: jnp.mean(optax.softmax_cross_entropy_with_integer_labels(
            model.apply({"params": p}, X), Y)))(variables["params"])
        return _loss(model, {"params": jax.tree.map(lambda p, d: p - 0.01 * d,
                                                    variables["params"], g)})
    assert after_step(r.variables) < _loss(model, r.variables)
    assert after_step(v) > _loss(model, v)  # from He the same step increases the loss


def test_adam_variant_uses_the_l1_norm_and_the_sign_step():
    """p = 1 for Adam: the first Adam step moves every weight by eta sign(g), so the first-order
    loss decrease is eta ||g||_1; with gamma above the initial L1 norm nothing is violated."""
    model = ResidualMLP(blocks=2, width=16, output_dim=4)
    v = model.init(jax.random.key(1), X)
    g = jax.grad(lambda p: jnp.mean(optax.softmax_cross_entropy_with_integer_labels(
        model.apply({"params": p}, X[:64]), Y[:64])))(v["params"])
    l1 = float(sum(jnp.sum(jnp.abs(a)) for a in jax.tree.leaves(g)))
    loose = jwinit.gradinit(model, X, Y, v, learning_rate=1e-3, gamma=100 * l1, steps=5)
    assert not loose.violated.any()
    tight = jwinit.gradinit(model, X, Y, v, learning_rate=1e-3, gamma=1e-3 * l1, steps=5)
    assert tight.violated.all()
    # the objective where violated is log ||g||_1 of that iteration's random 64-example batch:
    # within 5 standard deviations of log ||g||_1 over 40 random batches of the same size
    def log_l1(idx):
        g = jax.grad(lambda p: jnp.mean(optax.softmax_cross_entropy_with_integer_labels(
            model.apply({"params": p}, X[idx]), Y[idx])))(v["params"])
        return float(jnp.log(sum(jnp.sum(jnp.abs(a)) for a in jax.tree.leaves(g))))

    keys = jax.random.split(jax.random.key(5), 40)
    ref = np.array([log_l1(jax.random.choice(k, X.shape[0], (64,), replace=False))
                    for k in keys])
    assert abs(tight.objective[0] - ref.mean()) < 5 * ref.std(ddof=1)


def test_other_collections_are_kept_and_the_program_is_compiled_once():
    model = ResidualMLP(blocks=2, width=16, output_dim=4, norm="batch")
    v = model.init(jax.random.key(1), X, train=True)
    before = _iteration.cache_info().misses
    r1 = jwinit.gradinit(model, X, Y, v, learning_rate=0.01, steps=3, key=0,
                         apply_kwargs={"train": True})
    r2 = jwinit.gradinit(model, X, Y, v, learning_rate=0.01, steps=3, key=1,
                         apply_kwargs={"train": True})
    assert _iteration.cache_info().misses == before + 1  # the second seed reuses the program
    for a, b in zip(jax.tree.leaves(v["batch_stats"]), jax.tree.leaves(r1.variables["batch_stats"]),
                    strict=True):
        np.testing.assert_array_equal(a, b)
    assert r1.scales != r2.scales  # different batches


@pytest.mark.parametrize("kwargs, error, words", [
    ({"gamma": 0.0}, ValueError, ["gamma", "0.0"]),
    ({"optimizer": "rmsprop"}, ValueError, ["optimizer", "rmsprop", "adam"]),
    ({"steps": 0}, ValueError, ["steps", "0"]),
    ({"learning_rate": -1.0}, ValueError, ["learning_rate", "-1.0"]),
    ({"y": Y[:10]}, ValueError, ["same number of examples", "(10,)"]),
    ({"x": X.at[0, 0].set(jnp.nan)}, ValueError, ["NaN"]),
    ({"variables": {"batch_stats": {}}}, ValueError, ["'params'"]),
    ({"model": nnx.Linear(12, 4, rngs=nnx.Rngs(0))}, TypeError, ["flax.linen.Module", "Linear"]),
    # labels outside the model's 4 outputs: the cross-entropy would be meaningless
    ({"y": Y + 5}, ValueError, ["`y`", "[0, 4)", "4 outputs", "[5, 8]"]),
    ({"y": Y.astype(jnp.float32)}, ValueError, ["`y`", "float targets", "(4,)", "integer"]),
    ({"key": "abc"}, TypeError, ["`key`", "gradinit", "'abc'"]),
    # another model's variables: a one-line error naming the batch and the parameter
    ({"variables": nn.Dense(7).init(jax.random.key(0), X)}, ValueError,
     ["`variables`/`x`", "kernel"]),
])
def test_bad_inputs_fail_before_any_compute(kwargs, error, words):
    model = nn.Dense(4)
    args = {"model": model, "x": X, "y": Y, "variables": model.init(jax.random.key(0), X),
            "learning_rate": 0.01}
    args.update(kwargs)
    with pytest.raises(error) as e:
        jwinit.gradinit(args.pop("model"), args.pop("x"), args.pop("y"), args.pop("variables"),
                        **args)
    for w in words:
        assert w in str(e.value), (w, str(e.value))

"""How the trainer compiles and evaluates: `jit_few_outputs` returns `jax.jit`'s values, the
evaluation in batches equals the evaluation at once, and the divergence freeze (one conditional
on the loss and the update) marks and freezes a run whether it is alone or vmapped."""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jwinit
from jwinit import train as jtrain
from jwinit._programs import jit_few_outputs

SGD = functools.partial(optax.sgd, momentum=0.9)


@pytest.fixture(scope="module")
def small():
    d = jwinit.data.digits()
    return jwinit.data.Dataset(d.x_train[:300], d.y_train[:300], d.x_test[:130], d.y_test[:130])


def _draws(keys):
    """An initialization-like program: 5 same-shape draws (one vmapped), other shapes, a
    scalar, an integer leaf and a typed key."""
    ks = jax.random.split(keys[0], 5)
    stacked = jax.vmap(lambda k: jax.random.normal(k, (2, 6, 4)))(ks)
    return {"kernels": [stacked[i] for i in range(5)],
            "more": [jax.random.uniform(keys[1], (2, 6, 4)), jnp.zeros((2, 6, 4))],
            "bias": [jnp.full((2, 3), 0.5), jnp.zeros((2, 3))], "scale": jnp.float32(2.0),
            "count": jnp.arange(2, dtype=jnp.int32), "key": jax.random.split(keys[2], 2)}


def _assert_same(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        assert x.shape == y.shape and x.dtype == y.dtype
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_jit_few_outputs_returns_the_values_of_jit():
    keys = jax.random.split(jax.random.key(3), 3)
    _assert_same(jit_few_outputs(_draws)(keys), jax.jit(_draws)(keys))


def test_jit_few_outputs_of_sharded_outputs_slices_on_the_devices():
    """Outputs spread over 8 devices are split by a compiled slicing program (not copied to the
    host), keep their sharding, and hold the same values."""
    mesh = jax.sharding.Mesh(np.asarray(jax.devices()[:8]), ("runs",))
    spec = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("runs"))
    x = jax.device_put(jnp.arange(8 * 3, dtype=jnp.float32).reshape(8, 3), spec)

    def fn(x):
        return [x * k for k in range(4)] + [x.sum()]

    got = jit_few_outputs(fn)(x)
    _assert_same(got, jax.jit(fn)(x))
    assert all(len(a.devices()) == 8 for a in got[:4])


@pytest.mark.parametrize("signal", [False, True])
def test_evaluation_in_batches_equals_the_evaluation_at_once(small, signal):
    """300 evaluation and 130 test examples (one set of 430) in batches of 64 (the last padded,
    its extra outputs dropped) or at once: the same forward pass per example, so the metrics
    agree to float32 rounding of the means (rtol 1e-6) and the accuracies exactly."""
    kw = dict(inits={"he": "he_normal", "lecun": "lecun_normal"}, optimizer=SGD,
              learning_rates=[0.05], steps=20, seeds=2, eval_every=10, signal=signal)
    model = jwinit.models.MLP(depth=3, width=32, output_dim=10, activation="relu")
    batched = jtrain.train(model, small, eval_batch_size=64, **kw)
    whole = jtrain.train(model, small, eval_batch_size=10_000, **kw)
    for m in ("train_loss", "test_loss"):
        np.testing.assert_allclose(getattr(batched, m), getattr(whole, m), rtol=1e-6)
    for m in ("train_accuracy", "test_accuracy"):
        np.testing.assert_array_equal(getattr(batched, m), getattr(whole, m))
    if signal:
        np.testing.assert_array_equal(batched.signal, whole.signal)  # not batched


class _Conv(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(4, (3, 3))(x.reshape(x.shape[0], 8, 8, 1)))
        return nn.Dense(10)(x.reshape(x.shape[0], -1))


@pytest.mark.parametrize("threads", [1, 2])
def test_evaluation_in_batches_of_a_convolution_with_runs_unrolled(small, threads):
    """The convolutions of each run computed apart ('unroll'), in a loop over evaluation
    batches: the metrics of the evaluation at once, to float32 rounding."""
    one = jax.sharding.Mesh(np.asarray(jax.devices()[:1]), ("runs",))
    kw = dict(inits={"he": "he_normal"}, optimizer=SGD, learning_rates=[0.05, 0.01], steps=10,
              seeds=2, eval_every=5, mesh=one, threads=threads, batching="unroll")
    batched = jtrain.train(_Conv(), small, eval_batch_size=50, **kw)
    whole = jtrain.train(_Conv(), small, eval_batch_size=10_000, **kw)
    assert batched.batching == "unroll" and batched.threads == threads
    for m in ("train_loss", "test_loss"):
        np.testing.assert_allclose(getattr(batched, m), getattr(whole, m), rtol=1e-5)
    for m in ("train_accuracy", "test_accuracy"):
        np.testing.assert_allclose(getattr(batched, m), getattr(whole, m), atol=1 / 130 + 1e-7)


def test_bad_eval_batch_size_is_refused_before_any_compute(small):
    for bad, error in ((0, ValueError), (2.5, TypeError), ("64", TypeError)):
        with pytest.raises(error, match="`eval_batch_size`"):
            jtrain.train(jwinit.models.MLP(depth=1, width=4, output_dim=10), small,
                         inits={"he": "he_normal"}, optimizer=SGD, learning_rates=[0.1],
                         steps=2, seeds=1, eval_batch_size=bad)


def test_a_lone_diverging_run_is_marked_and_frozen_finite(small):
    """One run (no batch dimension: the freeze is a conditional, not vmap's select)."""
    relu = jwinit.models.MLP(depth=3, width=16, output_dim=10, activation="relu")
    r = jtrain.train(relu, small, inits={"he": "he_normal"}, optimizer=SGD,
                     learning_rates=[1e6], steps=30, seeds=1, eval_every=10)
    assert 0 <= r.diverged_step[0] < 30
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(r.params))
    assert np.all(np.isnan(r.train_loss[0, -1:]))


class _SqrtScale(nn.Module):
    """An MLP whose output adds 0 * sqrt(s), s = 0: the loss is finite, the gradient of s is
    0 * inf = NaN at every step."""

    @nn.compact
    def __call__(self, x):
        s = self.param("s", nn.initializers.zeros, ())
        return nn.Dense(10)(nn.relu(nn.Dense(16)(x))) + 0.0 * jnp.sqrt(s)


def test_the_freeze_follows_the_update_not_the_gradient(small):
    """A non-finite gradient that the optimizer turns into a finite update (optax.zero_nans)
    does not stop the run, which trains; without it the update is NaN and the run is frozen
    at step 0."""
    kw = dict(inits={"he": {r"kernel$": jwinit.he_normal(), r"(bias|s)$": jwinit.zeros()}},
              learning_rates=[0.05], steps=40, seeds=2, eval_every=20)
    plain = jtrain.train(_SqrtScale(), small, optimizer=optax.sgd, **kw)
    assert list(plain.diverged_step) == [0, 0]
    guarded = jtrain.train(_SqrtScale(), small,
                           optimizer=lambda lr: optax.chain(optax.zero_nans(), optax.sgd(lr)),
                           **kw)
    assert list(guarded.diverged_step) == [-1, -1]
    assert np.all(guarded.train_loss[:, -1] < 0.5 * guarded.train_loss[:, 0])


class _BatchCentred(nn.Module):
    """Logits minus their mean over the batch: an output that depends on the other examples of
    its forward pass (which is why an evaluation in batches needs a model without one)."""

    @nn.compact
    def __call__(self, x):
        y = nn.Dense(10)(x)
        return y - y.mean(axis=0, keepdims=True)


def test_the_evaluation_really_runs_in_batches(small):
    kw = dict(inits={"he": "he_normal"}, optimizer=SGD, learning_rates=[0.05], steps=10,
              seeds=1, eval_every=10)
    batched = jtrain.train(_BatchCentred(), small, eval_batch_size=64, **kw)
    whole = jtrain.train(_BatchCentred(), small, eval_batch_size=10_000, **kw)
    # the 300 evaluation and 130 test examples are one set of 430: one batch
    same_size = jtrain.train(_BatchCentred(), small, eval_batch_size=430, **kw)
    assert not np.allclose(batched.train_loss, whole.train_loss, rtol=1e-3)
    np.testing.assert_array_equal(same_size.train_loss, whole.train_loss)


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_the_default_layouts_of_one_and_eight_devices_compute_the_same_runs(small, model):
    """By default one CPU device runs every run as its own call from 2 host threads, and 8
    devices run groups (vmapped, or for a convolution one unrolled group per device): the same
    runs to float32 rounding (XLA:CPU computes a lone step and a vmapped one with different
    kernels: measured up to 2 ulps of the losses)."""
    net = (jwinit.models.MLP(depth=2, width=16, output_dim=10, activation="tanh")
           if model == "mlp" else _Conv())
    one = jax.sharding.Mesh(np.asarray(jax.devices()[:1]), ("runs",))
    kw = dict(inits={"he": "he_normal", "lecun": "lecun_normal"}, optimizer=SGD,
              learning_rates=[0.02, 0.05], steps=12, seeds=2, eval_every=6)
    alone = jtrain.train(net, small, mesh=one, threads=2, **kw)
    spread = jtrain.train(net, small, **kw)
    assert (alone.threads, spread.threads) == (2, 1)
    for m in jtrain.METRICS:
        np.testing.assert_allclose(getattr(alone, m), getattr(spread, m), rtol=2e-6, err_msg=m)

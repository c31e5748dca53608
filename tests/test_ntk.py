"""jwinit.ntk: the empirical NTK equals the product of the model's Jacobians, computed directly
(flattened parameters, jax.jacfwd), on an MLP, a CNN and a Transformer, in linen, nnx and
Equinox; blocks do not change it; bad inputs are named."""

import equinox as eqx
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.flatten_util import ravel_pytree

import jwinit


def direct(f, params, x1, x2):
    """Theta_{ab,ij} from the full Jacobian of the flattened outputs w.r.t. the flattened
    parameters, in float64 numpy."""
    flat, unravel = ravel_pytree(params)

    def jac(x):
        y = lambda p: f(unravel(p), x).reshape(-1)  # noqa: E731
        j = np.asarray(jax.jit(jax.jacfwd(y))(flat), np.float64)
        n = x.shape[0]
        return j.reshape(n, -1, j.shape[-1])

    j1, j2 = jac(x1), jac(x2)
    return np.einsum("aip,bjp->abij", j1, j2)


class CNN(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(4, (3, 3))(x))
        x = nn.relu(nn.Conv(4, (3, 3), strides=2)(x))
        return nn.Dense(3)(x.reshape(x.shape[0], -1))


CASES = {
    "mlp": (jwinit.models.MLP(depth=2, width=32, output_dim=4),
            lambda k, n: jax.random.normal(k, (n, 6))),
    "cnn": (CNN(), lambda k, n: jax.random.normal(k, (n, 8, 8, 2))),
    "transformer": (jwinit.models.Transformer(vocab_size=11, length=5, layers=1, dim=8,
                                               heads=2, mlp_dim=16, output_dim=3),
                    lambda k, n: jax.random.randint(k, (n, 5), 0, 11)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_kernel_is_the_jacobian_product(name):
    model, sample = CASES[name]
    x1, x2 = sample(jax.random.key(1), 5), sample(jax.random.key(2), 3)
    v = model.init(jax.random.key(0), x1)

    def f(p, x):
        return model.apply({**v, "params": p}, x)

    want = direct(f, v["params"], x1, x2)
    full = np.asarray(jwinit.ntk(model, v, x1, x2, trace=False), np.float64)
    scale = np.abs(want).max()
    np.testing.assert_allclose(full, want, rtol=0, atol=1e-5 * scale)
    # x2 = x1, traced, in blocks of 2 (the last one padded): the same as the direct product
    same = direct(f, v["params"], x1, x1)
    traced = np.asarray(jwinit.ntk(model, v, x1, batch_size=2), np.float64)
    np.testing.assert_allclose(traced, np.trace(same, axis1=2, axis2=3) / same.shape[-1],
                               rtol=0, atol=1e-5 * scale)
    assert np.linalg.eigvalsh((traced + traced.T) / 2).min() > -1e-5 * scale  # PSD
    # a budget that holds one block of 2 examples but not all of them: two blocks at a time,
    # the column blocks recomputed; the same kernel (x2 = x1 and x2 given, traced and full)
    n_params = sum(a.size for a in jax.tree.leaves(v["params"]))
    k = same.shape[-1]
    budget = 2 * k * n_params * 4
    streamed = np.asarray(jwinit.ntk(model, v, x1, batch_size=2, memory_bytes=budget))
    np.testing.assert_allclose(streamed, traced, rtol=0, atol=1e-6 * scale)
    streamed = np.asarray(jwinit.ntk(model, v, x1, x2, trace=False, batch_size=2,
                                     memory_bytes=budget), np.float64)
    np.testing.assert_allclose(streamed, want, rtol=0, atol=1e-5 * scale)


class Shared(nn.Module):
    """Dense layers at 3 positions per example: one factored (S^2 (d_in + k d_out) < k d_in
    d_out), one called twice (left to the Jacobian), an embedding and a LayerNorm (Jacobian)."""

    @nn.compact
    def __call__(self, x):
        h = nn.Embed(11, 32)(x)
        h = nn.gelu(nn.Dense(32, name="wide")(h))
        twice = nn.Dense(32, use_bias=False, name="twice")
        h = nn.LayerNorm()(twice(h) + twice(h[:, ::-1]))
        return nn.Dense(4, name="head")(h.mean(1))


class _Step(nn.Module):
    @nn.compact
    def __call__(self, h, _):
        return nn.tanh(nn.Dense(16)(h)), None


class Scanned(nn.Module):
    """A stack of dense layers under nn.scan (stacked kernels: left to the Jacobian)."""

    @nn.compact
    def __call__(self, x):
        h = nn.Dense(16, name="stem")(x)
        h, _ = nn.scan(_Step, variable_axes={"params": 0}, split_rngs={"params": True},
                       length=3)()(h, None)
        return nn.Dense(4, name="head")(h)


class Remat(nn.Module):
    """A dense layer inside nn.remat: its input is recorded inside remat's trace, so the model
    is differentiated whole by the Jacobian."""

    @nn.compact
    def __call__(self, x):
        h = nn.LayerNorm()(nn.tanh(nn.remat(nn.Dense)(16)(x)))
        return nn.Dense(4, name="head")(h)


FACTORED = {
    "shared": (Shared(), lambda k, n: jax.random.randint(k, (n, 3), 0, 11),
               [("head",), ("wide",)]),
    "scanned": (Scanned(), lambda k, n: jax.random.normal(k, (n, 6)), [("head",), ("stem",)]),
    "remat": (Remat(), lambda k, n: jax.random.normal(k, (n, 6)), None),
    "mlp": (*CASES["mlp"], [("Dense_0",), ("Dense_1",), ("Dense_2",)]),
}


@pytest.mark.parametrize("name", sorted(FACTORED))
def test_dense_layers_from_their_factors_give_the_jacobian_product(name):
    """method='auto' factors exactly the dense layers it can (checked by path) and gives the
    kernel of the direct Jacobian product, traced and full; 'jacobian' gives it too."""
    from jwinit import _dense_ntk

    model, sample, factored = FACTORED[name]
    x1, x2 = sample(jax.random.key(1), 5), sample(jax.random.key(2), 3)
    v = model.init(jax.random.key(0), x1)
    if factored is not None:
        assert sorted(_dense_ntk.dense_layers(model, v, x1[:1], 4, {})) == factored

    def f(p, x):
        return model.apply({**v, "params": p}, x)

    want = direct(f, v["params"], x1, x2)
    scale = np.abs(want).max()
    for method in jwinit.NTK_METHODS:
        full = np.asarray(jwinit.ntk(model, v, x1, x2, trace=False, method=method), np.float64)
        np.testing.assert_allclose(full, want, rtol=0, atol=1e-5 * scale)
        traced = np.asarray(jwinit.ntk(model, v, x1, x2, batch_size=2, method=method))
        np.testing.assert_allclose(traced, np.trace(want, axis1=2, axis2=3) / 4, rtol=0,
                                   atol=1e-5 * scale)


def test_nnx_and_equinox_models():
    x = jax.random.normal(jax.random.key(3), (4, 6))
    net = nnx.Sequential(nnx.Linear(6, 16, rngs=nnx.Rngs(0)), nnx.tanh,
                         nnx.Linear(16, 3, rngs=nnx.Rngs(1)))
    graphdef, params, rest = nnx.split(net, nnx.Param, ...)

    def f_nnx(p, xb):
        return nnx.merge(graphdef, p, rest, copy=True)(xb)

    want = direct(f_nnx, params, x, x)
    got = np.asarray(jwinit.ntk(net, None, x, trace=False), np.float64)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())
    mlp = eqx.nn.MLP(6, 3, 16, 2, key=jax.random.key(4))
    p, static = eqx.partition(mlp, eqx.is_inexact_array)
    want = direct(lambda q, xb: jax.vmap(eqx.combine(q, static))(xb), p, x, x)
    got = np.asarray(jwinit.ntk(mlp, None, x, trace=False), np.float64)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())


def test_bad_inputs_are_named():
    model, sample = CASES["mlp"]
    x = sample(jax.random.key(1), 4)
    v = model.init(jax.random.key(0), x)
    with pytest.raises(ValueError, match="same example shape.*\\(4, 6\\).*\\(4, 7\\)"):
        jwinit.ntk(model, v, x, jnp.ones((4, 7)))

    class Argmax(nn.Module):
        @nn.compact
        def __call__(self, x):
            return jnp.argmax(nn.Dense(3)(x), axis=-1)

    am = Argmax()
    with pytest.raises(TypeError, match="floating array.*int32"):
        jwinit.ntk(am, am.init(jax.random.key(0), x), x)
    ints = {"params": {**v["params"], "count": jnp.zeros((), jnp.int32)}}
    with pytest.raises(TypeError, match="non-floating.*int32"):
        jwinit.ntk(model, ints, x)
    with pytest.raises(ValueError, match="`batch_size`=4.*batch_size=1 fits"):
        jwinit.ntk(model, v, x, batch_size=4, memory_bytes=4 * 4 * 2000, method="jacobian")
    # factored: 4 bytes x (6 + 4 x 32) + (32 + 4 x 32) + (32 + 4 x 4) numbers per example
    per_example = 4 * (6 + 4 * 32 + 32 + 4 * 32 + 32 + 4 * 4)
    with pytest.raises(ValueError, match="`batch_size`=4.*3 dense layers.*batch_size=2 fits"):
        jwinit.ntk(model, v, x, batch_size=4, memory_bytes=2 * per_example)
    with pytest.raises(ValueError, match="`method` must be one of \\('auto', 'jacobian'\\), "
                                         "got 'fast'"):
        jwinit.ntk(model, v, x, method="fast")
    with pytest.raises(ValueError, match="'params' collection"):
        jwinit.ntk(model, v["params"], x)
    with pytest.raises(ValueError, match="must be None"):
        jwinit.ntk(eqx.nn.MLP(6, 3, 16, 2, key=jax.random.key(4)), v, x)


def test_the_program_cache_builds_once_per_key_and_stays_bounded():
    """`jwinit._programs.ProgramCache` (the NTK's factors and the reports' applies): one build per
    hashable key, the oldest dropped past its size, an unhashable key built every time."""
    from jwinit._programs import ProgramCache

    built = []

    def build(name):
        def make():
            built.append(name)
            return lambda: name
        return make

    cache = ProgramCache(2)
    assert cache.get(("a", 1), build("a"))() == "a"
    assert cache.get(("a", 1), build("a again"))() == "a"
    cache.get("b", build("b"))
    cache.get("c", build("c"))          # drops ("a", 1), the oldest
    assert len(cache) == 2
    assert cache.get(("a", 1), build("a rebuilt"))() == "a rebuilt"
    cache.get(["unhashable"], build("u"))
    cache.get(["unhashable"], build("u"))
    assert built == ["a", "b", "c", "a rebuilt", "u", "u"] and len(cache) == 2


def test_the_factors_program_of_a_model_compiles_once_across_initializations():
    """Two initializations of one MLP share the factors program (the first call builds it)."""
    from jwinit import _dense_ntk

    model = jwinit.models.MLP(depth=2, width=16, output_dim=3)
    x = jax.random.normal(jax.random.key(0), (6, 5))
    _dense_ntk._PROGRAMS.clear()
    for seed in (1, 2):
        variables = model.init(jax.random.key(seed), x)
        jwinit.ntk(model, variables, x)
    assert len(_dense_ntk._PROGRAMS) == 1

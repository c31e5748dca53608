"""Registry-driven contract tests: every public initializer x shapes x dtypes.

For each registered scheme: shape, dtype, finiteness, determinism, jit == eager, vmap over keys,
eval_shape, `describe`, and `out_sharding` on 8 simulated devices equal to the unsharded result.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import jwinit
from jwinit import registry

DTYPES = [jnp.float32, jnp.bfloat16, jnp.float16, jnp.complex64]
MATRIX_SHAPES = [(64, 32), (5, 16, 32), (3, 3, 16, 32), (3, 3, 3, 8, 16), (4, 64, 32)]
CONV_SHAPES = [(3, 16, 32), (3, 3, 16, 32), (3, 3, 3, 8, 16)]


def shapes_for(e):
    if e.kind == "conv":
        return CONV_SHAPES
    if e.kind in ("bias", "kernel") and e.min_ndim <= 1:
        return [(32,), *MATRIX_SHAPES]
    return [s for s in MATRIX_SHAPES if len(s) >= e.min_ndim]


def assert_close_ulps(a, b, dtype, ulps=4):
    """Equal up to a few units in the last place (XLA may fuse jit and eager differently)."""
    a, b = np.asarray(a), np.asarray(b)
    eps = float(jnp.finfo(dtype).eps)
    scale = max(float(np.max(np.abs(b))), 1e-30) if b.size else 1.0
    np.testing.assert_allclose(a.astype(np.complex128), b.astype(np.complex128),
                               rtol=ulps * eps, atol=ulps * eps * scale)


def entries():
    return [e for e in registry.entries() if e.kind != "role"]


def ids(e):
    return e.name


@pytest.fixture(scope="module")
def mesh():
    return jax.make_mesh((4, 2), ("a", "b"), axis_types=(AxisType.Explicit,) * 2)


def test_registry_is_complete_and_public():
    for e in registry.entries():
        assert getattr(jwinit, e.name) is e.factory, e.name
        assert e.name in jwinit.__all__, e.name
        for a in e.aliases:
            assert getattr(jwinit, a) is e.factory, a
            assert a in jwinit.__all__, a
        assert e.factory.__doc__ and "Var" in e.factory.__doc__ or e.kind in ("bias", "role"), (
            f"{e.name}: the docstring must state Var(W)")
        assert e.distribution and e.variance and e.paper, e.name


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("e", entries(), ids=ids)
def test_contract(e, dtype):
    init = e.factory(**e.example)
    key = jax.random.key(42)
    for shape in shapes_for(e):
        x = init(key, shape, dtype)
        assert x.shape == shape and x.dtype == dtype, (shape, x.shape, x.dtype)
        assert bool(jnp.all(jnp.isfinite(x))), shape
        y = init(jax.random.key(42), list(shape), dtype)  # deterministic, any sequence
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    shape = shapes_for(e)[-1]
    jitted = jax.jit(init, static_argnums=(1, 2))(key, shape, dtype)
    assert_close_ulps(jitted, init(key, shape, dtype), dtype)
    abstract = jax.eval_shape(lambda k: init(k, shape, dtype), key)
    assert abstract.shape == shape and abstract.dtype == dtype


@pytest.mark.parametrize("e", entries(), ids=ids)
def test_vmap_over_keys_and_raw_keys(e):
    init = e.factory(**e.example)
    shape = shapes_for(e)[1]
    keys = jax.random.split(jax.random.key(1), 3)
    batched = jax.vmap(lambda k: init(k, shape))(keys)
    for i in range(3):
        assert_close_ulps(batched[i], init(keys[i], shape), jnp.float32)
    raw = init(jax.random.PRNGKey(5), shape)
    assert raw.shape == shape


@pytest.mark.parametrize("e", entries(), ids=ids)
def test_random_schemes_depend_on_key(e):
    init = e.factory(**e.example)
    shape = shapes_for(e)[1]
    a = np.asarray(init(jax.random.key(0), shape))
    b = np.asarray(init(jax.random.key(1), shape))
    d = jwinit.describe(init, shape)
    if d.variance and d.distribution not in ("constant",) and not d.extra.get("deterministic"):
        assert not np.array_equal(a, b), "a random scheme must depend on its key"


@pytest.mark.parametrize("e", entries(), ids=ids)
def test_describe_every_initializer(e):
    init = e.factory(**e.example)
    shape = shapes_for(e)[1]
    d = jwinit.describe(init, shape)
    assert d.shape == shape and d.exact
    assert d.variance is not None  # its value against samples: tests/test_describe_samples.py
    head = str(d).splitlines()[0]
    assert head.startswith(f"{e.name}  shape={shape}  dtype=float32"), head
    assert d.name == e.name


@pytest.mark.parametrize("e", entries(), ids=ids)
def test_out_sharding_named_and_pspec(e, mesh):
    init = e.factory(**e.example)
    shape = (3, 3, 16, 32) if e.kind == "conv" else (16, 32)
    spec = P(None, None, "a", "b") if len(shape) == 4 else P("a", "b")
    key = jax.random.key(3)
    ref = np.asarray(init(key, shape))
    sharded = init(key, shape, out_sharding=NamedSharding(mesh, spec))
    assert sharded.sharding.spec == spec
    np.testing.assert_array_equal(np.asarray(sharded), ref)
    jitted = jax.jit(lambda k: init(k, shape, out_sharding=NamedSharding(mesh, spec)))(key)
    assert jitted.sharding.spec == spec
    assert_close_ulps(jitted, ref, jnp.float32)
    with jax.set_mesh(mesh):
        under = init(key, shape, out_sharding=spec)
    assert under.sharding.spec == spec
    np.testing.assert_array_equal(np.asarray(under), ref)


def test_out_sharding_auto_mesh():
    mesh = jax.make_mesh((8,), ("x",), axis_types=(AxisType.Auto,))
    init = jwinit.he_normal()
    key = jax.random.key(0)
    ref = np.asarray(init(key, (64, 16)))
    for fn in (init, jax.jit(init, static_argnums=(1,), static_argnames=("out_sharding",))):
        target = NamedSharding(mesh, P("x", None))
        out = fn(key, (64, 16), out_sharding=target)
        assert out.sharding.is_equivalent_to(target, 2)
        assert_close_ulps(out, ref, jnp.float32)
    with jax.set_mesh(mesh):
        out = jax.jit(lambda k: init(k, (64, 16), out_sharding=P("x")))(key)
    assert_close_ulps(out, ref, jnp.float32)


def test_out_sharding_errors():
    init = jwinit.he_normal()
    with pytest.raises(ValueError, match="no mesh"):
        init(jax.random.key(0), (8, 8), out_sharding=P("x"))
    with pytest.raises(TypeError, match="out_sharding"):
        init(jax.random.key(0), (8, 8), out_sharding="x")


def test_initializer_protocol():
    for e in entries():
        assert isinstance(e.factory(**e.example), jwinit.Initializer)


def test_registry_lookup():
    assert registry.get("kaiming_normal") is jwinit.he_normal
    init = registry.make("variance_scaling", scale=1.0, mode="fan_avg", distribution="uniform")
    assert jwinit.describe(init, (10, 30)).variance == pytest.approx(1 / 20)
    with pytest.raises(ValueError, match=r"unknown initializer 'he_norml'.*he_normal"):
        registry.get("he_norml")

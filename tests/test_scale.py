"""The user's real model at scale: boxed, sharded, mesh-invariant init (linen, nnx, Equinox),
blocked sampling, Newton-Schulz orthogonal, across processes."""

import math

import equinox as eqx
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _processes import run_two_processes
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import jwinit
from jwinit import _blocked

TINY = jwinit.models.DECODER_SIZES["tiny"]
TOKENS = jnp.zeros((2, 8), jnp.int32)
RULES = {r"(out|down)/kernel$": jwinit.normal(0.01), r"kernel$": jwinit.he_normal(),
         r"embedding$": jwinit.truncated_normal(0.02, lower=-3.0, upper=3.0)}


def _mesh(shape):
    return Mesh(np.array(jax.devices()[: math.prod(shape)]).reshape(shape), ("data", "model"))


def _leaves(tree):
    return [np.asarray(a) for a in jax.tree.leaves(tree)]


@pytest.fixture
def small_blocks(monkeypatch):
    """Block sampling for every parameter of the tiny Decoder (normally only large ones)."""
    monkeypatch.setattr(_blocked, "MIN_ELEMENTS", 64)
    monkeypatch.setattr(_blocked, "BLOCK_ELEMENTS", 256)


# ------------------------------------------------------------------------------------------------
# blocked sampling


BLOCKED_INITS = [
    ("he_normal", jwinit.he_normal()), ("glorot_uniform", jwinit.glorot_uniform()),
    ("lecun_normal", jwinit.lecun_normal()), ("normal", jwinit.normal(0.02, mean=0.1)),
    ("truncated_normal", jwinit.truncated_normal(0.02, lower=-3.0, upper=3.0)),
    ("tail", jwinit.truncated_normal(1.0, lower=3.0, upper=5.0)),
    ("uniform", jwinit.uniform(low=-1.0, high=2.0)), ("constant", jwinit.constant(0.5)),
    ("gpt2_residual", jwinit.gpt2_residual(12))]
BLOCKED_SHAPES = [(64, 48), (32, 8, 6)]
BLOCKED_DTYPES = [jnp.float32, jnp.bfloat16]
#: (mesh shape, spec): every layout of the 8 devices over the two axes of a kernel
LAYOUTS = [((1, 8), P(None, "model")), ((2, 4), P("data", "model")),
           ((4, 2), P("model", "data")), ((8, 1), P(("data", "model")))]


_CASES = [(i, s, d) for i in range(len(BLOCKED_INITS)) for s in range(2) for d in range(2)]


@pytest.mark.parametrize("i,s,d", _CASES, ids=[
    f"{BLOCKED_INITS[i][0]}-{'x'.join(map(str, BLOCKED_SHAPES[s]))}-"
    f"{jnp.dtype(BLOCKED_DTYPES[d]).name}" for i, s, d in _CASES])
def test_blocked_and_sharded_draws_equal_the_whole_draw(i, s, d, small_blocks):
    """Every initializer x shape x dtype, blocked, equals the whole draw; and sharded over one
    layout of the mesh, chosen so that every pair (initializer, layout), (shape, layout) and
    (dtype, layout) is tested: layout (i + 2 s + d) mod 4 (each initializer's 4 cases take the
    4 layouts; each (shape, dtype) meets every layout through the 9 initializers)."""
    (name, init), shape, dtype = BLOCKED_INITS[i], BLOCKED_SHAPES[s], BLOCKED_DTYPES[d]
    key = jax.random.key(3)
    assert _blocked.available(init, key, shape, dtype)
    want = np.asarray(jax.jit(lambda k: init(k, shape, dtype))(key), np.float32)
    assert _blocked.block_rows(shape) < shape[0]  # several blocks
    got = jax.jit(lambda k: _blocked.sample(init, k, shape, dtype))(key)
    assert got.dtype == dtype
    np.testing.assert_array_equal(np.asarray(got, np.float32), want)
    mesh_shape, spec = LAYOUTS[(i + 2 * s + d) % len(LAYOUTS)]
    sh = NamedSharding(_mesh(mesh_shape), spec)
    got = jax.jit(lambda k: _blocked.sample(init, k, shape, dtype, sh), out_shardings=sh)(key)
    np.testing.assert_array_equal(np.asarray(got, np.float32), want, err_msg=f"{name} {spec}")


def test_the_blocked_cases_cover_every_pair_with_every_layout():
    seen = {(i, s, d, (i + 2 * s + d) % 4) for i, s, d in _CASES}
    assert {(i, lay) for i, _, _, lay in seen} == {(i, lay) for i in range(9) for lay in range(4)}
    assert {(s, lay) for _, s, _, lay in seen} == {(s, lay) for s in range(2) for lay in range(4)}
    assert {(d, lay) for _, _, d, lay in seen} == {(d, lay) for d in range(2) for lay in range(4)}


def test_a_group_of_parameters_is_drawn_in_one_loop_with_each_ones_values(small_blocks):
    init, shape = jwinit.he_normal(), (64, 48)
    keys = [jax.random.fold_in(jax.random.key(0), i) for i in range(5)]
    want = [np.asarray(jax.jit(lambda k: init(k, shape))(k)) for k in keys]
    sh = NamedSharding(_mesh((2, 4)), P("data", "model"))
    for sharding in (None, sh):
        got = jax.jit(lambda ks, s=sharding: _blocked.sample_group(init, list(ks), shape,
                                                                   jnp.float32, s))(keys)
        assert len(got) == 5
        for a, b in zip(got, want, strict=True):
            np.testing.assert_array_equal(np.asarray(a), b)


def test_only_elementwise_initializers_are_blocked():
    key = jax.random.key(0)
    assert not _blocked.available(jwinit.orthogonal(), key, (64, 64), jnp.float32)
    assert not _blocked.available(jax.nn.initializers.he_normal(), key, (64, 64), jnp.float32)
    assert not _blocked.available(jwinit.he_normal(), key, (64, 64), jnp.complex64)
    assert not _blocked.available(jwinit.he_normal(), jax.random.key(0, impl="rbg"), (64, 64),
                                  jnp.float32)


def test_block_temporaries_are_a_small_fraction_of_the_shard():
    """XLA's own account (memory_analysis) of one 2048 x 8192 kernel on 8 devices: the model's
    default init (flax's route, jit(model.init, out_shardings)) keeps about 3 shards of random
    state per device; jwinit's blocked draw at most a quarter of one."""

    class Wide(nn.Module):
        @nn.compact
        def __call__(self, x):
            init = nn.with_partitioning(nn.initializers.lecun_normal(), (None, "model"))
            return nn.Dense(8192, use_bias=False, kernel_init=init)(x)

    model, x = Wide(), jax.ShapeDtypeStruct((1, 2048), jnp.float32)
    mesh = Mesh(np.array(jax.devices()), ("model",))
    shard = 2048 * 8192 * 4 // 8
    abstract = jax.eval_shape(lambda k: model.init(k, jnp.zeros(x.shape)), jax.random.key(0))
    shardings = jax.tree.map(lambda s: NamedSharding(mesh, s), nn.get_partition_spec(abstract))
    flax_route = jax.jit(lambda k: model.init(k, jnp.zeros(x.shape)), out_shardings=shardings)
    ours = jax.jit(lambda k: jwinit.init_params(model, k, x, {"kernel": jwinit.lecun_normal()},
                                                mesh=mesh))
    theirs = flax_route.lower(jax.random.key(0)).compile().memory_analysis()
    mine = ours.lower(jax.random.key(0)).compile().memory_analysis()
    assert theirs.temp_size_in_bytes >= 2 * shard
    assert mine.temp_size_in_bytes <= 0.25 * shard
    assert mine.output_size_in_bytes == shard


# ------------------------------------------------------------------------------------------------
# linen: boxes, shardings, mesh invariance


class _Boxed(nn.Module):
    @nn.compact
    def __call__(self, x):
        h = nn.Dense(32, kernel_init=nn.with_partitioning(nn.initializers.lecun_normal(),
                                                          (None, "model")),
                     bias_init=nn.with_partitioning(nn.initializers.zeros, ("model",)))(x)
        h = nn.Dense(16, kernel_init=nn.with_logical_partitioning(
            nn.initializers.lecun_normal(), ("mlp", "embed")))(h)
        return nn.Dense(4, name="head")(h)  # unannotated


def test_boxed_linen_models_keep_their_boxes_eagerly_and_under_jit():
    model, x = _Boxed(), jnp.ones((2, 8))
    rules = {r"kernel$": jwinit.orthogonal(), r"bias$": jwinit.constant(0.1)}
    ref = model.init(jax.random.key(0), x)
    for v in (jwinit.init_params(model, jax.random.key(0), x, rules),
              jax.jit(lambda k: jwinit.init_params(model, k, x, rules))(jax.random.key(0))):
        assert jax.tree.structure(v) == jax.tree.structure(ref)  # same boxes, same names
        assert isinstance(v["params"]["Dense_0"]["kernel"], nn.Partitioned)
        assert v["params"]["Dense_1"]["kernel"].names == ("mlp", "embed")
        k = v["params"]["Dense_0"]["kernel"].value  # (8, 32): orthonormal rows
        np.testing.assert_allclose(k @ k.T, np.eye(8), atol=2e-6)
        np.testing.assert_array_equal(v["params"]["Dense_0"]["bias"].value, np.full(32, 0.1,
                                                                                  np.float32))
        assert model.apply(v, x).shape == (2, 4)


def test_each_annotation_kind_is_sharded_and_the_rest_replicated():
    mesh = _mesh((2, 4))
    v = jwinit.init_params(_Boxed(), jax.random.key(0), jnp.ones((2, 8)),
                           {r"kernel$": jwinit.he_normal()}, mesh=mesh,
                           axis_rules=[("mlp", "model"), ("embed", "data")])
    p = v["params"]
    assert p["Dense_0"]["kernel"].value.sharding.spec == P(None, "model")
    assert p["Dense_0"]["bias"].value.sharding.spec == P("model")
    assert p["Dense_1"]["kernel"].value.sharding.spec == P("model", "data")
    assert p["head"]["kernel"].sharding.spec == P()
    shard = p["Dense_1"]["kernel"].value.addressable_shards[0].data
    assert shard.shape == (32 // 4, 16 // 2)  # no device holds the whole parameter


@pytest.mark.parametrize("blocked", [False, True])
def test_decoder_values_are_the_same_on_every_mesh(blocked, monkeypatch):
    if blocked:
        monkeypatch.setattr(_blocked, "MIN_ELEMENTS", 64)
        monkeypatch.setattr(_blocked, "BLOCK_ELEMENTS", 256)
    model = jwinit.models.Decoder(**TINY)
    ref = jwinit.init_params(model, jax.random.key(1), TOKENS, RULES)
    want = _leaves(ref)
    assert len(want) == 2 + 9 * TINY["layers"] + 1
    rules_1d = [(name, "x") for name, _ in jwinit.models.AXIS_RULES]
    for shape in [(1,), (8,), (2, 4), (4, 2)]:
        if len(shape) == 1:
            mesh, axis_rules = Mesh(np.array(jax.devices()[: shape[0]]), ("x",)), rules_1d
        else:
            mesh, axis_rules = _mesh(shape), jwinit.models.AXIS_RULES
        v = jwinit.init_params(model, jax.random.key(1), TOKENS, RULES, mesh=mesh,
                               axis_rules=axis_rules)
        for a, b in zip(_leaves(v), want, strict=True):
            np.testing.assert_array_equal(a, b, err_msg=str(shape))
        gate = v["params"]["layer_0"]["gate"]["kernel"].value
        assert gate.sharding.mesh.shape == mesh.shape
        n = mesh.devices.size
        assert gate.addressable_shards[0].data.size == gate.size // n


def test_decoder_roles_have_their_rules_statistics():
    model = jwinit.models.Decoder(**TINY)
    v = jwinit.init_params(model, jax.random.key(2), TOKENS, RULES)["params"]
    gate = np.asarray(v["layer_0"]["gate"]["kernel"].value, np.float64)  # He: 2 / fan_in
    want = 2 / TINY["dim"]
    assert abs(gate.var() - want) < 4 * want * math.sqrt(2 / gate.size)
    down = np.asarray(v["layer_1"]["down"]["kernel"].value, np.float64)
    assert abs(down.std() - 0.01) < 4 * 0.01 / math.sqrt(2 * down.size)
    emb = np.asarray(v["embed"]["embedding"].value)
    assert np.abs(emb).max() <= 3 * 0.02
    scale = np.asarray(v["final_norm"]["scale"].value)
    np.testing.assert_array_equal(scale, np.ones(TINY["dim"], np.float32))  # the model's own


def test_the_model_default_init_of_matched_parameters_is_never_run():
    """The default initializers of matched parameters are traced and dropped: a Python counter
    in a default initializer that fails on concrete keys never fires."""
    calls = []

    def loud(key, shape, dtype=jnp.float32):
        calls.append(isinstance(key, jax.core.Tracer))
        return jnp.zeros(shape, dtype)

    class M(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(4, kernel_init=loud)(x)

    jwinit.init_params(M(), jax.random.key(0), jnp.ones((1, 3)), {r"kernel$": jwinit.he_normal()})
    assert calls and all(calls)  # only ever traced


# ------------------------------------------------------------------------------------------------
# nnx


_LECUN = nnx.initializers.lecun_normal()


class _NNX(nnx.Module):
    def __init__(self, rngs, kernel_init=_LECUN):
        ki = nnx.with_partitioning(kernel_init, ("embed", "mlp"))
        self.up = nnx.Linear(16, 32, kernel_init=ki, rngs=rngs)
        self.down = nnx.Linear(32, 16, kernel_init=nnx.with_partitioning(
            nnx.initializers.lecun_normal(), ("mlp", "embed")), rngs=rngs)
        self.head = nnx.Linear(16, 3, rngs=rngs)

    def __call__(self, x):
        return self.head(self.down(nnx.relu(self.up(x))))


def test_an_nnx_constructor_is_built_abstractly_and_sharded():
    calls = []

    def loud(key, shape, dtype=jnp.float32):
        calls.append(isinstance(key, jax.core.Tracer))
        return jnp.zeros(shape, dtype)

    rules = {r"(up|down)/kernel$": jwinit.he_normal(), r"bias$": jwinit.constant(0.5)}
    ref = jwinit.init_params(lambda rngs: _NNX(rngs, loud), jax.random.key(0), None, rules)
    assert calls and all(calls)  # the defaults never ran on a concrete key
    assert isinstance(ref, _NNX)
    assert ref(jnp.ones((2, 16))).shape == (2, 3)
    np.testing.assert_array_equal(np.asarray(ref.up.bias[...]), np.full(32, 0.5, np.float32))
    mesh = _mesh((2, 4))
    m = jwinit.init_params(lambda rngs: _NNX(rngs, loud), jax.random.key(0), None, rules,
                           mesh=mesh, axis_rules=[("embed", "data"), ("mlp", "model")])
    assert m.up.kernel[...].sharding.spec == P("data", "model")
    assert m.down.kernel[...].sharding.spec == P("model", "data")
    assert m.head.kernel[...].sharding.spec == P()
    for a, b in zip(_leaves(nnx.state(m)), _leaves(nnx.state(ref)), strict=True):
        np.testing.assert_array_equal(a, b)


def test_an_existing_nnx_module_still_works():
    with nnx.use_eager_sharding(False):
        m = _NNX(nnx.Rngs(0))
    before = np.asarray(m.head.kernel[...])
    out = jwinit.init_params(m, jax.random.key(0), None, {r"up/kernel$": jwinit.zeros()})
    assert out is m
    assert not np.any(np.asarray(m.up.kernel[...]))
    np.testing.assert_array_equal(np.asarray(m.head.kernel[...]), before)


# ------------------------------------------------------------------------------------------------
# Equinox


def test_equinox_layout_paths_and_fans():
    mlp = eqx.nn.MLP(64, 8, width_size=256, depth=1, key=jax.random.key(0))
    assert jwinit.param_paths(mlp) == ["layers/0/bias", "layers/0/weight", "layers/1/bias",
                                       "layers/1/weight"]
    out = jwinit.init_params(mlp, jax.random.key(1), None,
                             {r"layers/0/weight$": jwinit.he_normal(), r"bias$": jwinit.zeros()})
    assert isinstance(out, eqx.nn.MLP)
    w = np.asarray(out.layers[0].weight, np.float64)
    assert w.shape == (256, 64)  # Equinox's (out, in)
    want = 2 / 64  # fan_in = 64, not 256
    assert abs(w.var() - want) < 4 * want * math.sqrt(2 / w.size)
    assert not np.any(np.asarray(out.layers[1].bias))
    np.testing.assert_array_equal(out.layers[1].weight, mlp.layers[1].weight)  # unmatched kept
    # the draw is jwinit's (in, out) layout transposed: the same values as in Flax
    k = jwinit.rules.path_key(jax.random.key(1), "layers/0/weight")
    flax_layout = jax.jit(lambda k: jwinit.he_normal()(k, (64, 256)))(k)
    np.testing.assert_array_equal(np.asarray(out.layers[0].weight), np.asarray(flax_layout).T)


def test_equinox_conv_weights_use_the_receptive_field():
    conv = eqx.nn.Conv2d(8, 16, 3, key=jax.random.key(0))
    out = jwinit.init_params(conv, jax.random.key(1), None, {r"weight$": jwinit.he_uniform()})
    w = np.asarray(out.weight)
    assert w.shape == (16, 8, 3, 3)
    bound = math.sqrt(6 / (8 * 9))  # fan_in = in * window
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound


# ------------------------------------------------------------------------------------------------
# orthogonal at scale


@pytest.mark.parametrize("shape", [(64, 64), (256, 128), (96, 200)])
def test_newton_schulz_is_orthogonal_to_float32_precision(shape):
    w = jax.jit(lambda k: jwinit.orthogonal(method="newton_schulz")(k, shape))(jax.random.key(1))
    s = np.linalg.svd(np.asarray(w, np.float64), compute_uv=False)
    np.testing.assert_allclose(s, 1.0, atol=1e-5)


def test_newton_schulz_in_bfloat16_to_its_precision():
    init = jwinit.orthogonal(2.0, method="newton_schulz")
    w = jax.jit(lambda k: init(k, (128, 128), jnp.bfloat16))(jax.random.key(1))
    assert w.dtype == jnp.bfloat16
    s = np.linalg.svd(np.asarray(w, np.float64), compute_uv=False)
    eps = float(jnp.finfo(jnp.bfloat16).eps)  # 2^-7
    np.testing.assert_allclose(s, 2.0, atol=2.0 * eps)


def test_newton_schulz_is_haar():
    """For Haar Q in O(n): E tr Q = 0 and E (tr Q)^2 = 1; 4000 draws, 4 standard errors."""
    init = jwinit.orthogonal(method="newton_schulz")
    keys = jax.random.split(jax.random.key(0), 4000)
    tr = np.asarray(jax.jit(jax.vmap(lambda k: jnp.trace(init(k, (16, 16)))))(keys), np.float64)
    se = tr.std() / math.sqrt(tr.size)
    assert abs(tr.mean()) < 4 * se
    sq = tr ** 2
    assert abs(sq.mean() - 1.0) < 4 * sq.std() / math.sqrt(sq.size)


@pytest.mark.parametrize("method", ["qr", "newton_schulz"])
def test_sharded_orthogonal_equals_the_unsharded_draw(method):
    """QR: bit for bit. Newton-Schulz: its matmuls are partitioned like the output, so their
    sums run in another order: equal to float32 rounding (1e-6), not bit for bit."""
    init = jwinit.orthogonal(method=method)
    sh = NamedSharding(_mesh((2, 4)), P("data", "model"))
    want = jax.jit(lambda k: init(k, (128, 64)))(jax.random.key(4))
    got = jax.jit(lambda k: init(k, (128, 64), jnp.float32, sh))(jax.random.key(4))
    assert got.sharding.spec == P("data", "model")
    if method == "qr":
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    else:
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-6)


def test_bad_orthogonal_arguments():
    with pytest.raises(ValueError, match="`method`.*newton_schulz"):
        jwinit.orthogonal(method="svd")
    with pytest.raises(ValueError, match="`tol`"):
        jwinit.orthogonal(method="newton_schulz", tol=-1.0)


# ------------------------------------------------------------------------------------------------
# bad input


def test_bad_meshes_and_rules_fail_early_with_clear_messages():
    model = jwinit.models.Decoder(**TINY)
    rules = {r"kernel$": jwinit.he_normal()}
    with pytest.raises(ValueError, match="`axis_rules`.*'tensor'.*lacks.*'data', 'model'"):
        jwinit.init_params(model, 0, TOKENS, rules, mesh=_mesh((2, 4)),
                           axis_rules=[("embed", "tensor")])
    with pytest.raises(ValueError, match="logical axis name 'vocab'.*no rule"):
        jwinit.init_params(model, 0, TOKENS, rules, mesh=_mesh((2, 4)),
                           axis_rules=[("embed", "data")])
    odd = jwinit.models.Decoder(vocab_size=250, dim=64, layers=1, heads=4, mlp_dim=128)
    with pytest.raises(ValueError, match=r"embed/embedding.*\(250, 64\).*dimension 0.*'model'"):
        jwinit.init_params(odd, 0, TOKENS, rules, mesh=_mesh((2, 4)),
                           axis_rules=jwinit.models.AXIS_RULES)
    with pytest.raises(ValueError, match="`variables` must be None for an nnx constructor"):
        jwinit.init_params(lambda rngs: _NNX(rngs), 0, None, rules, variables={"params": {}})
    mlp = eqx.nn.MLP(4, 2, width_size=8, depth=1, key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"'kernel\$' matches no parameter.*layers/0/weight"):
        jwinit.init_params(mlp, 0, None, rules)
    with pytest.raises(TypeError, match="`mesh`"):
        jwinit.init_params(model, 0, TOKENS, rules, mesh="cpu")
    with pytest.raises(TypeError, match="returned int32 values"):
        jwinit.init_params(model, 0, TOKENS, {r"kernel$": lambda k, s, d=jnp.float32:
                                              jax.random.randint(k, s, 0, 3)})


def test_a_model_without_annotations_is_replicated_on_a_mesh():
    model = jwinit.models.MLP(depth=2, width=16, output_dim=3)
    x = jnp.ones((2, 8))
    v = jwinit.init_params(model, 0, x, {r"kernel$": jwinit.he_normal()}, mesh=_mesh((2, 4)))
    leaf = v["params"]["Dense_0"]["kernel"]
    assert leaf.sharding.spec == P() and leaf.sharding.mesh.devices.size == 8
    ref = jwinit.init_params(model, 0, x, {r"kernel$": jwinit.he_normal()})
    for a, b in zip(_leaves(v), _leaves(ref), strict=True):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------------------------------------
# across processes


_WORKER = """
import sys
import jax
pid, port, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2,
                           process_id=pid)
import numpy as np, jax.numpy as jnp, jwinit
from jwinit import _blocked
from jax.sharding import Mesh

_blocked.MIN_ELEMENTS, _blocked.BLOCK_ELEMENTS = 64, 256
assert jax.process_count() == 2 and len(jax.devices()) == 8 and len(jax.local_devices()) == 4
mesh = Mesh(np.array(jax.devices()).reshape(2, 4), ("data", "model"))
model = jwinit.models.Decoder(**jwinit.models.DECODER_SIZES["tiny"])
rules = {r"(out|down)/kernel$": jwinit.normal(0.01), r"kernel$": jwinit.he_normal(),
         r"embedding$": jwinit.truncated_normal(0.02, lower=-3.0, upper=3.0)}
v = jwinit.init_params(model, jax.random.key(1), jax.ShapeDtypeStruct((2, 8), jnp.int32), rules,
                       mesh=mesh, axis_rules=jwinit.models.AXIS_RULES)
arrays = {}
for i, leaf in enumerate(jax.tree.leaves(v)):
    assert all(s.device.process_index == pid for s in leaf.addressable_shards)
    for j, s in enumerate(leaf.addressable_shards):
        idx = [(sl.start or 0, sl.stop if sl.stop is not None else n)
               for sl, n in zip(s.index, leaf.shape)]
        arrays[f"{i}_{j}_data"] = np.asarray(s.data)
        arrays[f"{i}_{j}_index"] = np.asarray(idx, np.int64).reshape(-1, 2)
np.savez(f"{out}.{pid}.npz", **arrays)
jax.distributed.shutdown()
"""


def test_two_processes_hold_only_their_shards_with_the_single_process_values(tmp_path):
    out = tmp_path / "shards"
    run_two_processes(_WORKER, out, devices=4)
    want = _leaves(jwinit.init_params(jwinit.models.Decoder(**TINY), jax.random.key(1), TOKENS,
                                      RULES))
    covered = [np.zeros(w.shape, bool) for w in want]
    for pid in range(2):
        with np.load(f"{out}.{pid}.npz") as f:
            for name in f.files:
                if not name.endswith("_data"):
                    continue
                i = int(name.split("_")[0])
                idx = tuple(slice(a, b) for a, b in f[name.replace("_data", "_index")])
                np.testing.assert_array_equal(f[name], want[i][idx])
                covered[i][idx] = True
    assert all(c.all() for c in covered)

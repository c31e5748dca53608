"""Structured initializers, each tested on the property it exists for.

orthogonal: W^T W = scale^2 I (and Haar: unbiased entries); delta_orthogonal: a SAME convolution
is an isometry; identity/dirac: the layer is the identity map; sparse: the exact number of zeros
per column; ZerO: deterministic and full rank. Every scheme under jit, in every dtype, and with
`out_sharding` on the 8 simulated devices.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import jwinit
from jwinit.structured import _hadamard_sum

DTYPES = [jnp.float32, jnp.bfloat16, jnp.float16, jnp.complex64]
HALF = [jnp.bfloat16, jnp.float16]
SHARDED = [jnp.float32, jnp.bfloat16]
EPS32 = float(jnp.finfo(jnp.float32).eps)


def gaussian(seed, shape):
    """Test inputs from NumPy (no compilation)."""
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


def jdraw(init, shape, dtype=jnp.float32, seed=0):
    """One draw as one compiled program (keeps the number of compilations, the cost here, low)."""
    return jax.jit(init, static_argnums=(1, 2))(jax.random.key(seed), shape, dtype)


def as_matrix(w, column_axis=-1):
    """The (rows, cols) matrix an orthogonal init factors, in float64/complex128."""
    w = np.asarray(w)
    w = w.astype(np.complex128 if np.iscomplexobj(w) else np.float64)
    w = np.moveaxis(w, column_axis, -1)
    return w.reshape(-1, w.shape[-1])


def gram_error(w, scale, column_axis=-1):
    """max |G - scale^2 I| / scale^2, G = W^H W (rows >= cols) or W W^H (rows < cols)."""
    m = as_matrix(w, column_axis)
    g = m.conj().T @ m if m.shape[0] >= m.shape[1] else m @ m.conj().T
    return float(np.max(np.abs(g - scale**2 * np.eye(len(g))))) / scale**2


def f32_tolerance(n):
    # Householder QR is orthogonal to a few eps * sqrt(n) in practice (backward-stable: c n eps
    # worst case); 32 eps sqrt(n) is 30x above what we observe and 1000x below a wrong answer.
    return 32 * EPS32 * math.sqrt(n)


def cast_tolerance(dtype, n):
    # Rounding each entry to `dtype` (relative error <= eps/2) changes every entry of W^T W by at
    # most (eps + eps^2/4) sum|w_i v_i| <= (eps + eps^2/4) scale^2 (Cauchy-Schwarz), on top of the
    # float32 error of the factorization.
    eps = float(jnp.finfo(dtype).eps)
    return eps + eps * eps / 4 + f32_tolerance(n)


# --------------------------------------------------------------------------------------------
# orthogonal


@pytest.mark.parametrize("shape,column_axis,scale", [
    ((64, 32), -1, 1.0), ((32, 64), -1, 1.7), ((5, 16, 32), 0, 1.0), ((3, 3, 3, 8, 16), -1, 0.5),
])
def test_orthogonal_equals_jax_float32(shape, column_axis, scale):
    key = jax.random.key(7)
    ours = jwinit.orthogonal(scale, column_axis)(key, shape, jnp.float32)
    ref = jax.nn.initializers.orthogonal(scale, column_axis)(key, shape, jnp.float32)
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(ref))


@pytest.mark.parametrize("shape", [(3, 16, 32), (5, 5, 16, 16), (3, 3, 3, 8, 16)])
def test_delta_orthogonal_equals_jax_float32(shape):
    key = jax.random.key(8)
    ours = jwinit.delta_orthogonal(2.0)(key, shape, jnp.float32)
    ref = jax.nn.initializers.delta_orthogonal(2.0)(key, shape, jnp.float32)
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(ref))


@pytest.mark.parametrize("shape,column_axis",
                         [((128, 32), -1), ((24, 64), 0), ((3, 3, 16, 32), -1)])
def test_orthogonal_gram_is_scaled_identity_under_jit(shape, column_axis):
    scale = 1.5
    init = jwinit.orthogonal(scale, column_axis)
    out = jax.jit(lambda k: [init(k, shape, dt) for dt in DTYPES])(jax.random.key(0))
    for dtype, w in zip(DTYPES, out, strict=True):
        assert w.shape == shape and w.dtype == dtype
        n = max(as_matrix(w, column_axis).shape)
        full = dtype in (jnp.float32, jnp.complex64)
        tol = f32_tolerance(n) if full else cast_tolerance(dtype, n)
        err = gram_error(w, scale, column_axis)
        assert err <= tol, (dtype, err, tol)


def test_orthogonal_orthogonality_figures():
    """Documented figures: max |W^T W - I| for a 256 x 256 draw, float32 and after bf16 cast."""
    key = jax.random.key(1)
    e32 = gram_error(jwinit.orthogonal()(key, (256, 256), jnp.float32), 1.0)
    e16 = gram_error(jwinit.orthogonal()(key, (256, 256), jnp.bfloat16), 1.0)
    assert e32 < f32_tolerance(256)  # observed ~ 6e-7
    assert e16 < cast_tolerance(jnp.bfloat16, 256)  # observed ~ 1e-3 (bf16 eps = 7.8e-3)


def test_orthogonal_is_haar():
    """Sign-corrected QR: entries are unbiased with E[W_ij^2] = 1/n (plain QR biases the diagonal
    towards one sign). Over 4000 draws of 8 x 8 matrices the diagonal mean has standard error
    sqrt(1 / (8 * 8 * 4000)) = 0.002; 6 standard errors."""
    n, draws = 8, 4000
    keys = jax.random.split(jax.random.key(3), draws)
    ws = jax.jit(jax.vmap(lambda k: jwinit.orthogonal()(k, (n, n))))(keys)
    diag = np.asarray(jnp.diagonal(ws, axis1=1, axis2=2)).ravel()
    se = math.sqrt(1 / (n * diag.size))
    assert abs(diag.mean()) < 6 * se
    # E[W_ij^2] = 1/n; Var(W_ij^2) <= E[W^4] = 3 / (n (n + 2)) for Haar entries.
    sq = np.asarray(ws).ravel() ** 2
    assert abs(sq.mean() - 1 / n) < 6 * math.sqrt(3 / (n * (n + 2)) / sq.size)


def test_orthogonal_batch_axis_gives_independent_orthogonal_copies():
    w = jwinit.orthogonal(batch_axis=0)(jax.random.key(0), (6, 32, 32))
    for i in range(6):
        assert gram_error(w[i], 1.0) < f32_tolerance(32)
    assert not np.allclose(np.asarray(w[0]), np.asarray(w[1]))
    # batch in the middle: (in, layers, out) with layers as the batch axis
    w2 = jwinit.orthogonal(batch_axis=1)(jax.random.key(0), (32, 4, 16))
    for i in range(4):
        assert gram_error(w2[:, i, :], 1.0) < f32_tolerance(32)


def test_orthogonal_describe_is_exact_per_draw():
    shape = (3, 3, 16, 32)  # rows 144, cols 32
    init = jwinit.orthogonal(2.0)
    d = jwinit.describe(init, shape)
    assert d.variance == pytest.approx(4.0 / 144)
    w = np.asarray(init(jax.random.key(0), shape), np.float64)
    # The squared entries of every draw sum to scale^2 * min(rows, cols).
    assert np.mean(w**2) == pytest.approx(d.variance, rel=10 * EPS32)
    assert d.bounds == (-2.0, 2.0) and np.max(np.abs(w)) <= 2.0
    assert jwinit.describe(jwinit.orthogonal(batch_axis=0), (4, 64, 32)).extra["copies"] == 4


def test_orthogonal_empty_shape():
    w = jwinit.orthogonal()(jax.random.key(0), (0, 4))
    assert w.shape == (0, 4)


def test_stacked_factorizations_equal_the_batched_ones_under_vmap():
    """`jwinit._linalg` factorizes a stack one matrix at a time on CPU, also under (nested) vmap:
    the values of jnp.linalg's batched call, to float32 rounding (LAPACK on one matrix or a
    batch runs the same Householder steps)."""
    from jwinit._linalg import qr, singular_values

    z = gaussian(0, (2, 3, 12, 8))
    q, r = jax.jit(jax.vmap(jax.vmap(qr)))(z)
    q0, r0 = jnp.linalg.qr(z)
    np.testing.assert_allclose(q, q0, atol=8 * EPS32)
    np.testing.assert_allclose(r, r0, atol=8 * EPS32 * 12)
    s = jax.jit(jax.vmap(singular_values))(z)
    np.testing.assert_allclose(s, jnp.linalg.svd(z, compute_uv=False), rtol=8 * EPS32 * 12)
    assert jax.vmap(singular_values)(z).shape == (2, 3, 8)


_VMAPPED_QR_WORKER = """
import os
os.sched_setaffinity(0, range(os.cpu_count()))  # every core: XLA's pool has a thread per core
import jax, jax.numpy as jnp, jwinit
model = jwinit.models.MLP(depth=20, width=128, output_dim=10)
init = jax.vmap(lambda k: jwinit.init_params(model, k, jnp.zeros((4, 64)),
                                             {"kernel": jwinit.orthogonal()}))
params = jax.jit(init)(jax.random.split(jax.random.key(0), 8))
w = params["params"]["Dense_7"]["kernel"][3]
print(float(jnp.max(jnp.abs(w.T @ w - jnp.eye(128)))))
"""


def test_vmapped_orthogonal_inits_finish_on_one_unpinned_cpu_device():
    """An orthogonal init of a 20-layer MLP vmapped over 8 seeds is 20 independent batched QRs
    in one program. With jnp.linalg.qr that program hangs forever on a 2-core machine (jax
    0.10.2: XLA:CPU runs two QRs at once, each splits its batch over the 2-thread pool and
    blocks its thread waiting for the pieces); `jwinit.train` on orthogonal inits and
    ``jwinit run --config=lsuv2016`` hung there. The test runs it in a fresh process on every
    core (the suite's workers are pinned to one, where the kernel runs inline) under a time
    limit: a deadlock fails the test instead of hanging the suite."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="")
    try:
        out = subprocess.run([sys.executable, "-c", _VMAPPED_QR_WORKER], env=env,
                             capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("20 vmapped orthogonal inits in one program did not finish in 120 s")
    assert out.returncode == 0, out.stderr[-2000:]
    assert float(out.stdout.strip().splitlines()[-1]) < f32_tolerance(128)


# --------------------------------------------------------------------------------------------
# delta orthogonal: a SAME convolution is an isometry

_DN = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC"), 3: ("NDHWC", "DHWIO", "NDHWC")}


def conv_same(x, w):
    nd = w.ndim - 2
    return jax.lax.conv_general_dilated(
        x, w, (1,) * nd, "SAME", dimension_numbers=_DN[nd],
        precision=jax.lax.Precision.HIGHEST)


@pytest.mark.parametrize("kernel", [(5, 16, 32), (4, 4, 16, 16), (3, 3, 3, 8, 8)])
def test_delta_orthogonal_same_conv_preserves_norm(kernel):
    scale = 1.3
    nd = len(kernel) - 2
    x = gaussian(1, (2, *(9,) * nd, kernel[-2]))
    y = jax.jit(lambda k, x: conv_same(x, jwinit.delta_orthogonal(scale)(k, kernel)))(
        jax.random.key(0), x)
    # The output at every pixel is scale * x Q with Q having orthonormal rows (in <= out).
    nx = np.linalg.norm(np.asarray(x).reshape(-1, kernel[-2]), axis=-1)
    ny = np.linalg.norm(np.asarray(y).reshape(-1, kernel[-1]), axis=-1)
    np.testing.assert_allclose(ny, scale * nx, rtol=f32_tolerance(kernel[-1]))


@pytest.mark.parametrize("dtype", HALF, ids=lambda d: jnp.dtype(d).name)
def test_delta_orthogonal_half_precision(dtype):
    w = jwinit.delta_orthogonal()(jax.random.key(0), (3, 3, 64, 64), dtype)
    assert w.dtype == dtype
    assert gram_error(w[1, 1], 1.0) <= cast_tolerance(dtype, 64)
    assert np.count_nonzero(np.asarray(w, np.float32)) == np.count_nonzero(np.asarray(w[1, 1],
                                                                                      np.float32))


def test_delta_orthogonal_describe():
    d = jwinit.describe(jwinit.delta_orthogonal(2.0), (3, 3, 16, 32))
    w = np.asarray(jwinit.delta_orthogonal(2.0)(jax.random.key(0), (3, 3, 16, 32)), np.float64)
    assert d.variance == pytest.approx(4.0 * 16 / (9 * 16 * 32))
    assert np.mean(w**2) == pytest.approx(d.variance, rel=10 * EPS32)


# --------------------------------------------------------------------------------------------
# identity / eye / dirac


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("shape", [(8, 12), (3, 7, 5)])
def test_identity_exact(shape, dtype):
    w = jax.jit(jwinit.identity(0.5), static_argnums=(1, 2))(jax.random.key(0), shape, dtype)
    ref = np.broadcast_to(0.5 * np.eye(shape[-2], shape[-1]), shape)
    np.testing.assert_array_equal(np.asarray(w).astype(np.complex128), ref)
    assert jwinit.eye is jwinit.identity


def test_identity_dense_passes_features_through():
    x = gaussian(0, (4, 6))
    w = jwinit.identity()(jax.random.key(1), (6, 10))
    y = np.asarray(x @ w)
    np.testing.assert_array_equal(y[:, :6], np.asarray(x))
    np.testing.assert_array_equal(y[:, 6:], 0)
    d = jwinit.describe(jwinit.identity(), (6, 10))
    assert d.mean == pytest.approx(6 / 60) and d.variance == pytest.approx(6 / 60 - 0.01)
    assert d.extra["deterministic"]


def dirac_reference_torch_layout(shape, groups, centre):
    """torch.nn.init.dirac_ semantics, written as loops on an (out, in, *k) weight."""
    w = np.zeros(shape)
    out_g = shape[0] // groups
    for g in range(groups):
        for d in range(min(out_g, shape[1])):
            c = tuple(k // 2 if centre == "torch" else (k - 1) // 2 for k in shape[2:])
            w[(g * out_g + d, d, *c)] = 1
    return w


@pytest.mark.parametrize("torch_shape,groups,centre", [
    ((16, 16, 3), 1, "torch"), ((8, 16, 3, 3), 1, "torch"), ((32, 8, 3, 3), 2, "torch"),
    ((12, 3, 5, 3, 3), 3, "same"), ((6, 6, 4, 4), 1, "torch"), ((6, 6, 4, 4), 1, "same"),
])
def test_dirac_matches_pytorch_semantics(torch_shape, groups, centre):
    ref = dirac_reference_torch_layout(torch_shape, groups, centre)
    w_t = jdraw(jwinit.dirac(groups, layout="torch", centre=centre), torch_shape)
    np.testing.assert_array_equal(np.asarray(w_t), ref)
    flax_shape = (*torch_shape[2:], torch_shape[1], torch_shape[0])
    w_f = jdraw(jwinit.dirac(groups, centre=centre), flax_shape)
    perm = (*range(2, len(torch_shape)), 1, 0)
    np.testing.assert_array_equal(np.asarray(w_f), ref.transpose(perm))


@pytest.mark.parametrize("kernel,centre", [((5, 8, 8), "torch"), ((4, 4, 8, 8), "same"),
                                           ((3, 3, 3, 4, 4), "torch")])
def test_dirac_conv_is_identity(kernel, centre):
    nd = len(kernel) - 2
    x = gaussian(1, (2, *(7,) * nd, kernel[-2]))
    y = jax.jit(lambda k, x: conv_same(x, jwinit.dirac(centre=centre)(k, kernel)))(
        jax.random.key(0), x)
    np.testing.assert_array_equal(np.asarray(y), np.asarray(x))


def test_dirac_grouped_conv_is_identity():
    groups, c = 4, 8
    w = jwinit.dirac(groups)(jax.random.key(0), (3, 3, c // groups, c))
    x = gaussian(1, (2, 6, 6, c))
    y = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=_DN[2],
                                     feature_group_count=groups)
    np.testing.assert_array_equal(np.asarray(y), np.asarray(x))


# --------------------------------------------------------------------------------------------
# sparse


@pytest.mark.parametrize("shape,sparsity", [((100, 40), 0.9), ((3, 3, 16, 8), 0.5),
                                            ((10, 5), 0.0), ((10, 5), 1.0), ((7, 3), 0.33)])
def test_sparse_exact_zeros_per_column(shape, sparsity):
    w = jax.jit(jwinit.sparse(sparsity, 0.1), static_argnums=(1,))(jax.random.key(0), shape)
    rows = math.prod(shape[:-1])
    zeros = (np.asarray(w).reshape(rows, shape[-1]) == 0).sum(axis=0)
    expect = math.ceil(sparsity * rows)
    np.testing.assert_array_equal(zeros, expect)
    assert jwinit.describe(jwinit.sparse(sparsity, 0.1), shape).extra["zeros_per_column"] == expect


def test_sparse_nonzeros_are_normal_and_positions_random():
    stddev, shape = 0.05, (400, 300)
    w = np.asarray(jwinit.sparse(0.75, stddev)(jax.random.key(1), shape), np.float64)
    nz = w[w != 0]
    # Sample variance of n normals: relative standard error sqrt(2 / n); 6 of them.
    assert abs(nz.var() / stddev**2 - 1) < 6 * math.sqrt(2 / nz.size)
    d = jwinit.describe(jwinit.sparse(0.75, stddev), shape)
    assert abs(np.mean(w**2) / d.variance - 1) < 6 * math.sqrt(2 / nz.size)
    # Which rows are zero differs between columns (a random subset per column).
    mask = w == 0
    assert len({mask[:, j].tobytes() for j in range(shape[1])}) == shape[1]
    # Every row is hit about equally often: count per row ~ Binomial(300, 0.75), sd 7.5.
    per_row = mask.sum(axis=1)
    assert np.all(np.abs(per_row - 225) < 6 * math.sqrt(300 * 0.75 * 0.25))


@pytest.mark.parametrize("shape,nonzero", [((256, 128), 15), ((32, 128), 15), ((3, 3, 4, 8), 5),
                                           ((10, 6), 15), ((15, 4), 15)])
def test_sparse_nonzero_per_column_is_fixed_whatever_the_fan_in(shape, nonzero):
    """Martens (2010)'s sparse init: `nonzero` non-zeros in every column (all of a column with
    fewer rows), the stated Var(W) = stddev^2 min(nonzero, rows) / rows."""
    init = jwinit.sparse(nonzero=nonzero, stddev=1.0)
    w = np.asarray(jax.jit(init, static_argnums=(1,))(jax.random.key(3), shape), np.float64)
    rows = math.prod(shape[:-1])
    kept = min(nonzero, rows)
    np.testing.assert_array_equal((w.reshape(rows, shape[-1]) != 0).sum(axis=0), kept)
    d = jwinit.describe(init, shape)
    assert d.extra["zeros_per_column"] == rows - kept
    assert d.variance == pytest.approx(kept / rows, rel=1e-12)


def test_sparse_nonzero_values_are_unit_normal_and_a_units_input_variance_is_fan_in_free():
    """The non-zeros are N(0, stddev^2); a unit's input sum over unit-variance inputs has variance
    nonzero * stddev^2 at every fan-in (what makes the init width-independent)."""
    init = jwinit.sparse(nonzero=15, stddev=1.0)
    for fan_in in (64, 256, 1024):
        w = np.asarray(init(jax.random.key(fan_in), (fan_in, 2000)), np.float64)
        nz = w[w != 0]
        assert nz.size == 15 * 2000
        # sample variance of n normals: relative standard error sqrt(2 / n); 6 of them
        assert abs(nz.var() - 1.0) < 6 * math.sqrt(2 / nz.size)
        column_var = (w**2).sum(axis=0)        # Var(sum_i w_i x_i) for x ~ N(0, I)
        assert abs(column_var.mean() / 15 - 1) < 6 * math.sqrt(2 / nz.size)


def test_sparse_takes_exactly_one_of_sparsity_and_nonzero():
    with pytest.raises(ValueError, match=r"exactly one of `sparsity`.*`nonzero`.*sparsity=None, "
                                         r"nonzero=None"):
        jwinit.sparse()
    with pytest.raises(ValueError, match=r"exactly one.*sparsity=0.5, nonzero=3"):
        jwinit.sparse(0.5, nonzero=3)
    with pytest.raises(ValueError, match=r"`nonzero` must be an int >= 1, got 0"):
        jwinit.sparse(nonzero=0)
    with pytest.raises(TypeError, match=r"`nonzero`"):
        jwinit.sparse(nonzero=1.5)


def test_sparse_half_and_complex():
    dtypes = (*HALF, jnp.complex64)
    init = jwinit.sparse(0.5, 0.1)
    out = jax.jit(lambda k: [init(k, (20, 8), dt) for dt in dtypes])(jax.random.key(0))
    for dtype, w in zip(dtypes, out, strict=True):
        assert w.dtype == dtype
        assert (np.asarray(w).astype(np.complex64) == 0).sum() == 8 * 10


# --------------------------------------------------------------------------------------------
# ZerO


def zero_reference(n_in, n_out, constant="paper"):
    """Algorithm 1 of Zhao et al. 2021 on the (out, in) matrix, transposed to Flax (in, out)."""
    if n_out <= n_in:
        w = np.eye(n_out, n_in)
    else:
        m = math.ceil(math.log2(n_out))
        c = 2 ** (-(m - 1) / 2) if constant == "paper" else 2 ** (-m / 2)
        h = scipy.linalg.hadamard(2**m)
        w = c * np.eye(n_out, 2**m) @ h @ np.eye(2**m, n_in)
    return w.T


@pytest.mark.parametrize("n_in,n_out,constant", [
    (16, 16, "paper"), (32, 8, "paper"), (8, 32, "paper"), (7, 9, "paper"), (100, 37, "code"),
    (37, 100, "code"), (5, 64, "code"), (65, 130, "paper"),
])
def test_zer_o_matches_algorithm_full_rank_and_deterministic(n_in, n_out, constant):
    init = jax.jit(jwinit.zer_o(constant=constant), static_argnums=(1,))
    w = np.asarray(init(jax.random.key(0), (n_in, n_out)), np.float64)
    np.testing.assert_allclose(w, zero_reference(n_in, n_out, constant), rtol=EPS32, atol=0)
    assert np.linalg.matrix_rank(w) == min(n_in, n_out)
    w2 = np.asarray(init(jax.random.key(123), (n_in, n_out)), np.float64)
    np.testing.assert_array_equal(w, w2)
    d = jwinit.describe(jwinit.zer_o(constant=constant), (n_in, n_out))
    # describe is exact in float64; the draw carries the float32 rounding of c.
    assert d.mean == pytest.approx(w.mean(), rel=4 * EPS32, abs=1e-12)
    assert d.variance == pytest.approx(w.var(), rel=4 * EPS32, abs=1e-12)


def test_zer_o_full_rank_for_every_small_size():
    """Algorithm 1 (the reference above, equal to `zer_o` where tested) has full rank for every
    in, out <= 48; a few sizes straight from the initializer, in one compiled program each."""
    for n_out in range(1, 49):
        for n_in in range(1, 49):
            w = zero_reference(n_in, n_out)
            assert np.linalg.matrix_rank(w) == min(n_in, n_out), (n_in, n_out)
    for shape in [(5, 3), (31, 33), (63, 65)]:
        w = np.asarray(jdraw(jwinit.zer_o(), shape), np.float64)
        assert np.linalg.matrix_rank(w) == min(shape), shape


def test_zer_o_constants_and_conv_centre():
    d = jwinit.describe(jwinit.zer_o(), (64, 256))
    assert d.extra["hadamard_order"] == 8 and d.extra["constant"] == pytest.approx(2**-3.5)
    assert jwinit.describe(jwinit.zer_o(constant="code"), (64, 256)).extra["constant"] == (
        pytest.approx(2**-4))
    w = np.array(jdraw(jwinit.zer_o(), (3, 3, 8, 16)))
    np.testing.assert_array_equal(w[1, 1], zero_reference(8, 16).astype(np.float32))
    w[1, 1] = 0
    assert not w.any()
    assert jwinit.zero_hadamard is jwinit.zer_o


def test_hadamard_sum_matches_brute_force():
    for a in range(0, 40):
        for b in range(0, 40):
            assert _hadamard_sum(a, b) == scipy.linalg.hadamard(64)[:a, :b].sum()


# --------------------------------------------------------------------------------------------
# every structured scheme: jit, dtypes, out_sharding


SCHEMES = {
    "orthogonal": (jwinit.orthogonal(1.5), (64, 32)),
    "orthogonal_batched": (jwinit.orthogonal(batch_axis=0), (8, 16, 16)),
    "delta_orthogonal": (jwinit.delta_orthogonal(), (3, 3, 16, 32)),
    "identity": (jwinit.identity(2.0), (64, 32)),
    "dirac": (jwinit.dirac(2), (3, 3, 8, 32)),
    "sparse": (jwinit.sparse(0.8, 0.1), (64, 32)),
    "zer_o": (jwinit.zer_o(), (16, 64)),
}


@pytest.fixture(scope="module")
def mesh():
    return jax.make_mesh((8,), ("x",))


@pytest.mark.parametrize("name", list(SCHEMES))
def test_jit_dtypes_and_out_sharding(name, mesh):
    """One compiled program per scheme: every dtype, and placed with a NamedSharding and with a
    PartitionSpec under `jax.set_mesh` (float32, bfloat16; placement does not depend on the
    dtype), equal to the plain result. (eager == jit for every registered scheme is
    tests/test_initializers.py's.)"""
    init, shape = SCHEMES[name]
    key = jax.random.key(11)
    spec = P(*(None,) * (len(shape) - 1), "x")
    with jax.set_mesh(mesh):
        out = jax.jit(lambda k: {jnp.dtype(dt).name: (
            init(k, shape, dt),
            *((init(k, shape, dt, out_sharding=NamedSharding(mesh, spec)),
               init(k, shape, dt, out_sharding=spec)) if dt in SHARDED else ()))
            for dt in DTYPES})(key)
    for dtype in DTYPES:
        plain, *placed = out[jnp.dtype(dtype).name]
        assert plain.shape == shape and plain.dtype == dtype
        assert np.all(np.isfinite(np.asarray(plain)))
        assert len(placed) == (2 if dtype in SHARDED else 0)
        for p in placed:
            assert p.sharding.spec == spec and len(p.sharding.device_set) == 8
            assert p.dtype == dtype
            np.testing.assert_array_equal(np.asarray(p), np.asarray(plain))


def test_orthogonal_sharded_bf16_rows_stay_orthogonal(mesh):
    """Where jax.nn.initializers.orthogonal supports neither: bf16 and out_sharding together."""
    w = jax.jit(lambda k: jwinit.orthogonal()(k, (64, 32), jnp.bfloat16,
                                              out_sharding=NamedSharding(mesh, P("x", None))))(
        jax.random.key(0))
    assert w.dtype == jnp.bfloat16 and len(w.sharding.device_set) == 8
    assert gram_error(w, 1.0) <= cast_tolerance(jnp.bfloat16, 64)


# --------------------------------------------------------------------------------------------
# argument and shape errors


def test_factory_argument_errors():
    with pytest.raises(ValueError, match=r"`scale` must be a positive real number, got -?[0-9.]+"):
        jwinit.orthogonal(-1.0)
    with pytest.raises(TypeError, match="`scale`"):
        jwinit.orthogonal("big")
    with pytest.raises(TypeError, match="`column_axis`"):
        jwinit.orthogonal(1.0, 1.5)
    with pytest.raises(ValueError, match=r"`column_axis`.*one of \(-2, -1, 0, 1\)"):
        jwinit.delta_orthogonal(column_axis=2)
    with pytest.raises(ValueError, match=r"`sparsity`.*\[0, 1\], got 1.5"):
        jwinit.sparse(1.5)
    with pytest.raises(ValueError, match="`sparsity` must be a non-negative real number"):
        jwinit.sparse(-0.1)
    with pytest.raises(ValueError, match="`stddev` must be a positive real number"):
        jwinit.sparse(0.5, 0.0)
    with pytest.raises(ValueError, match="`groups` must be an int >= 1"):
        jwinit.dirac(0)
    with pytest.raises(ValueError, match=r"`layout`.*\('flax', 'torch'\)"):
        jwinit.dirac(layout="HWIO")
    with pytest.raises(ValueError, match=r"`centre`.*\('torch', 'same'\)"):
        jwinit.dirac(centre="middle")
    with pytest.raises(ValueError, match=r"`constant`.*\('paper', 'code'\)"):
        jwinit.zer_o(constant="sqrt2")
    with pytest.raises(TypeError, match="`gain`"):
        jwinit.identity("one")


def test_shape_errors_name_the_shape_before_compute():
    key = jax.random.key(0)
    cases = [
        (jwinit.orthogonal(), (5,), r"\(5,\)"),
        (jwinit.orthogonal(column_axis=3), (4, 4), r"`column_axis`=3.*\(4, 4\)"),
        (jwinit.orthogonal(batch_axis=-1), (4, 4), r"`batch_axis`"),
        (jwinit.delta_orthogonal(), (16, 32), r"\(16, 32\)"),
        (jwinit.delta_orthogonal(), (3, 3, 32, 16), r"in <= out.*\(3, 3, 32, 16\)"),
        (jwinit.delta_orthogonal(), (0, 3, 4, 4), r"window of at least 1.*\(0, 3, 4, 4\)"),
        (jwinit.identity(), (8,), r"\(8,\)"),
        (jwinit.dirac(), (8, 8), r"\(8, 8\)"),
        (jwinit.dirac(3), (3, 3, 4, 8), r"`groups`=3.*\(3, 3, 4, 8\)"),
        (jwinit.sparse(0.5), (8,), r"\(8,\)"),
        (jwinit.zer_o(), (8,), r"\(8,\)"),
    ]
    for init, shape, msg in cases:
        with pytest.raises(ValueError, match=msg):
            init(key, shape)
        with pytest.raises(ValueError, match=msg):
            jwinit.describe(init, shape)
    with pytest.raises(TypeError, match="`key`"):
        jwinit.orthogonal()(0, (4, 4))

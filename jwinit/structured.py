"""Structured initializers: orthogonal, delta-orthogonal, identity/eye, dirac, sparse, ZerO.

These schemes fix a *property* of the weight rather than only its variance:

* :func:`orthogonal`: a Haar-random (semi-)orthogonal matrix, W^T W = scale^2 I (Saxe et al. 2014).
* :func:`delta_orthogonal`: an orthogonal matrix at the spatial centre of a conv kernel, zeros
  elsewhere, so a SAME convolution is an isometry (Xiao et al. 2018).
* :func:`identity` (alias :data:`eye`) and :func:`dirac`: the identity map of a dense layer or a
  convolution (Le, Jaitly & Hinton 2015; PyTorch ``dirac_``).
* :func:`sparse`: a fixed number of zeros per column (Martens 2010; PyTorch ``sparse_``).
* :func:`zer_o`: ZerO, the deterministic zeros-ones-Hadamard scheme (Zhao et al. 2021).

QR factorizations and every other computation run in float32 (float64/complex128 when those are
requested) and the result is cast, so the schemes work in bfloat16 and float16, and with
``out_sharding``, where ``jax.nn.initializers.orthogonal`` supports neither. For float32 the values
of :func:`orthogonal` and :func:`delta_orthogonal` equal ``jax.nn.initializers``'s for the same key.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jwinit._builders import deterministic_moments, named_identity
from jwinit._checks import check_axes, check_choice, check_int, check_real, normalize_axis
from jwinit._linalg import qr
from jwinit._sampling import flat
from jwinit._types import DTypeLike, Initializer, Shape, compute_dtype, make_initializer, prod
from jwinit.registry import register

__all__ = [
    "orthogonal",
    "delta_orthogonal",
    "identity",
    "eye",
    "dirac",
    "sparse",
    "zer_o",
    "zero_hadamard",
    "ZERO_CONSTANTS",
]


# --------------------------------------------------------------------------------------------
# argument checks


# --------------------------------------------------------------------------------------------
# orthogonal


def _orthogonal_layout(shape: Shape, column_axis: int, batch_axis: tuple[int, ...], name: str):
    """Validated ``(order, batch_shape, n_rows, n_cols)``: how `shape` is seen as matrices."""
    ndim = len(shape)
    if ndim < 2:
        raise ValueError(
            f"`{name}` needs a weight of rank >= 2, got shape {shape}; an orthogonal matrix has "
            "rows and columns (use `normal`/`zeros` for biases)."
        )
    col = normalize_axis(column_axis, ndim, "column_axis", shape, name=name)
    batch = tuple(normalize_axis(a, ndim, "batch_axis", shape, name=name) for a in batch_axis)
    if len(set(batch)) != len(batch) or col in batch:
        raise ValueError(
            f"`batch_axis`={batch_axis} must name distinct axes other than `column_axis`="
            f"{column_axis} for a weight of shape {shape} in `{name}`."
        )
    others = tuple(a for a in range(ndim) if a != col and a not in batch)
    order = (*batch, *others, col)
    n_cols = shape[col]
    n_rows = prod([shape[a] for a in others])
    return order, tuple(shape[a] for a in batch), n_rows, n_cols


def _haar(key: jax.Array, n: int, m: int, batch_shape: tuple[int, ...], cd: Any) -> jax.Array:
    """``jax.random.orthogonal(key, n, batch_shape, cd, m)``, value for value, through
    `jwinit._linalg.qr` (one matrix at a time on CPU)."""
    z = jax.random.normal(key, (*batch_shape, max(n, m), min(n, m)), cd)
    q, r = qr(z)
    x = q * jnp.expand_dims(jnp.sign(jnp.diagonal(r, axis1=-2, axis2=-1)), -2)
    return jnp.swapaxes(x, -1, -2) if n < m else x


def _ns_tolerance(dtype: Any) -> float:
    """Stop when ||X^T X - I||_F <= this: 0 (run to the float floor) for float32 and wider, a
    quarter ulp of a half-precision dtype (the result is cast to it)."""
    eps = float(jnp.finfo(np.dtype(dtype)).eps)
    return eps / 4 if eps > float(jnp.finfo(np.float32).eps) else 0.0


def _polar_haar(key: jax.Array, n: int, m: int, batch_shape: tuple[int, ...], cd: Any,
                tol: float, max_iterations: int) -> jax.Array:
    """The orthogonal polar factor Z (Z^T Z)^(-1/2) of a Gaussian Z (Haar-distributed, as
    ``_haar``) by the Newton-Schulz iteration ``X <- X (3 I - X^T X) / 2``: matmuls only, run
    until ``||X^T X - I||_F <= tol``, or until the residual stops contracting quadratically
    below 1e-2 (the float floor), or `max_iterations`."""
    rows, cols = max(n, m), min(n, m)
    z = jax.random.normal(key, (*batch_shape, rows, cols), cd)
    gram = lambda x: jnp.swapaxes(x, -1, -2) @ x  # noqa: E731
    # scale so that every singular value is in (0, 1]: the Frobenius norm, or twice a power
    # estimate of the largest singular value (8 steps under-estimate it by at most a factor of
    # (1/cols)^(1/16) >= 1/2 for cols <= 65536), whichever is smaller
    v = jnp.full((*batch_shape, cols, 1), 1 / math.sqrt(cols), cd)
    for _ in range(8):
        v = jnp.swapaxes(z, -1, -2) @ (z @ v)
        v = v / jnp.linalg.norm(v, axis=(-2, -1), keepdims=True)
    sigma = jnp.linalg.norm(z @ v, axis=(-2, -1), keepdims=True)
    frob = jnp.linalg.norm(z, axis=(-2, -1), keepdims=True)
    x = z / jnp.minimum(frob, 2 * sigma)
    eye_ = jnp.eye(cols, dtype=cd)

    def residual(a):
        return jnp.sqrt(jnp.sum(jnp.square(a - eye_)))

    def cond(state):
        it, _, _, res, prev = state
        stalled = (res < 1e-2) & (res > prev / 2)
        return (res > tol) & (it < max_iterations) & ~stalled

    def body(state):
        it, x, a, res, _ = state
        x = x @ (1.5 * eye_ - 0.5 * a)
        a = gram(x)
        return it + 1, x, a, residual(a), res

    a0 = gram(x)
    state = (jnp.int32(0), x, a0, residual(a0), jnp.array(jnp.inf, cd))
    _, x, _, _, _ = jax.lax.while_loop(cond, body, state)
    return jnp.swapaxes(x, -1, -2) if n < m else x


def _sample_orthogonal(key, shape, cd, scale, column_axis, batch_axis, name, method="qr",
                       tol=None, max_iterations=100, dtype=None):
    """scale * Q with the jax.nn.initializers op sequence (bit-equal for float32, no batch)."""
    order, batch_shape, n_rows, n_cols = _orthogonal_layout(shape, column_axis, batch_axis, name)
    if prod(shape) == 0:
        return jnp.zeros(shape, cd)
    if method == "newton_schulz":
        t = _ns_tolerance(cd if dtype is None else dtype) if tol is None else tol
        q = _polar_haar(key, n_rows, n_cols, batch_shape, cd, t, max_iterations)
    else:
        q = _haar(key, n_rows, n_cols, batch_shape, cd)
    q = jnp.reshape(q, tuple(shape[a] for a in order))
    q = jnp.transpose(q, tuple(int(i) for i in np.argsort(order)))
    return jnp.array(scale, cd) * q


@register(
    distribution="orthogonal (Haar; QR with sign correction)",
    variance="scale^2 / max(rows, cols)", paper="Saxe et al. 2014; Mezzadri 2007",
    kind="matrix", min_ndim=2, shared_with_jax=True, example={"scale": 1.0},
)
def orthogonal(
    scale: Any = 1.0,
    column_axis: int = -1,
    dtype: DTypeLike = None,
    *,
    batch_axis: int | Sequence[int] = (),
    method: str = "qr",
    tol: float | None = None,
    max_iterations: int = 100,
) -> Initializer:
    """Haar-distributed (semi-)orthogonal matrices: W = scale * Q (Saxe et al. 2014).

    The weight is seen as a matrix with ``cols = shape[column_axis]`` columns and ``rows`` = the
    product of the other (non-batch) axes. Q is drawn uniformly from the orthogonal group (unitary
    for complex dtypes) by QR of a Gaussian matrix with the sign correction of Mezzadri (2007):

    * rows >= cols: orthonormal columns, W^T W = scale^2 I_cols;
    * rows <  cols: orthonormal rows,    W W^T = scale^2 I_rows.

    Each entry has E[W] = 0 and Var(W) = scale^2 / max(rows, cols) exactly (the squared entries
    of every draw sum to scale^2 * min(rows, cols)). No fans are used.

    Sampling and QR run in float32 (float64/complex128 when requested) and the result is cast, so
    bfloat16/float16 work; ``out_sharding`` places the result. For float32 and no `batch_axis` the
    values equal ``jax.nn.initializers.orthogonal(scale, column_axis)`` for the same key.

    Args:
      scale: positive multiplier (the singular values of W all equal `scale`).
      column_axis: the axis whose entries index the orthogonal columns.
      dtype: default dtype (``None``: the default float dtype).
      batch_axis: axes holding independent copies (e.g. the layer axis of a stacked, scanned
        kernel ``(layers, in, out)``): each copy is an independent orthogonal matrix.
      method: ``'qr'`` (QR with Mezzadri's sign correction; the values of jax's) or
        ``'newton_schulz'``: the orthogonal polar factor Z (Z^T Z)^(-1/2) of the same kind of
        Gaussian Z (also Haar-distributed: the polar factor is equivariant under rotations), by
        the Newton-Schulz iteration X <- X (3 I - X^T X) / 2 from Z scaled into the unit ball.
        Matmuls only: no QR kernel (none exists for bfloat16 on several backends), shardable
        like any matmul, and run to a tolerance, not a fixed step count.
      tol: Newton-Schulz only: stop when ||X^T X - I||_F <= tol (default: 0 for float32, i.e. run
        to the float floor; a quarter ulp of the requested dtype for half precision); it also
        stops when the residual no longer contracts quadratically (the floor), or after
        `max_iterations`.
      max_iterations: Newton-Schulz only: the iteration cap (about log_1.5(cols) + 6 are needed).

    Returns:
      ``init(key, shape, dtype=dtype, out_sharding=None)``; shapes of rank >= 2.

    Examples:
      >>> w = jwinit.orthogonal()(jax.random.key(0), (256, 128), jnp.bfloat16)
      >>> stack = jwinit.orthogonal(batch_axis=0)(jax.random.key(0), (12, 128, 128))

    References:
      Saxe, McClelland & Ganguli 2014, "Exact solutions to the nonlinear dynamics of learning in
      deep linear neural networks"; Mezzadri 2007, "How to generate random matrices from the
      classical compact groups".
    """
    check_real(scale, "scale", low=0, low_open=True)
    check_int(column_axis, "column_axis")
    batch = check_axes(batch_axis, "batch_axis")
    check_choice(method, "method", ("qr", "newton_schulz"))
    if tol is not None:
        check_real(tol, "tol", low=0, low_open=True)
    check_int(max_iterations, "max_iterations", minimum=1)
    name = "orthogonal"

    def check_shape(shape):
        _orthogonal_layout(shape, column_axis, batch, name)

    def sample(key, shape, dtype):
        return _sample_orthogonal(key, shape, compute_dtype(dtype), scale, column_axis, batch,
                                  name, method, tol, max_iterations, dtype)

    def describe(shape, dtype):
        _, batch_shape, rows, cols = _orthogonal_layout(shape, column_axis, batch, name)
        s = float(scale)
        return {
            "distribution": "orthogonal",
            "mean": 0.0,
            "variance": s * s / max(rows, cols, 1),
            "bounds": (-s, s),
            "scale": s,
            "rows": rows,
            "cols": cols,
            "copies": prod(batch_shape),
        }

    return make_initializer(
        sample, name=name, dtype=dtype, describe=describe, check_shape=check_shape,
        params={"scale": scale, "column_axis": column_axis, "batch_axis": batch}
        | ({} if method == "qr" else {"method": method, "tol": tol,
                                      "max_iterations": max_iterations}),
    )


# --------------------------------------------------------------------------------------------
# delta orthogonal


def _check_conv_rank(shape: Shape, name: str) -> None:
    if len(shape) not in (3, 4, 5):
        raise ValueError(
            f"`{name}` is for 1-D, 2-D and 3-D convolution kernels of rank 3, 4 or 5, got shape "
            f"{shape} (rank {len(shape)})."
        )


@register(
    distribution="orthogonal at the kernel centre, zeros elsewhere",
    variance="scale^2 min(in, out) / size", paper="Xiao et al. 2018", kind="conv", min_ndim=3,
    shared_with_jax=True, example={"scale": 1.0},
)
def delta_orthogonal(
    scale: Any = 1.0, column_axis: int = -1, dtype: DTypeLike = None
) -> Initializer:
    """Delta-orthogonal conv kernels (Xiao et al. 2018): an orthogonal matrix at the centre tap.

    For a kernel of shape ``(*spatial, in, out)`` (HWIO, 1-D to 3-D), W[centre] = scale * Q with Q
    an ``(in, out)`` Haar (semi-)orthogonal matrix (see :func:`orthogonal`, `column_axis` applies
    to it) and W = 0 at every other tap; ``centre = (k - 1) // 2`` per spatial dim. A convolution
    with ``padding='SAME'`` then maps every pixel's channel vector x to scale * x Q, so when
    ``in <= out`` it preserves the norm of its input exactly (times `scale`): the dynamical-isometry
    initialization that trains 10,000-layer vanilla CNNs.

    Per entry: E[W] = 0, Var(W) = scale^2 * min(in, out) / size, size = prod(shape). No fans.

    For float32 the values equal ``jax.nn.initializers.delta_orthogonal`` for the same key; other
    dtypes sample in float32 and cast.

    Args:
      scale: positive multiplier.
      column_axis: the column axis of the ``(in, out)`` centre matrix: -1/1 (default) or -2/0.
      dtype: default dtype.

    Returns:
      ``init(key, shape, dtype=dtype, out_sharding=None)`` for shapes of rank 3-5 with
      ``in <= out`` (``ValueError`` naming the shape otherwise).

    Examples:
      >>> k = jwinit.delta_orthogonal()(jax.random.key(0), (3, 3, 64, 64))

    References:
      Xiao, Bahri, Sohl-Dickstein, Schoenholz & Pennington 2018, "Dynamical Isometry and a Mean
      Field Theory of CNNs: How to Train 10,000-Layer Vanilla Convolutional Neural Networks".
    """
    check_real(scale, "scale", low=0, low_open=True)
    check_int(column_axis, "column_axis")
    if column_axis not in (-2, -1, 0, 1):
        raise ValueError(
            f"`column_axis` of `delta_orthogonal` indexes the (in, out) centre matrix and must be "
            f"one of (-2, -1, 0, 1), got {column_axis}."
        )
    name = "delta_orthogonal"

    def check_shape(shape):
        _check_conv_rank(shape, name)
        if any(k < 1 for k in shape[:-2]):
            raise ValueError(
                f"`delta_orthogonal` needs a window of at least 1 in every spatial dimension (its "
                f"centre holds the orthogonal matrix), got shape {shape}."
            )
        if shape[-1] < shape[-2]:
            raise ValueError(
                f"`delta_orthogonal` needs in <= out channels (an isometry cannot reduce the "
                f"dimension), got shape {shape} with in={shape[-2]}, out={shape[-1]}."
            )

    def sample(key, shape, dtype):
        cd = compute_dtype(dtype)
        q = _sample_orthogonal(key, shape[-2:], cd, scale, column_axis, (), name)
        centre = tuple((k - 1) // 2 for k in shape[:-2])
        return jnp.zeros(shape, cd).at[centre].set(q)

    def describe(shape, dtype):
        check_shape(shape)
        s = float(scale)
        size = prod(shape)
        return {
            "distribution": "delta_orthogonal",
            "mean": 0.0,
            "variance": s * s * min(shape[-2:]) / size if size else 0.0,
            "bounds": (-s, s),
            "scale": s,
            "centre": tuple((k - 1) // 2 for k in shape[:-2]),
        }

    return make_initializer(
        sample, name=name, dtype=dtype, describe=describe, check_shape=check_shape,
        params={"scale": scale, "column_axis": column_axis},
    )


# --------------------------------------------------------------------------------------------
# identity, dirac


@register(
    aliases=("eye",), distribution="deterministic: gain * I (rectangular, batched)",
    variance="gain^2 min(n, m) / (n m) - mean^2 (over entries)",
    paper="Le, Jaitly & Hinton 2015 (IRNN)", kind="matrix", min_ndim=2, example={"gain": 1.0},
)
def identity(gain: Any = 1.0, dtype: DTypeLike = None) -> Initializer:
    """The identity: W[..., i, i] = gain for i < min(n, m), all other entries 0.

    For a weight of shape ``(..., n, m)`` (in Flax layout ``(in, out)``) the last two axes hold a
    rectangular identity (``jnp.eye(n, m)``), repeated over any leading (batch) axes; a Dense
    layer then passes its first min(n, m) features through unchanged. This is the recurrent-kernel
    initialization of the IRNN (Le, Jaitly & Hinton 2015), see :func:`jwinit.irnn`.

    It is deterministic; over the entries, with k = min(n, m):
    E[W] = gain k / (n m) and Var(W) = gain^2 k / (n m) - E[W]^2. No fans.

    Args:
      gain: the diagonal value (any finite real).
      dtype: default dtype.

    Returns:
      ``init(key, shape, dtype=dtype, out_sharding=None)`` for shapes of rank >= 2 (the key is
      checked but unused).

    Examples:
      >>> jwinit.identity()(jax.random.key(0), (3, 4))
      Array([[1., 0., 0., 0.],
             [0., 1., 0., 0.],
             [0., 0., 1., 0.]], dtype=float32)
      >>> jwinit.eye(0.5)(jax.random.key(0), (2, 3, 3))[1]   # batched: every copy 0.5 I
      Array([[0.5, 0. , 0. ],
             [0. , 0.5, 0. ],
             [0. , 0. , 0.5]], dtype=float32)

    References:
      Le, Jaitly & Hinton 2015, "A Simple Way to Initialize Recurrent Networks of Rectified
      Linear Units".
    """
    return named_identity(gain, dtype, "identity")


eye = identity

_CENTRES = ("torch", "same")
_CONV_LAYOUTS = ("flax", "torch")


@register(
    distribution="deterministic: 1 at the kernel centre for in/out channel pairs",
    variance="p - p^2, p = groups min(out / groups, in) / size (over entries)",
    paper="PyTorch nn.init.dirac_; Zagoruyko & Komodakis 2017 (DiracNets)", kind="conv",
    min_ndim=3,
)
def dirac(
    groups: int = 1,
    dtype: DTypeLike = None,
    *,
    layout: str = "flax",
    centre: str = "torch",
) -> Initializer:
    """Dirac delta conv kernels: the convolution is the identity on the first channels.

    PyTorch semantics (``torch.nn.init.dirac_(w, groups)``): with ``out`` output channels split
    into `groups` groups of ``out_g = out // groups`` and ``in_g`` input channels per group (the
    kernel's input axis), for every group g and d < min(out_g, in_g),

        W[centre, d, g * out_g + d] = 1     (Flax HWIO layout ``(*spatial, in_g, out)``)

    and 0 elsewhere (``layout='torch'``: ``W[g * out_g + d, d, centre] = 1`` on ``(out, in_g,
    *spatial)``). Deterministic: over the entries, with p = groups min(out_g, in_g) / size,
    E[W] = p and Var(W) = p - p^2. No fans.

    Centre convention: ``centre='torch'`` (default) puts the one at ``k // 2`` in every spatial
    dim, as PyTorch does. For odd k that is the middle tap and a ``padding='SAME'`` (or PyTorch
    ``padding=k // 2``) convolution is exactly the identity. For even k, a lax ``'SAME'``
    convolution pads ``(k - 1) // 2`` before, so the PyTorch centre shifts the output by one
    pixel; ``centre='same'`` uses ``(k - 1) // 2`` instead, which makes a lax ``'SAME'``
    convolution the identity for every k.

    Args:
      groups: convolution feature groups (``feature_group_count``); must divide ``out``.
      dtype: default dtype.
      layout: ``'flax'`` (``(*spatial, in, out)``, default) or ``'torch'`` (``(out, in,
        *spatial)``).
      centre: ``'torch'`` (``k // 2``) or ``'same'`` (``(k - 1) // 2``).

    Returns:
      ``init(key, shape, dtype=dtype, out_sharding=None)`` for kernels of rank 3-5.

    Examples:
      >>> k = jwinit.dirac()(jax.random.key(0), (3, 3, 16, 16))
      >>> conv = flax.linen.Conv(16, (3, 3), kernel_init=jwinit.dirac())

    References:
      PyTorch ``torch.nn.init.dirac_``; Zagoruyko & Komodakis 2017, "DiracNets: Training Very
      Deep Neural Networks Without Skip-Connections".
    """
    check_int(groups, "groups", minimum=1)
    if layout not in _CONV_LAYOUTS:
        raise ValueError(f"`layout` of `dirac` must be one of {_CONV_LAYOUTS}, got {layout!r}.")
    if centre not in _CENTRES:
        raise ValueError(f"`centre` of `dirac` must be one of {_CENTRES}, got {centre!r}.")
    name = "dirac"

    def split(shape):
        if layout == "flax":
            return shape[:-2], shape[-2], shape[-1]
        return shape[2:], shape[1], shape[0]

    def check_shape(shape):
        _check_conv_rank(shape, name)
        _, _, out = split(shape)
        if out % groups:
            raise ValueError(
                f"`groups`={groups} of `dirac` must divide the {out} output channels of a "
                f"kernel of shape {shape} (layout {layout!r})."
            )

    def taps(shape):
        spatial, in_g, out = split(shape)
        out_g = out // groups
        k = min(out_g, in_g)
        c = tuple(s // 2 if centre == "torch" else (s - 1) // 2 for s in spatial)
        return c, in_g, out_g, k

    def sample(key, shape, dtype):
        cd = compute_dtype(dtype)
        c, _, out_g, k = taps(shape)
        d = np.tile(np.arange(k), groups)
        o = np.repeat(np.arange(groups) * out_g, k) + d
        if layout == "flax":
            index = (*c, d, o)
        else:
            index = (o, d, *c)
        return jnp.zeros(shape, cd).at[index].set(1)

    def describe(shape, dtype):
        check_shape(shape)
        c, _, _, k = taps(shape)
        mean, var = deterministic_moments(groups * k, 1.0, prod(shape))
        return {"distribution": "dirac", "mean": mean, "variance": var, "bounds": (0.0, 1.0),
                "centre": c, "groups": groups, "deterministic": True}

    return make_initializer(
        sample, name=name, dtype=dtype, describe=describe, check_shape=check_shape,
        params={"groups": groups, "layout": layout, "centre": centre},
    )


# --------------------------------------------------------------------------------------------
# sparse


@register(
    distribution="normal with ceil(sparsity * rows) zeros (or `nonzero` non-zeros) per column",
    variance="stddev^2 (1 - zeros / rows)", paper="Martens 2010; PyTorch nn.init.sparse_",
    kind="matrix", min_ndim=2, example={"sparsity": 0.9, "stddev": 0.1},
)
def sparse(sparsity: Any = None, stddev: Any = 0.01, dtype: DTypeLike = None, *,
           nonzero: Any = None) -> Initializer:
    """Sparse normal weights: a fixed number of zeros (or of non-zeros) in every column.

    The weight is seen as a ``(rows, cols)`` matrix, ``cols = shape[-1]`` and ``rows`` = the
    product of the other axes. Every entry is drawn from N(0, stddev^2), then in each column a
    uniformly random set of ``zeros`` entries is set to 0, where ``zeros = ceil(sparsity * rows)``
    or, with `nonzero`, ``zeros = rows - min(nonzero, rows)`` (every entry is kept when a column
    has at most `nonzero` rows):

        E[W] = 0,  Var(W) = stddev^2 (1 - zeros / rows).

    Give exactly one of `sparsity` and `nonzero`.

    - `sparsity` is the fraction of **zeros** per column, PyTorch's meaning
      (``torch.nn.init.sparse_(w, sparsity, std)`` on a ``(out, in)`` weight is this on that
      shape). Lasagne's ``Sparse(sparsity=...)`` means the opposite, the fraction of non-zeros.
    - `nonzero` is the number of non-zero entries per column, the same in every layer whatever
      its fan-in: Martens (2010, Sec. 5)'s sparse initialization is ``sparse(nonzero=15,
      stddev=1.0)`` (with zero biases), the one Sutskever et al. (2013, Sec. 3.1) train deep
      autoencoders from. Each unit's summed input then has the variance of 15 unit-variance
      terms, independent of the layer's width, while every non-zero weight is of order 1.

    In Flax layout ``(in, out)`` a column is one output unit, so each unit has a fixed number of
    non-zero incoming weights. No fans.

    Args:
      sparsity: fraction of zeros per column, in [0, 1].
      stddev: standard deviation of the non-zero entries (positive).
      dtype: default dtype.
      nonzero: non-zero entries per column (an int >= 1).

    Returns:
      ``init(key, shape, dtype=dtype, out_sharding=None)`` for shapes of rank >= 2.

    Examples:
      >>> w = jwinit.sparse(0.9)(jax.random.key(0), (100, 10))   # 90 zeros in each column
      >>> w = jwinit.sparse(nonzero=15, stddev=1.0)(jax.random.key(0), (256, 128))  # Martens
      >>> int((w != 0).sum(axis=0).max())
      15

    References:
      Martens 2010, "Deep learning via Hessian-free optimization" (Sec. 5); Sutskever, Martens,
      Dahl & Hinton 2013, "On the importance of initialization and momentum in deep learning"
      (Sec. 3.1); PyTorch ``torch.nn.init.sparse_``.
    """
    if (sparsity is None) == (nonzero is None):
        raise ValueError(
            f"`sparse` takes exactly one of `sparsity` (the fraction of zeros per column) and "
            f"`nonzero` (the number of non-zeros per column), got sparsity={sparsity!r}, "
            f"nonzero={nonzero!r}."
        )
    if nonzero is not None:
        check_int(nonzero, "nonzero", minimum=1)
    else:
        check_real(sparsity, "sparsity", low=0)
        if float(sparsity) > 1:
            raise ValueError(
                f"`sparsity` is the fraction of zeros per column and must be in [0, 1], got "
                f"{sparsity}."
            )
    check_real(stddev, "stddev", low=0, low_open=True)
    name = "sparse"

    def zeros_per_column(shape):
        rows = prod(shape[:-1])
        if nonzero is not None:
            return rows, rows - min(int(nonzero), rows)
        return rows, math.ceil(float(sparsity) * rows)

    def check_shape(shape):
        if len(shape) < 2:
            raise ValueError(
                f"`sparse` needs a weight of rank >= 2 (rows, columns), got shape {shape}."
            )

    def sample(key, shape, dtype):
        cd = compute_dtype(dtype)
        rows, zeros = zeros_per_column(shape)
        k_w, k_mask = jax.random.split(key)
        w = flat(jax.random.normal, k_w, shape, cd) * jnp.array(stddev, cd)
        # A uniformly random permutation of the rows in every column; the first `zeros` ranks
        # are dropped (argsort is a permutation, so the count is exact even with ties).
        u = jax.random.uniform(k_mask, (rows, shape[-1]), jnp.float32)
        ranks = jnp.argsort(jnp.argsort(u, axis=0), axis=0)
        keep = jnp.reshape(ranks >= zeros, shape)
        return jnp.where(keep, w, jnp.zeros((), cd))

    def describe(shape, dtype):
        check_shape(shape)
        rows, zeros = zeros_per_column(shape)
        s = float(stddev)
        return {"distribution": "sparse_normal", "mean": 0.0,
                "variance": s * s * (1 - zeros / rows) if rows else 0.0,
                "bounds": (-math.inf, math.inf),
                "sparsity": zeros / rows if rows else 0.0,
                "zeros_per_column": zeros, "stddev": s}

    return make_initializer(
        sample, name=name, dtype=dtype, describe=describe, check_shape=check_shape,
        params=({"sparsity": sparsity, "stddev": stddev} if nonzero is None
                else {"nonzero": nonzero, "stddev": stddev}),
    )


# --------------------------------------------------------------------------------------------
# ZerO


ZERO_CONSTANTS = ("paper", "code")
"""The two Hadamard constants of `zer_o`: 2^(-(m-1)/2) (paper) and 2^(-m/2) (authors' code)."""


def _hadamard_block(n_rows: int, n_cols: int, dtype) -> jax.Array:
    """H[:n_rows, :n_cols] of the Sylvester Hadamard matrix: H[i, j] = (-1)^popcount(i & j)."""
    i = jnp.arange(n_rows, dtype=jnp.uint32)[:, None]
    j = jnp.arange(n_cols, dtype=jnp.uint32)[None, :]
    odd = jax.lax.population_count(i & j) & jnp.uint32(1)
    return (1 - 2 * odd.astype(jnp.int32)).astype(dtype)


def _hadamard_sum(a: int, b: int) -> int:
    """sum(H[:a, :b]) for the Sylvester Hadamard matrix, in O(log max(a, b)) steps.

    With H_2n = [[H_n, H_n], [H_n, -H_n]]: a block of H_n with all its rows (or all its columns)
    sums to n if non-empty (only the first row/column of H_n has a non-zero sum).
    """
    total, sign = 0, 1
    while a > 0 and b > 0:
        n = 1 << (max(a, b) - 1).bit_length()  # smallest power of 2 >= max(a, b)
        if n == 1:
            return total + sign
        half = n // 2
        if a <= half:  # [H_half[:a, :half], H_half[:a, :b - half]]
            total, b = total + sign * half, b - half
        elif b <= half:
            total, a = total + sign * half, a - half
        else:  # three blocks that sum to half each, then -H_half[:a - half, :b - half]
            total, a, b, sign = total + sign * 3 * half, a - half, b - half, -sign
    return total


@register(
    aliases=("zero_hadamard",), distribution="deterministic: partial identity or c * Hadamard",
    variance="over entries: k / size - mean^2 (identity), c^2 in out / size - mean^2 (Hadamard)",
    paper="Zhao et al. 2021 (ZerO)", kind="matrix", min_ndim=2,
)
def zer_o(dtype: DTypeLike = None, *, constant: str = "paper") -> Initializer:
    """ZerO initialization (Zhao et al. 2021): only zeros, ones and a scaled Hadamard matrix.

    For a kernel of Flax layout ``(in, out)`` (Algorithm 1 of the paper, written there for the
    transposed ``(out, in)`` matrix):

    * ``out <= in``: the partial identity ``W = eye(in, out)`` (the first `out` inputs pass);
    * ``out >  in``: ``W = c * H_m[:in, :out]``, H_m the 2^m x 2^m Sylvester Hadamard matrix,
      m = ceil(log2(out)).

    The constant c is ``2^(-(m-1)/2)`` as in the paper's Algorithm 1 (``constant='paper'``,
    default) or ``2^(-m/2)`` as in the authors' released MNIST example (``constant='code'``,
    which makes c * H_m orthogonal; the two differ by sqrt(2)). In the Hadamard case every entry
    is +-c. W has full rank min(in, out) for every size (the first in <= 2^(m-1) rows of H_m
    restricted to its first half of columns are orthogonal). The result is deterministic (the key
    is checked but unused).

    Rank > 2 kernels ``(*spatial, in, out)`` are convolutions (Algorithm 2): the matrix sits at
    the spatial centre ``k // 2`` and every other tap is 0.

    Over the entries (size = prod(shape)): identity case E[W] = k / size, Var(W) = k / size -
    E[W]^2 (k = min(in, out)); Hadamard case E[W] = c sum(H_m[:in, :out]) / size and
    Var(W) = c^2 in out / size - E[W]^2. No fans.

    Args:
      dtype: default dtype.
      constant: ``'paper'`` (c = 2^(-(m-1)/2)) or ``'code'`` (c = 2^(-m/2)).

    Returns:
      ``init(key, shape, dtype=dtype, out_sharding=None)`` for shapes of rank >= 2.

    Examples:
      >>> w = jwinit.zer_o()(jax.random.key(0), (64, 256))   # 0.177 * Hadamard block, rank 64

    References:
      Zhao, Schäfer & Anandkumar 2021, "ZerO Initialization: Initializing Neural Networks with
      only Zeros and Ones".
    """
    if constant not in ZERO_CONSTANTS:
        raise ValueError(f"`constant` of `zer_o` must be one of {ZERO_CONSTANTS}, got "
                         f"{constant!r}.")
    name = "zer_o"

    def check_shape(shape):
        if len(shape) < 2:
            raise ValueError(
                f"`zer_o` needs a weight of rank >= 2 ((*spatial,) in, out), got shape {shape}."
            )

    def hadamard_constant(n_in, n_out):
        if n_out <= n_in:
            return None, 1.0
        m = (n_out - 1).bit_length()  # ceil(log2(out))
        return m, 2.0 ** (-(m - 1) / 2 if constant == "paper" else -m / 2)

    def sample(key, shape, dtype):
        cd = compute_dtype(dtype)
        n_in, n_out = shape[-2:]
        m, c = hadamard_constant(n_in, n_out)
        if m is None:
            mat = jnp.eye(n_in, n_out, dtype=cd)
        else:
            mat = _hadamard_block(n_in, n_out, cd) * jnp.array(c, cd)
        if len(shape) == 2:
            return mat
        centre = tuple(k // 2 for k in shape[:-2])
        return jnp.zeros(shape, cd).at[centre].set(mat)

    def describe(shape, dtype):
        check_shape(shape)
        n_in, n_out = shape[-2:]
        m, c = hadamard_constant(n_in, n_out)
        size = prod(shape)
        if m is None:
            k = min(n_in, n_out)
            mean, var = deterministic_moments(k, 1.0, size)
            lo, hi = (1.0, 1.0) if k == size else (0.0, 1.0)
        else:
            mean, var = deterministic_moments(n_in * n_out, c, size,
                                               total=c * _hadamard_sum(n_in, n_out))
            lo, hi = -c, c
        out = {"distribution": "zer_o", "mean": mean, "variance": var, "bounds": (lo, hi),
               "deterministic": True, "rank": min(n_in, n_out)}
        if m is not None:
            out.update(hadamard_order=m, constant=c)
        return out

    return make_initializer(
        sample, name=name, dtype=dtype, describe=describe, check_shape=check_shape,
        params={"constant": constant},
    )


zero_hadamard = zer_o

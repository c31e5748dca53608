"""Framework defaults, for porting: start a Flax model from the distribution the original used.

Each preset reproduces the *default* initialization of a layer in another framework (or in Flax
itself) as jwinit initializers:

====================  =========================================  ==============================
preset                kernel / weight                            bias
====================  =========================================  ==============================
`torch_linear`        U(+-1/sqrt(fan_in))                        U(+-1/sqrt(fan_in))
`torch_conv`          U(+-1/sqrt(fan_in)), fan_in = in/g * k     U(+-1/sqrt(fan_in))
`torch_embedding`     N(0, 1)                                    -
`torch_rnn`           U(+-1/sqrt(hidden)) (all weights)          U(+-1/sqrt(hidden)) (each)
`keras_dense`         glorot_uniform                             zeros
`haiku_linear`        truncated normal [-2, 2] * 1/sqrt(fan_in)  zeros
`flax_dense`          lecun_normal                               zeros
`equinox_linear`      U(+-1/sqrt(in_features))                   U(+-1/sqrt(in_features))
====================  =========================================  ==============================

PyTorch's ``nn.Linear``/``nn.Conv*`` weight init is ``kaiming_uniform_(w, a=sqrt(5))``: bound =
gain * sqrt(3 / fan_in) with gain = sqrt(2 / (1 + 5)), i.e. exactly 1 / sqrt(fan_in).

**Layout.** Presets produce kernels in **Flax layout** by default: a Dense kernel is ``(in, out)``
and a conv kernel ``(*spatial, in / groups, out)`` (HWIO), which is what ``flax.linen.Dense`` /
``Conv`` (and ``flax.nnx.Linear``/``Conv``) ask for. PyTorch stores ``(out, in, *spatial)`` and
Equinox ``(out, in)``; pass ``layout='torch'`` / ``layout='equinox'`` to initialize such arrays.
The distribution is elementwise and identical in both layouts; the layout only tells the preset
which axis is the input (to check the shape).

**Biases need fan_in.** A bias initializer only sees the bias shape ``(out,)``, so the presets
whose bias depends on the kernel's fan_in take it as an argument (``in_features``,
``in_channels`` and ``kernel_size``) and return both initializers together, as a `LayerInit`
(``kernel_init``, ``bias_init``), whose field names are Flax's keyword arguments::

    import flax.linen as nn
    from jwinit import presets

    dense = nn.Dense(256, **presets.torch_linear(784)._asdict())
    conv = nn.Conv(64, (3, 3), **presets.torch_conv(32, (3, 3))._asdict())

The kernel initializer checks that the kernel it is asked for has that fan_in (``ValueError``
naming the shape otherwise), so kernel and bias cannot silently disagree. :func:`torch_bias`
is the bias initializer alone.

Presets are reached as ``jwinit.presets.<name>``; they are not registry names, since most return a
pair rather than one initializer.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jwinit._checks import check_choice, check_int, guard_factory
from jwinit._sampling import flat, sample_normal, sample_symmetric_uniform
from jwinit._truncnorm import truncnorm_moments
from jwinit._types import (
    DTypeLike,
    Initializer,
    Shape,
    compute_dtype,
    is_complex,
    make_initializer,
    prod,
    real_dtype,
)
from jwinit.distributions import zeros
from jwinit.fans import LAYOUTS, fan_spec
from jwinit.variance import glorot_uniform, lecun_normal

__all__ = [
    "LayerInit",
    "RecurrentInit",
    "torch_linear",
    "torch_conv",
    "torch_embedding",
    "torch_rnn",
    "torch_lstm",
    "torch_gru",
    "torch_bias",
    "torch_multihead_attention",
    "torch_bilinear",
    "torch_conv_transpose",
    "AttentionInit",
    "keras_dense",
    "keras_conv",
    "haiku_linear",
    "flax_dense",
    "equinox_linear",
]

_TRUNC_VAR = truncnorm_moments(-2.0, 2.0)[1]  # 0.7737: Var of N(0, 1) truncated to [-2, 2]


def _truncated_normal(key, shape, dtype):
    return jax.random.truncated_normal(key, -2.0, 2.0, shape, dtype)


class LayerInit(NamedTuple):
    """A layer's kernel and bias initializers; ``**preset._asdict()`` passes both to Flax."""

    kernel_init: Initializer
    bias_init: Initializer


class AttentionInit(NamedTuple):
    """Initializers of an attention layer, named as ``flax.linen.MultiHeadDotProductAttention``
    (and ``flax.nnx.MultiHeadAttention``) arguments: ``**preset._asdict()`` passes all four."""

    kernel_init: Initializer
    out_kernel_init: Initializer
    bias_init: Initializer
    out_bias_init: Initializer


class RecurrentInit(NamedTuple):
    """Initializers of a recurrent cell, named as ``flax.linen.LSTMCell``/``GRUCell`` arguments."""

    kernel_init: Initializer
    recurrent_kernel_init: Initializer
    bias_init: Initializer


# --------------------------------------------------------------------------------------------
# helpers


def _uniform(
    bound: float | Callable[[Shape], float],
    name: str,
    dtype: DTypeLike,
    *,
    check_shape=None,
    fans=None,
    terms: int = 1,
) -> Initializer:
    """U(-bound, bound) (the sum of `terms` independent such draws); complex: the disk with the
    same E|W|^2 = bound^2 / 3 per term. `bound` may be a function of the shape."""
    bound_of = bound if callable(bound) else (lambda shape, b=float(bound): b)

    def one(key, shape, cd, b):
        if is_complex(cd):
            z = flat(sample_symmetric_uniform, key, shape, cd)
            return z * jnp.array(b / math.sqrt(3), cd)
        return flat(jax.random.uniform, key, shape, cd, -b, b)

    def sample(key, shape, dtype):
        cd = compute_dtype(dtype)
        b = bound_of(shape)
        if terms == 1:
            return one(key, shape, cd, b)
        k1, k2 = jax.random.split(key)
        return one(k1, shape, cd, b) + one(k2, shape, cd, b)

    def describe(shape, dtype):
        b = bound_of(shape)
        r = b * terms if not is_complex(dtype) else b * math.sqrt(2 / 3) * terms
        facts = {"distribution": "uniform" if terms == 1 else f"sum of {terms} uniforms",
                 "mean": 0.0, "variance": terms * b * b / 3, "bounds": (-r, r), "bound": b}
        if fans is not None:
            facts["fan_in"], facts["fan_out"] = fans(shape)
        return facts

    params = {"terms": terms} if callable(bound) else {"bound": float(bound), "terms": terms}
    return make_initializer(sample, name=name, dtype=dtype, describe=describe,
                            check_shape=check_shape, params=params)


def _kernel_size(kernel_size: Any, name: str) -> tuple[int, ...]:
    if isinstance(kernel_size, numbers.Integral) or not isinstance(kernel_size, Sequence):
        raise TypeError(
            f"`kernel_size` of `{name}` must be a sequence of ints such as (3, 3), got "
            f"{kernel_size!r} (an int would not say how many spatial dimensions the kernel has)."
        )
    ks = tuple(check_int(k, "kernel_size", minimum=1, name=name) for k in kernel_size)
    if not 1 <= len(ks) <= 3:
        raise ValueError(f"`kernel_size` of `{name}` must have 1 to 3 entries, got "
                         f"{kernel_size!r}.")
    return ks


def _fan_in_check(expected: int, layout: str, name: str, what: str):
    spec = fan_spec(layout=layout)

    def check(shape: Shape) -> None:
        fan_in = spec.fans(shape)[0]
        if fan_in != expected:
            raise ValueError(
                f"`{name}` was built for {what} (fan_in {expected}) but is asked for a kernel of "
                f"shape {shape} with fan_in {fan_in} in layout {layout!r}."
            )

    return check, spec.fans


# --------------------------------------------------------------------------------------------
# PyTorch


def _fan_in_uniform_layer(name: str, in_features: Any, layout: Any, dtype: Any) -> LayerInit:
    """Kernel and bias both U(+-1/sqrt(in_features)) (PyTorch Linear, Equinox Linear)."""
    n = check_int(in_features, "in_features", minimum=1)
    check_choice(layout, "layout", LAYOUTS, name=name)
    check, fans = _fan_in_check(n, layout, name, f"in_features={n}")
    bound = 1 / math.sqrt(n)
    return LayerInit(
        _uniform(bound, f"{name}.kernel", dtype, check_shape=check, fans=fans),
        _uniform(bound, f"{name}.bias", dtype),
    )


def torch_bias(fan_in: int, dtype: DTypeLike = None) -> Initializer:
    """PyTorch's Linear/Conv bias: b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), Var(b) = 1 / (3 fan_in).

    Args:
      fan_in: the kernel's fan_in (``in_features``; ``in_channels / groups *
        prod(kernel_size)``), which the bias shape alone does not tell.
      dtype: default dtype.

    Returns:
      ``init(key, shape, dtype=dtype, out_sharding=None)``, any shape.

    Examples:
      >>> dense = flax.linen.Dense(10, bias_init=jwinit.presets.torch_bias(784))
    """
    n = check_int(fan_in, "fan_in", minimum=1)
    return _uniform(1 / math.sqrt(n), "torch_bias", dtype)


def torch_linear(in_features: int, *, layout: str = "flax", dtype: DTypeLike = None) -> LayerInit:
    """``torch.nn.Linear`` defaults: weight and bias ~ U(-1/sqrt(in), 1/sqrt(in)).

    PyTorch's ``kaiming_uniform_(weight, a=sqrt(5))`` has bound sqrt(6 / ((1 + 5) fan_in)) =
    1 / sqrt(fan_in); the bias uses the same bound. Var(W) = Var(b) = 1 / (3 in_features).

    Args:
      in_features: the layer's input size (its fan_in).
      layout: ``'flax'`` (kernel ``(in, out)``, default), ``'torch'`` (weight ``(out, in)``).
      dtype: default dtype.

    Returns:
      `LayerInit` (``kernel_init``, ``bias_init``); the kernel initializer raises ``ValueError``
      for a shape whose fan_in is not `in_features`.

    Examples:
      >>> layer = flax.linen.Dense(10, **jwinit.presets.torch_linear(784)._asdict())
    """
    return _fan_in_uniform_layer("torch_linear", in_features, layout, dtype)


def torch_conv(
    in_channels: int,
    kernel_size: Sequence[int],
    *,
    groups: int = 1,
    layout: str = "flax",
    dtype: DTypeLike = None,
) -> LayerInit:
    """``torch.nn.Conv1d/2d/3d`` defaults: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    fan_in = in_channels / groups * prod(kernel_size), as PyTorch computes it from the weight
    ``(out, in / groups, *kernel_size)``. Var(W) = Var(b) = 1 / (3 fan_in).

    Args:
      in_channels: input channels of the convolution.
      kernel_size: the spatial kernel size, a sequence (``(3, 3)`` for a 2-D conv).
      groups: feature groups; must divide `in_channels`.
      layout: ``'flax'`` (kernel ``(*kernel_size, in / groups, out)``, default) or ``'torch'``
        (``(out, in / groups, *kernel_size)``; ``'equinox'`` is the same).
      dtype: default dtype.

    Returns:
      `LayerInit`; the kernel initializer checks the kernel's shape against the arguments.

    Examples:
      >>> conv = flax.linen.Conv(64, (3, 3), **jwinit.presets.torch_conv(32, (3, 3))._asdict())
    """
    c_in = check_int(in_channels, "in_channels", minimum=1)
    g = check_int(groups, "groups", minimum=1)
    if c_in % g:
        raise ValueError(f"`groups`={g} must divide `in_channels`={c_in}.")
    ks = _kernel_size(kernel_size, "torch_conv")
    check_choice(layout, "layout", LAYOUTS, name="torch_conv")
    if layout == "equinox":
        layout = "torch"
    fan_in = c_in // g * prod(ks)

    def check(shape):
        if layout == "flax":
            spatial, c = tuple(shape[:-2]), shape[-2] if len(shape) >= 2 else None
        else:
            spatial, c = tuple(shape[2:]), shape[1] if len(shape) >= 2 else None
        if len(shape) != len(ks) + 2 or spatial != ks or c != c_in // g:
            want = (*ks, c_in // g, "out") if layout == "flax" else ("out", c_in // g, *ks)
            raise ValueError(
                f"`torch_conv` was built for kernel_size={ks}, in_channels={c_in}, groups={g} "
                f"(a kernel of shape {want} in layout {layout!r}), got shape {shape}."
            )

    spec = fan_spec(layout=layout)
    bound = 1 / math.sqrt(fan_in)
    return LayerInit(
        _uniform(bound, "torch_conv.kernel", dtype, check_shape=check, fans=spec.fans),
        _uniform(bound, "torch_conv.bias", dtype),
    )


def torch_embedding(dtype: DTypeLike = None, *, padding_idx: int | None = None) -> Initializer:
    """``torch.nn.Embedding`` default: W ~ N(0, 1), Var(W) = 1; the `padding_idx` row zero.

    Flax's own ``nn.Embed`` default is N(0, 1 / features) instead. With `padding_idx` (an index
    of the first axis, negative counts from the end as in PyTorch) that row is zero, as PyTorch's
    ``nn.Embedding(num, dim, padding_idx=i)`` makes it; over the entries of an (n, d) table
    Var(W) = (n - 1) / n then.

    Args:
      dtype: default dtype.
      padding_idx: the row to zero, or None.

    Returns:
      ``init(key, shape, dtype=dtype, out_sharding=None)``; a table ``(num_embeddings,
      features)`` in both frameworks.

    Examples:
      >>> init = jwinit.presets.torch_embedding(padding_idx=0)
      >>> table = init(jax.random.key(0), (5, 3))
      >>> bool((table[0] == 0).all()), bool((table[1:] != 0).all())
      (True, True)
      >>> embed = flax.linen.Embed(50257, 768, embedding_init=jwinit.presets.torch_embedding())
    """
    if padding_idx is not None:
        padding_idx = check_int(padding_idx, "padding_idx", name="torch_embedding")

    def row(shape):
        if padding_idx is None:
            return None
        n = shape[0] if shape else 0
        if not -n <= padding_idx < n:
            raise ValueError(f"`padding_idx`={padding_idx} of `torch_embedding` is out of range "
                             f"for a table of shape {shape}; legal: {-n} .. {n - 1}.")
        return padding_idx % n

    def check_shape(shape):
        if padding_idx is not None and len(shape) < 1:
            raise ValueError(f"`torch_embedding` with a `padding_idx` needs a table of rank >= 1, "
                             f"got shape {shape}.")
        row(shape)

    def sample(key, shape, dtype):
        w = flat(sample_normal, key, shape, compute_dtype(dtype))
        r = row(shape)
        return w if r is None else w.at[r].set(0)

    def describe(shape, dtype):
        n = shape[0] if shape else 1
        var = 1.0 if padding_idx is None else (n - 1) / n
        return {"distribution": "normal", "mean": 0.0, "variance": var,
                "bounds": (-math.inf, math.inf), "padding_idx": padding_idx}

    return make_initializer(sample, name="torch_embedding", dtype=dtype, describe=describe,
                            check_shape=check_shape, params={"padding_idx": padding_idx})


def torch_multihead_attention(embed_dim: int, *, kdim: int | None = None,
                              vdim: int | None = None, dtype: DTypeLike = None
                              ) -> AttentionInit:
    """``torch.nn.MultiheadAttention`` defaults, for Flax's multi-head attention layers.

    PyTorch initializes (``_reset_parameters``), with E = `embed_dim`:

    * the query/key/value projections with ``xavier_uniform_``. When kdim = vdim = E they are one
      packed (3E, E) matrix, so fan_out = 3E: U(+-sqrt(6 / (4E))), Var = 1 / (2E). Otherwise each
      is its own (E, d_in) matrix: U(+-sqrt(6 / (d_in + E))).
    * their biases with zeros;
    * the output projection as an ``nn.Linear(E, E)``, U(+-1/sqrt(E)), Var = 1 / (3E); its bias
      with zeros.

    In Flax (``nn.MultiHeadDotProductAttention(num_heads, **preset._asdict())``) the q/k/v kernels
    are (d_in, heads, head_dim) and the output kernel (heads, head_dim, E); the initializers check
    those shapes and read d_in off the first axis.

    Args:
      embed_dim: E = heads * head_dim.
      kdim, vdim: the key and value input sizes (default E).
      dtype: default dtype.

    Returns:
      `AttentionInit` (``kernel_init``, ``out_kernel_init``, ``bias_init``, ``out_bias_init``).

    Examples:
      >>> mha = flax.linen.MultiHeadDotProductAttention(
      ...     8, **jwinit.presets.torch_multihead_attention(512)._asdict())
      >>> init = jwinit.presets.torch_multihead_attention(512).kernel_init
      >>> round(jwinit.describe(init, (512, 8, 64)).variance * 2 * 512, 12)   # Var = 1 / (2E)
      1.0
    """
    e = check_int(embed_dim, "embed_dim", minimum=1, name="torch_multihead_attention")
    ins = {e}
    for arg, v in (("kdim", kdim), ("vdim", vdim)):
        if v is not None:
            ins.add(check_int(v, arg, minimum=1, name="torch_multihead_attention"))
    packed = ins == {e}

    def check_in(shape):
        if len(shape) < 2 or prod(shape[1:]) != e or shape[0] not in ins:
            raise ValueError(
                f"`torch_multihead_attention` was built for embed_dim={e} with inputs of size "
                f"{sorted(ins)}: a q/k/v kernel has shape (d_in, heads, head_dim) with "
                f"heads * head_dim = {e}; got shape {shape}."
            )

    def in_bound(shape):
        return math.sqrt(6 / (4 * e)) if packed else math.sqrt(6 / (shape[0] + e))

    def check_out(shape):
        if len(shape) < 2 or prod(shape[:-1]) != e or shape[-1] != e:
            raise ValueError(
                f"`torch_multihead_attention` was built for embed_dim={e}: the output kernel has "
                f"shape (heads, head_dim, {e}) with heads * head_dim = {e}; got shape {shape}."
            )

    return AttentionInit(
        _uniform(in_bound, "torch_multihead_attention.kernel", dtype, check_shape=check_in),
        _uniform(1 / math.sqrt(e), "torch_multihead_attention.out_kernel", dtype,
                 check_shape=check_out),
        zeros(dtype),
        zeros(dtype),
    )


def torch_bilinear(in1_features: int, *, layout: str = "flax",
                   dtype: DTypeLike = None) -> LayerInit:
    """``torch.nn.Bilinear`` defaults: weight and bias ~ U(-1/sqrt(in1), 1/sqrt(in1)).

    y = x1^T A x2 + b with A of shape (out, in1, in2) in PyTorch; the bound uses in1 only
    (``1 / sqrt(weight.size(1))``). Var(W) = Var(b) = 1 / (3 in1). Flax has no bilinear layer;
    the preset's kernel is ``(in1, in2, out)`` by default (``layout='torch'`` for PyTorch's).

    Args:
      in1_features: the size of the first input.
      layout: ``'flax'`` (``(in1, in2, out)``) or ``'torch'`` (``(out, in1, in2)``).
      dtype: default dtype.

    Returns:
      `LayerInit`; the kernel initializer checks that the kernel's in1 axis is `in1_features`.

    Examples:
      >>> w = jwinit.presets.torch_bilinear(20).kernel_init(jax.random.key(0), (20, 30, 40))
    """
    n = check_int(in1_features, "in1_features", minimum=1, name="torch_bilinear")
    check_choice(layout, "layout", ("flax", "torch"), name="torch_bilinear")
    axis = 0 if layout == "flax" else 1

    def check(shape):
        if len(shape) != 3 or shape[axis] != n:
            want = (n, "in2", "out") if layout == "flax" else ("out", n, "in2")
            raise ValueError(f"`torch_bilinear` was built for in1_features={n}: a kernel of shape "
                             f"{want} in layout {layout!r}; got shape {shape}.")

    bound = 1 / math.sqrt(n)
    return LayerInit(_uniform(bound, "torch_bilinear.kernel", dtype, check_shape=check),
                     _uniform(bound, "torch_bilinear.bias", dtype))


def torch_conv_transpose(out_channels: int, kernel_size: Sequence[int], *, groups: int = 1,
                         layout: str = "flax", dtype: DTypeLike = None) -> LayerInit:
    """``torch.nn.ConvTranspose1d/2d/3d`` defaults: weight and bias ~ U(+-1/sqrt(fan_in)).

    PyTorch stores a transposed convolution's weight as ``(in, out / groups, *kernel_size)`` and
    reads its fan_in off axis 1, so fan_in = out_channels / groups * prod(kernel_size) (not the
    input channels, as for ``nn.Conv``). Var(W) = Var(b) = 1 / (3 fan_in).

    Args:
      out_channels: the output channels.
      kernel_size: the spatial kernel size, a sequence.
      groups: feature groups; must divide `out_channels`.
      layout: ``'flax'`` (``flax.linen.ConvTranspose`` kernel ``(*kernel_size, in, out)``) or
        ``'torch'`` (``(in, out / groups, *kernel_size)``).
      dtype: default dtype.

    Returns:
      `LayerInit`; the kernel initializer checks the kernel's shape against the arguments.

    Examples:
      >>> up = flax.linen.ConvTranspose(
      ...     32, (4, 4), **jwinit.presets.torch_conv_transpose(32, (4, 4))._asdict())
    """
    c_out = check_int(out_channels, "out_channels", minimum=1, name="torch_conv_transpose")
    g = check_int(groups, "groups", minimum=1, name="torch_conv_transpose")
    if c_out % g:
        raise ValueError(f"`groups`={g} must divide `out_channels`={c_out}.")
    ks = _kernel_size(kernel_size, "torch_conv_transpose")
    check_choice(layout, "layout", ("flax", "torch"), name="torch_conv_transpose")
    fan_in = c_out // g * prod(ks)

    def check(shape):
        if layout == "flax":
            ok = len(shape) == len(ks) + 2 and tuple(shape[:-2]) == ks and shape[-1] == c_out
            want = (*ks, "in", c_out)
        else:
            ok = len(shape) == len(ks) + 2 and tuple(shape[2:]) == ks and shape[1] == c_out // g
            want = ("in", c_out // g, *ks)
        if not ok:
            raise ValueError(f"`torch_conv_transpose` was built for out_channels={c_out}, "
                             f"kernel_size={ks}, groups={g} (a kernel of shape {want} in layout "
                             f"{layout!r}), got shape {shape}.")

    bound = 1 / math.sqrt(fan_in)
    return LayerInit(_uniform(bound, "torch_conv_transpose.kernel", dtype, check_shape=check),
                     _uniform(bound, "torch_conv_transpose.bias", dtype))


def torch_rnn(hidden_size: int, *, fuse_biases: bool = True, dtype: DTypeLike = None
              ) -> RecurrentInit:
    """``torch.nn.RNN``/``LSTM``/``GRU`` defaults: every weight and bias ~ U(+-1/sqrt(hidden)).

    PyTorch initializes all parameters of its recurrent layers, input and recurrent weights and
    both biases ``b_ih`` and ``b_hh``, with k = 1 / sqrt(hidden_size): Var = k^2 / 3, whatever
    the input size.

    PyTorch adds two biases where a Flax cell (``LSTMCell``, ``GRUCell``'s gates) has one. With
    ``fuse_biases=True`` (default) `bias_init` draws b_ih + b_hh, the sum of two independent
    U(-k, k) (triangular on [-2k, 2k], Var = 2 k^2 / 3), so a Flax cell starts from the same
    pre-activation distribution; ``fuse_biases=False`` gives one U(-k, k) per bias, for models
    that keep both.

    Args:
      hidden_size: the hidden size.
      fuse_biases: one bias standing for PyTorch's b_ih + b_hh.
      dtype: default dtype.

    Returns:
      `RecurrentInit` (``kernel_init``, ``recurrent_kernel_init``, ``bias_init``), the keyword
      names of ``flax.linen.LSTMCell``.

    Examples:
      >>> cell = flax.linen.LSTMCell(128, **jwinit.presets.torch_rnn(128)._asdict())
    """
    h = check_int(hidden_size, "hidden_size", minimum=1)
    if not isinstance(fuse_biases, bool):
        raise TypeError(f"`fuse_biases` must be a bool, got {fuse_biases!r}.")
    k = 1 / math.sqrt(h)
    return RecurrentInit(
        _uniform(k, "torch_rnn.kernel", dtype),
        _uniform(k, "torch_rnn.recurrent_kernel", dtype),
        _uniform(k, "torch_rnn.bias", dtype, terms=2 if fuse_biases else 1),
    )


torch_lstm = torch_rnn
torch_gru = torch_rnn


# --------------------------------------------------------------------------------------------
# Keras, Haiku, Flax, Equinox


def keras_dense(dtype: DTypeLike = None) -> LayerInit:
    """``keras.layers.Dense`` defaults: kernel glorot_uniform, bias zeros.

    Kernel U(+-sqrt(6 / (fan_in + fan_out))), Var(W) = 2 / (fan_in + fan_out) (fans as
    `jwinit.compute_fans`, the same convention as Keras); Keras kernels are ``(in, out)`` like
    Flax's.

    Args:
      dtype: default dtype.

    Returns:
      `LayerInit` (``kernel_init`` = `jwinit.glorot_uniform`, ``bias_init`` = `jwinit.zeros`).

    Examples:
      >>> layer = flax.linen.Dense(10, **jwinit.presets.keras_dense()._asdict())
    """
    return LayerInit(glorot_uniform(dtype=dtype), zeros(dtype))


def keras_conv(dtype: DTypeLike = None) -> LayerInit:
    """``keras.layers.Conv1D/2D/3D`` (and ``Conv*DTranspose``) defaults: glorot_uniform, zeros.

    Keras computes a conv kernel's fans as jwinit does for Flax's HWIO layout: fan_in =
    prod(kernel_size) * in_channels, fan_out = prod(kernel_size) * out_channels (a transposed
    conv's kernel ``(*k, out, in)`` swaps them, which Glorot's fan_avg does not see), so
    Var(W) = 2 / (fan_in + fan_out).

    Args:
      dtype: default dtype.

    Returns:
      `LayerInit` (``kernel_init`` = `jwinit.glorot_uniform`, ``bias_init`` = `jwinit.zeros`).

    Examples:
      >>> conv = flax.linen.Conv(64, (3, 3), **jwinit.presets.keras_conv()._asdict())
    """
    return LayerInit(glorot_uniform(dtype=dtype), zeros(dtype))


def haiku_linear(dtype: DTypeLike = None) -> LayerInit:
    """``hk.Linear`` defaults: W = z / sqrt(fan_in), z ~ N(0, 1) truncated to [-2, 2]; bias 0.

    Haiku's ``TruncatedNormal(stddev=1 / sqrt(fan_in))`` does not rescale after truncating, so
    Var(W) = 0.7737 / fan_in (0.7737 = Var(z)), not 1 / fan_in as `jwinit.lecun_normal`.
    Complex dtypes follow Haiku too: real and imaginary parts are independent such draws, so
    E|W|^2 = 2 * 0.7737 / fan_in. fan_in = shape[-2] (Haiku's and Flax's kernels are
    ``(in, out)``); the same op sequence as Haiku's for the same key.

    Args:
      dtype: default dtype.

    Returns:
      `LayerInit`; the kernel initializer reads fan_in from the kernel shape.

    Examples:
      >>> layer = flax.linen.Dense(10, **jwinit.presets.haiku_linear()._asdict())
    """
    spec = fan_spec()

    def sample(key, shape, dtype):
        cd = compute_dtype(dtype)
        s = 1 / math.sqrt(max(spec.fans(shape)[0], 1))
        if is_complex(cd):
            rd = real_dtype(cd)
            z = flat(_truncated_normal, key, (2, *shape), rd)
            return jax.lax.complex(z[0] * jnp.array(s, rd), z[1] * jnp.array(s, rd))
        return jnp.array(s, cd) * flat(_truncated_normal, key, shape, cd)

    def describe(shape, dtype):
        fan_in, fan_out = spec.fans(shape)
        s = 1 / math.sqrt(max(fan_in, 1))
        m = 2 if is_complex(dtype) else 1
        return {"fan_in": fan_in, "fan_out": fan_out, "mode": "fan_in",
                "distribution": "truncated_normal", "mean": 0.0,
                "variance": m * _TRUNC_VAR * s * s, "target_variance": s * s,
                "bounds": (-2 * s, 2 * s)}

    kernel = make_initializer(sample, name="haiku_linear.kernel", dtype=dtype,
                              describe=describe, check_shape=spec.fans)
    return LayerInit(kernel, zeros(dtype))


def flax_dense(dtype: DTypeLike = None) -> LayerInit:
    """``flax.linen.Dense``/``nnx.Linear`` defaults: kernel lecun_normal, bias zeros.

    Kernel: truncated normal [-2, 2] rescaled to Var(W) = 1 / fan_in (the same values as Flax's
    default for the same key); bias 0. Useful to compare against, or for code that builds layers
    with explicit initializers.

    Args:
      dtype: default dtype.

    Returns:
      `LayerInit` (``kernel_init`` = `jwinit.lecun_normal`, ``bias_init`` = `jwinit.zeros`).

    Examples:
      >>> layer = flax.linen.Dense(10, **jwinit.presets.flax_dense()._asdict())  # as nn.Dense(10)
    """
    return LayerInit(lecun_normal(dtype=dtype), zeros(dtype))


def equinox_linear(in_features: int, *, layout: str = "flax", dtype: DTypeLike = None
                   ) -> LayerInit:
    """``eqx.nn.Linear`` defaults: weight and bias ~ U(-1/sqrt(in), 1/sqrt(in)).

    Var(W) = Var(b) = 1 / (3 in_features). Equinox stores the weight as ``(out, in)``; the preset
    defaults to the Flax kernel ``(in, out)`` (``layout='equinox'`` for Equinox's own).

    Args:
      in_features: the layer's input size (1 for Equinox's ``'scalar'``).
      layout: ``'flax'`` (default) or ``'equinox'``.
      dtype: default dtype.

    Returns:
      `LayerInit` (``kernel_init``, ``bias_init``).

    Examples:
      >>> layer = flax.linen.Dense(10, **jwinit.presets.equinox_linear(784)._asdict())
    """
    return _fan_in_uniform_layer("equinox_linear", in_features, layout, dtype)


# A preset passed where its initializer belongs (``embedding_init=presets.torch_embedding``)
# would be called with a PRNG key: every public preset refuses that with a "call it" message.
for _name in __all__:
    _obj = globals()[_name]
    if callable(_obj) and not isinstance(_obj, type) and _name not in ("torch_lstm", "torch_gru"):
        globals()[_name] = guard_factory(_obj, f"presets.{_name}")
torch_lstm = torch_gru = torch_rnn  # noqa: F811 - the same (guarded) preset under three names
del _name, _obj

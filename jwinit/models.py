"""Reference Flax models for the experiments: the architectures the initialization papers train.

`ResidualMLP` is the residual network of Fixup (Zhang, Dauphin & Ma 2019) in fully connected form:
a ``stem`` Dense, `blocks` pre-activation residual blocks ``x + F(x)`` named ``block_0`` ...
(``F`` = `branch_layers` Dense layers ``Dense_0`` ... each after the activation, with an optional
BatchNorm or LayerNorm before each activation), and a ``head`` Dense.

`Transformer` is an encoder for token sequences (T-Fixup, DeepNet and GPT-2 initialize it): an
``embed`` table and a learned ``pos_embed``, `layers` blocks ``block_<i>`` of self-attention
(``attn`` with Dense ``query``, ``key``, ``value``, ``out`` of (dim, dim) kernels) and an MLP
(``mlp_in``, ``mlp_out``), with Pre-LN, Post-LN (with the DeepNorm residual scale `alpha`) or no
LayerNorm at all, then the mean over tokens and a ``head`` Dense.

`ResNet` is the convolutional residual network of He et al. 2016 and Fixup in small form: a
``stem`` 3x3 Conv, stages of pre-activation blocks ``block_<i>`` (``Conv_0`` ... each 3x3, after
the activation and the optional normalization; the first block of a later stage halves the
resolution and doubles the channels, with a 1x1 ``shortcut`` Conv), a global average pool and a
``head`` Dense.

`RNN` is the simple recurrent network of Le, Jaitly & Hinton 2015 (IRNN):
``h_t = phi(input(x_t) + h_{t-1} recurrent/kernel)``, ``out = head(h_T)``.

`MLP` is the fully connected network of He et al. 2015, Glorot & Bengio 2010 and Schoenholz et
al. 2017: `depth` hidden ``Dense`` layers of `width` units with one activation, then a ``Dense``
readout. Its layers are named ``Dense_0`` ... ``Dense_{depth}`` (the readout is the last), so path
patterns such as ``'Dense_0/kernel'`` address them.

Examples:
  >>> model = jwinit.models.MLP(depth=2, width=16, output_dim=3)
  >>> variables = model.init(jax.random.key(0), jnp.ones((4, 8)))
  >>> sorted(variables['params'])
  ['Dense_0', 'Dense_1', 'Dense_2']
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jwinit._unit_scaling import attention as unit_attention
from jwinit._unit_scaling import embedding as unit_embedding
from jwinit._unit_scaling import linear as unit_linear
from jwinit._unit_scaling import residual_add, residual_split, residual_taus, silu_glu
from jwinit._unit_scaling import rms_norm as unit_rms_norm
from jwinit.activations import get_activation

__all__ = ["MLP", "ResidualMLP", "ResNet", "RNN", "Transformer", "Decoder", "DecoderBlock",
           "AXIS_RULES", "DECODER_SIZES"]

NORMS = (None, "batch", "layer")
LAYER_NORMS = (None, "pre", "post")


class MLP(nn.Module):
    """`depth` hidden layers of `width` units and `activation`, then a linear readout.

    Attributes:
      depth: hidden layers (>= 0; 0 is a linear model).
      width: units per hidden layer, or a tuple of `depth` widths, one per hidden layer (e.g. the
        deep autoencoder ``depth=5, width=(256, 128, 32, 128, 256)`` with ``output_dim=64``).
      output_dim: units of the readout (classes, or the regression target's size).
      activation: a name from `jwinit.activation_names()` or a callable.
      use_bias: biases in every layer.
      kernel_init, bias_init: the layers' own initializers (what `jwinit.train` keeps for
        parameters its `inits` do not cover).

    Inputs of any shape (batch, ...) are flattened to (batch, features).
    """

    depth: int
    width: int
    output_dim: int
    activation: Any = "relu"
    use_bias: bool = True
    kernel_init: Any = nn.initializers.lecun_normal()
    bias_init: Any = nn.initializers.zeros

    def hidden_widths(self) -> tuple[int, ...]:
        """The widths of the hidden layers in order (`width` repeated `depth` times, or the tuple
        `width`); a clear error for a bad `depth` or `width`. Works on an unbound module."""
        depth, width = self.depth, self.width
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
            raise ValueError(f"`depth` must be an int >= 0, got {depth!r}.")
        if isinstance(width, int) and not isinstance(width, bool):
            if width < 1:
                raise ValueError(f"`width` must be >= 1, got {width!r}.")
            return (width,) * depth
        if (not isinstance(width, tuple | list) or len(width) != depth
                or not all(isinstance(w, int) and not isinstance(w, bool) and w >= 1
                           for w in width)):
            raise ValueError(f"`width` must be an int >= 1 or a tuple of `depth` ({depth}) ints "
                             f">= 1, got {width!r}.")
        return tuple(width)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        phi = get_activation(self.activation)
        h = jnp.reshape(x, (x.shape[0], -1))
        for width in self.hidden_widths():
            h = phi(nn.Dense(width, use_bias=self.use_bias, kernel_init=self.kernel_init,
                             bias_init=self.bias_init)(h))
        return nn.Dense(self.output_dim, use_bias=self.use_bias, kernel_init=self.kernel_init,
                        bias_init=self.bias_init)(h)


def _normalize(h: jax.Array, norm: str | None, train: bool) -> jax.Array:
    """The optional normalization before a branch layer: BatchNorm, LayerNorm or none."""
    if norm == "batch":
        return nn.BatchNorm(use_running_average=not train)(h)
    if norm == "layer":
        return nn.LayerNorm()(h)
    return h


class _Block(nn.Module):
    width: int
    layers: int
    activation: Any
    norm: str | None
    kernel_init: Any

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        phi = get_activation(self.activation)
        h = x
        for _ in range(self.layers):
            h = nn.Dense(self.width, kernel_init=self.kernel_init)(
                phi(_normalize(h, self.norm, train)))
        return x + h


class ResidualMLP(nn.Module):
    """A fully connected pre-activation residual network (the Fixup paper's setting).

    ``h_0 = stem(x)``; ``h_{l+1} = h_l + F_l(h_l)`` with
    ``F_l = Dense_{m-1}(phi(N(... Dense_0(phi(N(h_l))))))`` (``N``: the optional normalization);
    ``out = head(phi(h_L))``.

    Attributes:
      blocks: L, residual blocks (>= 1), named ``block_0`` ... ``block_{L-1}``.
      width: units of the stream and of every branch layer.
      output_dim: units of the ``head``.
      branch_layers: m, Dense layers per branch (>= 1).
      activation: a name from `jwinit.activation_names()` or a callable.
      norm: None, 'batch' (BatchNorm: pass ``train=True`` in training) or 'layer'.
      kernel_init: every Dense's default kernel initializer (biases zero).
    """

    blocks: int
    width: int
    output_dim: int
    branch_layers: int = 2
    activation: Any = "relu"
    norm: str | None = None
    kernel_init: Any = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        for name in ("blocks", "branch_layers"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"`{name}` must be an int >= 1, got {v!r}.")
        if self.norm not in NORMS:
            raise ValueError(f"`norm` must be one of {NORMS}, got {self.norm!r}.")
        h = jnp.reshape(x, (x.shape[0], -1))
        h = nn.Dense(self.width, kernel_init=self.kernel_init, name="stem")(h)
        for i in range(self.blocks):
            h = _Block(self.width, self.branch_layers, self.activation, self.norm,
                       self.kernel_init, name=f"block_{i}")(h, train)
        phi = get_activation(self.activation)
        return nn.Dense(self.output_dim, kernel_init=self.kernel_init, name="head")(phi(h))


class _ConvBlock(nn.Module):
    channels: int
    layers: int
    stride: int
    activation: Any
    norm: str | None
    kernel_init: Any

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        phi = get_activation(self.activation)
        h = x
        for i in range(self.layers):
            stride = self.stride if i == 0 else 1
            h = nn.Conv(self.channels, (3, 3), strides=(stride, stride), padding="SAME",
                        kernel_init=self.kernel_init)(phi(_normalize(h, self.norm, train)))
        if self.stride != 1 or x.shape[-1] != self.channels:
            x = nn.Conv(self.channels, (1, 1), strides=(self.stride, self.stride),
                        kernel_init=self.kernel_init, name="shortcut")(x)
        return x + h


class ResNet(nn.Module):
    """A small convolutional pre-activation residual network (He et al. 2016; Fixup's ResNets).

    ``h = stem(x)``; every block ``h <- shortcut(h) + F(h)`` with
    ``F = Conv_{m-1}(phi(N(... Conv_0(phi(N(h))))))`` (3x3 convolutions, ``N`` the optional
    normalization, ``shortcut`` the identity or, where a stage starts, a strided 1x1 Conv);
    ``out = head(mean over positions of phi(h))``.

    Attributes:
      stages: blocks per stage, e.g. ``(2, 2, 2)``; blocks are numbered ``block_0`` ... across
        stages; stage s has ``channels * 2**s`` channels and, for s > 0, starts with stride 2.
      channels: the stem's and the first stage's channels.
      output_dim: units of the ``head``.
      branch_layers: m, convolutions per block (>= 1).
      activation: a name from `jwinit.activation_names()` or a callable.
      norm: None, 'batch' (BatchNorm: pass ``train=True`` in training) or 'layer'.
      image_shape: (height, width, channels) that flat inputs (batch, features) are reshaped to
        (e.g. ``(8, 8, 1)`` for `jwinit.data.digits`); None takes (batch, H, W, C) inputs.
      kernel_init: every layer's default kernel initializer (biases zero).

    `jwinit.fixup_rules(sum(stages), m, branch_last=f'Conv_{m-1}')` is Fixup for it.

    Examples:
      >>> model = jwinit.models.ResNet(stages=(1, 1), channels=4, output_dim=3,
      ...                              image_shape=(8, 8, 1))
      >>> variables = model.init(jax.random.key(0), jnp.ones((2, 64)))
      >>> sorted(variables['params']['block_1'])
      ['Conv_0', 'Conv_1', 'shortcut']
    """

    stages: tuple[int, ...]
    channels: int
    output_dim: int
    branch_layers: int = 2
    activation: Any = "relu"
    norm: str | None = None
    image_shape: tuple[int, int, int] | None = None
    kernel_init: Any = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        stages = tuple(self.stages)
        if not stages or any(isinstance(b, bool) or not isinstance(b, int) or b < 1
                             for b in stages):
            raise ValueError(f"`stages` must be a non-empty tuple of ints >= 1, got "
                             f"{self.stages!r}.")
        for name in ("channels", "branch_layers"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"`{name}` must be an int >= 1, got {v!r}.")
        if self.norm not in NORMS:
            raise ValueError(f"`norm` must be one of {NORMS}, got {self.norm!r}.")
        if self.image_shape is not None:
            shape = tuple(self.image_shape)
            if x.ndim != 2 or x.shape[1] != math.prod(shape):
                raise ValueError(f"inputs must be (batch, {math.prod(shape)}) to reshape to "
                                 f"`image_shape` {shape}, got shape {x.shape}.")
            x = x.reshape((x.shape[0], *shape))
        if x.ndim != 4:
            raise ValueError(f"inputs must be images (batch, height, width, channels), got shape "
                             f"{x.shape}; set `image_shape` for flat inputs.")
        h = nn.Conv(self.channels, (3, 3), padding="SAME", kernel_init=self.kernel_init,
                    name="stem")(x)
        i = 0
        for s, blocks in enumerate(stages):
            for b in range(blocks):
                h = _ConvBlock(self.channels * 2**s, self.branch_layers,
                               2 if (s > 0 and b == 0) else 1, self.activation, self.norm,
                               self.kernel_init, name=f"block_{i}")(h, train)
                i += 1
        phi = get_activation(self.activation)
        return nn.Dense(self.output_dim, kernel_init=self.kernel_init,
                        name="head")(phi(h).mean(axis=(1, 2)))


class _Recurrence(nn.Module):
    width: int
    activation: Any
    kernel_init: Any

    @nn.compact
    def __call__(self, u: jax.Array) -> jax.Array:
        phi = get_activation(self.activation)
        kernel = self.param("kernel", self.kernel_init, (self.width, self.width), u.dtype)

        def step(h, u_t):
            h = phi(u_t + h @ kernel)
            return h, None

        h0 = jnp.zeros((u.shape[0], self.width), u.dtype)
        h, _ = jax.lax.scan(step, h0, jnp.swapaxes(u, 0, 1))
        return h


class RNN(nn.Module):
    """A simple (Elman) recurrent network over sequences, read out at the last step.

    ``h_0 = 0``; ``h_t = phi(x_t input/kernel + input/bias + h_{t-1} recurrent/kernel)``;
    ``out = head(h_T)``. With ``activation='relu'`` and ``recurrent/kernel`` the identity this is
    the IRNN of Le, Jaitly & Hinton 2015 (`jwinit.irnn`).

    Attributes:
      width: hidden units.
      output_dim: units of the ``head``.
      activation: a name from `jwinit.activation_names()` or a callable.
      kernel_init: the input and head kernels' default initializer; recurrent_init: the
        recurrent kernel's (biases zero).

    Inputs are (batch, steps, features); the recurrence is one ``lax.scan``.

    Examples:
      >>> model = jwinit.models.RNN(width=8, output_dim=1)
      >>> variables = model.init(jax.random.key(0), jnp.ones((2, 5, 2)))
      >>> jax.tree.map(jnp.shape, variables['params']['recurrent'])
      {'kernel': (8, 8)}
    """

    width: int
    output_dim: int
    activation: Any = "tanh"
    kernel_init: Any = nn.initializers.lecun_normal()
    recurrent_init: Any = nn.initializers.orthogonal()

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if isinstance(self.width, bool) or not isinstance(self.width, int) or self.width < 1:
            raise ValueError(f"`width` must be an int >= 1, got {self.width!r}.")
        if x.ndim != 3:
            raise ValueError(f"inputs must be sequences (batch, steps, features), got shape "
                             f"{x.shape}.")
        u = nn.Dense(self.width, kernel_init=self.kernel_init, name="input")(x)
        h = _Recurrence(self.width, self.activation, self.recurrent_init, name="recurrent")(u)
        return nn.Dense(self.output_dim, kernel_init=self.kernel_init, name="head")(h)


class _SelfAttention(nn.Module):
    dim: int
    heads: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        b, t, _ = x.shape
        hd = self.dim // self.heads

        def split(name):
            return nn.Dense(self.dim, name=name)(x).reshape(b, t, self.heads, hd)

        q, k, v = split("query"), split("key"), split("value")
        logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) / jnp.sqrt(jnp.asarray(hd, x.dtype))
        att = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(logits, axis=-1), v)
        return nn.Dense(self.dim, name="out")(att.reshape(b, t, self.dim))


class _EncoderBlock(nn.Module):
    dim: int
    heads: int
    mlp_dim: int
    norm: str | None
    alpha: float
    activation: Any

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        phi = get_activation(self.activation)
        attn = _SelfAttention(self.dim, self.heads, name="attn")

        def mlp(h):
            return nn.Dense(self.dim, name="mlp_out")(phi(nn.Dense(self.mlp_dim, name="mlp_in")(h)))

        if self.norm == "pre":
            x = x + attn(nn.LayerNorm(name="ln_attn")(x))
            return x + mlp(nn.LayerNorm(name="ln_mlp")(x))
        if self.norm == "post":
            x = nn.LayerNorm(name="ln_attn")(self.alpha * x + attn(x))
            return nn.LayerNorm(name="ln_mlp")(self.alpha * x + mlp(x))
        x = x + attn(x)
        return x + mlp(x)


class Transformer(nn.Module):
    """A Transformer encoder over integer token sequences, ending in a classification ``head``.

    Attributes:
      vocab_size: the number of token values (inputs are ints in [0, vocab_size)).
      length: the longest sequence (the learned positional table's size).
      layers: encoder blocks (>= 1), named ``block_0`` ...
      dim: model width (divisible by `heads`); heads: attention heads; mlp_dim: MLP hidden width.
      output_dim: units of the ``head`` (classes).
      norm: 'pre' (Pre-LN, a final ``ln_final``), 'post' (Post-LN: ``LN(alpha x + F(x))``; DeepNorm
        with ``alpha = jwinit.deepnorm_constants(layers)['encoder'].alpha``) or None (no
        normalization: what T-Fixup initializes).
      alpha: the Post-LN residual scale (1 is standard Post-LN).
      activation: the MLP's activation.
    """

    vocab_size: int
    length: int
    layers: int
    dim: int
    heads: int
    mlp_dim: int
    output_dim: int
    norm: str | None = "pre"
    alpha: float = 1.0
    activation: Any = "relu"

    @nn.compact
    def __call__(self, tokens: jax.Array) -> jax.Array:
        if isinstance(self.layers, bool) or not isinstance(self.layers, int) or self.layers < 1:
            raise ValueError(f"`layers` must be an int >= 1, got {self.layers!r}.")
        if self.norm not in LAYER_NORMS:
            raise ValueError(f"`norm` must be one of {LAYER_NORMS}, got {self.norm!r}.")
        if self.dim % self.heads:
            raise ValueError(f"`dim` ({self.dim}) must be divisible by `heads` ({self.heads}).")
        if tokens.ndim != 2 or tokens.shape[1] > self.length:
            raise ValueError(f"inputs must be (batch, length <= {self.length}) tokens, got shape "
                             f"{tokens.shape}.")
        x = nn.Embed(self.vocab_size, self.dim, name="embed")(tokens.astype(jnp.int32))
        pos = self.param("pos_embed", nn.initializers.normal(0.02), (self.length, self.dim))
        x = x + pos[None, : tokens.shape[1]]
        for i in range(self.layers):
            x = _EncoderBlock(self.dim, self.heads, self.mlp_dim, self.norm, self.alpha,
                              self.activation, name=f"block_{i}")(x)
        if self.norm == "pre":
            x = nn.LayerNorm(name="ln_final")(x)
        return nn.Dense(self.output_dim, name="head")(x.mean(axis=1))


# ------------------------------------------------------------------------------------------------
# Llama-style decoder with logical axis names

#: Flax logical axis rules for a ('data', 'model') mesh: embedding dimension over 'data' (fully
#: sharded parameters), the wide dimensions (vocabulary, MLP, attention heads) over 'model'.
AXIS_RULES = (("vocab", "model"), ("embed", "data"), ("mlp", "model"), ("heads", "model"),
              ("kv", "model"))

#: `Decoder` sizes used by the tests and the benchmark (parameter counts in the comments).
DECODER_SIZES = {
    "tiny": {"vocab_size": 256, "dim": 64, "layers": 2, "heads": 4, "mlp_dim": 128},  # 0.1M
    # GPT-2-small-shaped (d=768, 12 layers, 12 heads, SwiGLU of GPT-2's MLP size, untied): 134M
    "gpt2_small": {"vocab_size": 32000, "dim": 768, "layers": 12, "heads": 12, "mlp_dim": 2048},
    "1b": {"vocab_size": 32000, "dim": 2048, "layers": 18, "heads": 16, "mlp_dim": 5632},  # 1.07B
    "7b": {"vocab_size": 32000, "dim": 4096, "layers": 32, "heads": 32, "mlp_dim": 11008},  # 6.7B
}


def _dense(features: int, names: tuple[str, str], name: str) -> nn.Dense:
    return nn.Dense(features, use_bias=False, name=name,
                    kernel_init=nn.with_logical_partitioning(nn.initializers.lecun_normal(),
                                                             names))


def _rms_norm(name: str) -> nn.RMSNorm:
    return nn.RMSNorm(name=name, scale_init=nn.with_logical_partitioning(nn.initializers.ones,
                                                                         ("embed",)))


def _rotary(x: jax.Array, base: float = 10000.0) -> jax.Array:
    """Rotary position embedding (Su et al. 2021) of (batch, time, heads, head_dim) vectors."""
    t, d = x.shape[1], x.shape[-1]
    freq = base ** (-jnp.arange(0, d, 2, dtype=jnp.float32) / d)
    angle = jnp.arange(t, dtype=jnp.float32)[:, None] * freq[None, :]
    cos, sin = jnp.cos(angle)[None, :, None, :], jnp.sin(angle)[None, :, None, :]
    x1, x2 = x[..., 0::2].astype(jnp.float32), x[..., 1::2].astype(jnp.float32)
    out = jnp.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], axis=-1)
    return out.reshape(x.shape).astype(x.dtype)


class _UnitDense(nn.Module):
    """A bias-free unit-scaled dense layer (`jwinit._unit_scaling.linear`): its ``kernel`` is
    N(0, 1) with the same path and logical axes as `_dense`'s."""

    features: int
    names: tuple[str, str]
    readout: bool = False
    constraint: str | None = "to_output_scale"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", nn.with_logical_partitioning(nn.initializers.normal(1.0),
                                                                   self.names),
                            (x.shape[-1], self.features))
        return unit_linear(x, kernel, readout=self.readout, constraint=self.constraint)


class _UnitRMSNorm(nn.Module):
    """RMSNorm with a unit-scaled gain ``scale`` (ones, axes ('embed',))."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        scale = self.param("scale", nn.with_logical_partitioning(nn.initializers.ones,
                                                                 ("embed",)), (x.shape[-1],))
        return unit_rms_norm(x, scale)


class DecoderBlock(nn.Module):
    """One block of `Decoder` (``layer_<i>``): pre-norm causal self-attention and SwiGLU MLP,
    each branch added to the residual stream times `branch_multiplier`. Its output is the
    residual stream after the block (capture it with
    ``model.apply(..., capture_intermediates=lambda m, _: isinstance(m, DecoderBlock))``).
    With `unit_scaled` the block is u-muP's (see `Decoder`): each branch k enters as
    (h + tau_k f(h)) / sqrt(1 + tau_k^2), `taus` = (tau of attention, tau of the MLP)."""

    dim: int
    heads: int
    mlp_dim: int
    branch_multiplier: float
    unit_scaled: bool = False
    taus: tuple[float, float] = (1.0, 1.0)

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        if self.unit_scaled:
            return self._unit_scaled(h)
        b, t, _ = h.shape
        hd = self.dim // self.heads
        x = _rms_norm("attn_norm")(h)
        q = _dense(self.dim, ("embed", "heads"), "query")(x).reshape(b, t, self.heads, hd)
        k = _dense(self.dim, ("embed", "kv"), "key")(x).reshape(b, t, self.heads, hd)
        v = _dense(self.dim, ("embed", "kv"), "value")(x).reshape(b, t, self.heads, hd)
        q, k = _rotary(q), _rotary(k)
        logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) / jnp.sqrt(jnp.asarray(hd, q.dtype))
        causal = jnp.tril(jnp.ones((t, t), bool))
        logits = jnp.where(causal[None, None], logits, jnp.finfo(logits.dtype).min)
        att = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(logits, axis=-1), v)
        out = _dense(self.dim, ("heads", "embed"), "out")(att.reshape(b, t, self.dim))
        h = h + self.branch_multiplier * out
        x = _rms_norm("mlp_norm")(h)
        gate = _dense(self.mlp_dim, ("embed", "mlp"), "gate")(x)
        up = _dense(self.mlp_dim, ("embed", "mlp"), "up")(x)
        down = _dense(self.dim, ("mlp", "embed"), "down")(nn.silu(gate) * up)
        return h + self.branch_multiplier * down

    def _unit_scaled(self, h: jax.Array) -> jax.Array:
        """The u-muP block: unit-scaled ops (`jwinit._unit_scaling`), the reference's
        ``TransformerLayer`` with this block's rotary positions and norm gains."""
        b, t, _ = h.shape
        hd = self.dim // self.heads
        tau_attn, tau_mlp = self.taus
        x, skip = residual_split(h, tau_attn)
        x = _UnitRMSNorm(name="attn_norm")(x)
        q = _UnitDense(self.dim, ("embed", "heads"), name="query")(x).reshape(b, t, self.heads,
                                                                              hd)
        k = _UnitDense(self.dim, ("embed", "kv"), name="key")(x).reshape(b, t, self.heads, hd)
        v = _UnitDense(self.dim, ("embed", "kv"), name="value")(x).reshape(b, t, self.heads, hd)
        att = unit_attention(_rotary(q), _rotary(k), v, causal=True)
        out = _UnitDense(self.dim, ("heads", "embed"), name="out")(att.reshape(b, t, self.dim))
        h = residual_add(out, skip, tau_attn)
        x, skip = residual_split(h, tau_mlp)
        x = _UnitRMSNorm(name="mlp_norm")(x)
        # the reference's MLP: constraint None in all three (forward and backward mirrored)
        gate = _UnitDense(self.mlp_dim, ("embed", "mlp"), constraint=None, name="gate")(x)
        up = _UnitDense(self.mlp_dim, ("embed", "mlp"), constraint=None, name="up")(x)
        down = _UnitDense(self.dim, ("mlp", "embed"), constraint=None,
                          name="down")(silu_glu(up, gate))
        return residual_add(down, skip, tau_mlp)


class Decoder(nn.Module):
    """A Llama-style decoder-only language model whose every parameter has logical axis names.

    Token ids (batch, time) -> logits (batch, time, vocab_size): an ``embed`` table
    ('vocab', 'embed'), `layers` blocks ``layer_<i>`` of RMSNorm (``attn_norm``), causal
    self-attention with rotary positions (``attn`` kernels ``query`` ('embed', 'heads'), ``key``
    and ``value`` ('embed', 'kv'), ``out`` ('heads', 'embed'); no biases), RMSNorm
    (``mlp_norm``) and a SwiGLU MLP (``gate`` and ``up`` ('embed', 'mlp'), ``down``
    ('mlp', 'embed')), a final RMSNorm ``final_norm`` and an untied ``head`` ('embed', 'vocab').
    Norm scales are ('embed',). With `jwinit.models.AXIS_RULES` every parameter is sharded over a
    ('data', 'model') mesh.

    Args:
      vocab_size, dim, layers, heads, mlp_dim: the sizes (`DECODER_SIZES` has some).
      branch_multiplier: forward multiplier of every residual branch (1 for the standard
        parametrization; depth-aware parametrizations use L^-1/2 or L^-1).
      embed_multiplier: the embedding is read multiplied by it (Gemma: sqrt(dim)).
      embed_norm: a LayerNorm ``embed_norm`` right after the embedding (the small-embedding
        recipe, `jwinit.recipes.small_embedding_rules`).
      unit_scaled: u-muP (Blake et al. 2025, "u-muP: The Unit-Scaled Maximal Update
        Parametrization"): every weight N(0, 1) and every op unit-scaled, so that activations,
        weights and gradients start at RMS about 1 (`jwinit.recipes.umup_rules`,
        `jwinit.recipes.umup_optimizer`). Dense layers compute x W fan_in^-1/2, the head x W /
        fan_in (muP's readout), attention logits q.k / head_dim; branch k of the 2L joins the
        stream as (h + tau_k f(h)) / sqrt(1 + tau_k^2), tau_k = 1 / sqrt(L + k), so that the
        embedding, the attention branches and the MLP branches each end with a third of the
        stream's variance; the backward passes have their own scales (`jwinit._unit_scaling`,
        after Graphcore's ``unit-scaling`` library). The same parameter paths and axes; it
        takes no `branch_multiplier`, `embed_multiplier` or `embed_norm`.

    Examples:
      >>> model = jwinit.models.Decoder(**jwinit.models.DECODER_SIZES['tiny'])
      >>> tokens = jnp.zeros((2, 8), jnp.int32)
      >>> v = jwinit.init_params(model, jax.random.key(0), tokens,
      ...                        {r'kernel$': jwinit.normal(0.02)})
      >>> model.apply(v, tokens).shape
      (2, 8, 256)
    """

    vocab_size: int
    dim: int
    layers: int
    heads: int
    mlp_dim: int
    branch_multiplier: float = 1.0
    embed_multiplier: float = 1.0
    embed_norm: bool = False
    unit_scaled: bool = False

    @nn.compact
    def __call__(self, tokens: jax.Array) -> jax.Array:
        if self.dim % self.heads:
            raise ValueError(f"`dim` ({self.dim}) must be divisible by `heads` ({self.heads}).")
        if self.unit_scaled:
            return self._unit_scaled(tokens)
        embed = nn.Embed(self.vocab_size, self.dim, name="embed",
                         embedding_init=nn.with_logical_partitioning(
                             nn.initializers.normal(1.0), ("vocab", "embed")))
        h = embed(tokens)
        if self.embed_multiplier != 1.0:
            h = h * jnp.asarray(self.embed_multiplier, h.dtype)
        if self.embed_norm:
            h = nn.LayerNorm(name="embed_norm",
                             scale_init=nn.with_logical_partitioning(nn.initializers.ones,
                                                                     ("embed",)),
                             bias_init=nn.with_logical_partitioning(nn.initializers.zeros,
                                                                    ("embed",)))(h)
        for i in range(self.layers):
            h = DecoderBlock(self.dim, self.heads, self.mlp_dim, self.branch_multiplier,
                              name=f"layer_{i}")(h)
        h = _rms_norm("final_norm")(h)
        return _dense(self.vocab_size, ("embed", "vocab"), "head")(h)

    def _unit_scaled(self, tokens: jax.Array) -> jax.Array:
        if self.branch_multiplier != 1.0 or self.embed_multiplier != 1.0 or self.embed_norm:
            raise ValueError(
                "`unit_scaled=True` (u-muP) sets its own residual weights and embedding scale; "
                f"it takes branch_multiplier=1.0, embed_multiplier=1.0 and embed_norm=False, got "
                f"{self.branch_multiplier!r}, {self.embed_multiplier!r} and {self.embed_norm!r}.")
        h = _UnitEmbed(self.vocab_size, self.dim, name="embed")(tokens)
        taus = residual_taus(self.layers)
        for i in range(self.layers):
            h = DecoderBlock(self.dim, self.heads, self.mlp_dim, 1.0, unit_scaled=True,
                             taus=(taus[2 * i], taus[2 * i + 1]), name=f"layer_{i}")(h)
        h = _UnitRMSNorm(name="final_norm")(h)
        return _UnitDense(self.vocab_size, ("embed", "vocab"), readout=True, constraint=None,
                          name="head")(h)


class _UnitEmbed(nn.Module):
    """The embedding table ``embedding`` (N(0, 1), axes ('vocab', 'embed')), unit-scaled."""

    vocab_size: int
    dim: int

    @nn.compact
    def __call__(self, tokens: jax.Array) -> jax.Array:
        table = self.param("embedding", nn.with_logical_partitioning(nn.initializers.normal(1.0),
                                                                     ("vocab", "embed")),
                           (self.vocab_size, self.dim))
        return unit_embedding(tokens, table)

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

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jwinit.activations import get_activation

__all__ = ["MLP", "ResidualMLP", "Transformer"]

NORMS = (None, "batch", "layer")
LAYER_NORMS = (None, "pre", "post")


class MLP(nn.Module):
    """`depth` hidden layers of `width` units and `activation`, then a linear readout.

    Attributes:
      depth: hidden layers (>= 0; 0 is a linear model).
      width: units per hidden layer.
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

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if isinstance(self.depth, bool) or not isinstance(self.depth, int) or self.depth < 0:
            raise ValueError(f"`depth` must be an int >= 0, got {self.depth!r}.")
        phi = get_activation(self.activation)
        h = jnp.reshape(x, (x.shape[0], -1))
        for _ in range(self.depth):
            h = phi(nn.Dense(self.width, use_bias=self.use_bias, kernel_init=self.kernel_init,
                             bias_init=self.bias_init)(h))
        return nn.Dense(self.output_dim, use_bias=self.use_bias, kernel_init=self.kernel_init,
                        bias_init=self.bias_init)(h)


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
            if self.norm == "batch":
                h = nn.BatchNorm(use_running_average=not train)(h)
            elif self.norm == "layer":
                h = nn.LayerNorm()(h)
            h = nn.Dense(self.width, kernel_init=self.kernel_init)(phi(h))
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

"""Reference Flax models for the experiments: the architectures the initialization papers train.

`ResidualMLP` is the residual network of Fixup (Zhang, Dauphin & Ma 2019) in fully connected form:
a ``stem`` Dense, `blocks` pre-activation residual blocks ``x + F(x)`` named ``block_0`` ...
(``F`` = `branch_layers` Dense layers ``Dense_0`` ... each after the activation, with an optional
BatchNorm or LayerNorm before each activation), and a ``head`` Dense.

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

__all__ = ["MLP", "ResidualMLP"]

NORMS = (None, "batch", "layer")


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

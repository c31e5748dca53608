"""Reference Flax models for the experiments: the architectures the initialization papers train.

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

__all__ = ["MLP"]


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

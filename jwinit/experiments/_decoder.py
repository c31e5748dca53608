"""The Decoder programs the depth experiments share (`depth_coord_check`, `depth_lr_transfer`):
the depth rules built once, and the compiled stream and AdamW step of a Decoder shape."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jwinit.recipes import depth_optimizer, depth_rules

__all__ = ["rules", "programs", "setup_text"]


@functools.cache
def rules() -> Any:
    """The depth rules, built once: `init_params` caches its program by the rules' initializers,
    so the same objects give one compiled init per depth."""
    return depth_rules()


@functools.cache
def programs(vocab: int, dim: int, heads: int, mlp_dim: int, layers: int) -> Any:
    """(stream, step): the last block's output on a batch, and one Adam step, compiled once per
    shape; the branch multiplier and the optimizer's hyperparameters are arguments."""
    from jwinit.models import Decoder, DecoderBlock

    def model(b: jax.Array) -> Decoder:
        return Decoder(vocab_size=vocab, dim=dim, layers=layers, heads=heads, mlp_dim=mlp_dim,
                       branch_multiplier=b)

    def stream(params: Any, tokens: jax.Array, b: jax.Array) -> jax.Array:
        _, state = model(b).apply({"params": params}, tokens, capture_intermediates=lambda m, _:
                                  isinstance(m, DecoderBlock))
        return state["intermediates"][f"layer_{layers - 1}"]["__call__"][0]

    template = depth_optimizer("sp", 1.0, layers)  # its hyperparameters come from the state

    def step(params: Any, opt_state: Any, tokens: jax.Array, b: jax.Array) -> Any:
        def loss(p: Any) -> jax.Array:
            logits = model(b).apply({"params": p}, tokens[:, :-1])
            return optax.softmax_cross_entropy_with_integer_labels(
                logits.astype(jnp.float32), tokens[:, 1:]).mean()

        with jax.numpy_dtype_promotion("standard"):  # optax mixes Python floats and int counts
            value, grads = jax.value_and_grad(loss)(params)
            updates, opt_state = template.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    return jax.jit(stream), jax.jit(step)


def setup_text(config: Any) -> str:
    """The reports' description of the Decoder a depth experiment trains and its init."""
    return (f"`jwinit.models.Decoder` (dim {config.dim}, {config.heads} heads, SwiGLU "
            f"{config.mlp_dim}, RMSNorm pre-norm) at depths {list(config.depths)}, initialized by "
            "`jwinit.recipes.depth_rules` (N(0, 1/fan_in) kernels, N(0, 1) embedding)")

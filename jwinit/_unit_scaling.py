"""Unit-scaled operations (Blake et al. 2023, "Unit Scaling"; Blake et al. 2025, "u-muP: The
Unit-Scaled Maximal Update Parametrization"): each op has a forward scale that keeps its output at
unit RMS for unit-RMS inputs, and separate backward scales that keep the gradients it passes on at
unit RMS. Used by `jwinit.models.Decoder(unit_scaled=True)`; private to the package.

The scales follow Graphcore's reference library ``unit-scaling`` (``unit_scaling/functional.py``:
``linear``, ``linear_readout``, ``silu_glu``, ``scaled_dot_product_attention``, ``rms_norm``,
``embedding``, ``residual_split`` / ``residual_add``; ``unit_scaling/core/functional.py``:
``transformer_residual_scaling_rule``), written here for JAX: `scale_fwd` multiplies in the forward
pass only, `scale_bwd` in the backward pass only (``unit_scaling/scale.py``).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def _scaled(x: jax.Array, forward: float, backward: float) -> jax.Array:
    return x * jnp.asarray(forward, x.dtype) if forward != 1.0 else x


def _scaled_fwd(x, forward, backward):
    return _scaled(x, forward, backward), None


def _scaled_bwd(forward, backward, _, g):
    return (g * jnp.asarray(backward, g.dtype) if backward != 1.0 else g,)


_scaled.defvjp(_scaled_fwd, _scaled_bwd)


def scale_fwd(x: jax.Array, scale: float) -> jax.Array:
    """x * scale in the forward pass; the gradient passes through unscaled."""
    return _scaled(x, float(scale), 1.0)


def scale_bwd(x: jax.Array, scale: float) -> jax.Array:
    """x in the forward pass; the gradient is multiplied by `scale` on its way back."""
    return _scaled(x, 1.0, float(scale))


def log_interpolation(alpha: float, lower: float, upper: float) -> float:
    """lower^(1 - alpha) upper^alpha: the reference's ``logarithmic_interpolation``."""
    return math.exp((1 - alpha) * math.log(lower) + alpha * math.log(upper))


def linear(x: jax.Array, kernel: jax.Array, *, readout: bool = False,
           constraint: str | None = "to_output_scale") -> jax.Array:
    """x @ kernel (Flax layout (fan_in, fan_out)) times fan_in^-1/2 (a readout: fan_in^-1, muP's
    output multiplier). Backward: the input's gradient times fan_out^-1/2 (with the
    'to_output_scale' constraint: the forward scale, so that it is the true gradient of the scaled
    op), the kernel's times (tokens)^-1/2."""
    fan_in, fan_out = kernel.shape
    tokens = x.size // fan_in
    out_scale = fan_in ** (-1.0 if readout else -0.5)
    grad_in = fan_out ** -0.5
    if constraint == "to_output_scale":
        grad_in = out_scale
    x = scale_bwd(x, grad_in)
    kernel = scale_bwd(kernel, tokens ** -0.5)
    return scale_fwd(x @ kernel.astype(x.dtype), out_scale)


def silu_glu(up: jax.Array, gate: jax.Array) -> jax.Array:
    """up * silu(gate), forward and backward scaled by the reference's model of its RMS at
    unit inputs (mult 1: 2^(3/4), interpolating 2 and sqrt(2))."""
    scale = log_interpolation(0.5, 2.0, 2.0 ** 0.5)
    up, gate = scale_bwd(up, scale), scale_bwd(gate, scale)
    return scale_fwd(up * jax.nn.silu(gate), scale)


def attention(q: jax.Array, k: jax.Array, v: jax.Array, *, causal: bool = True,
              mult: float = 1.0) -> jax.Array:
    """Softmax attention of (batch, time, heads, head_dim) tensors with logits q.k * mult /
    head_dim (muP's 1/d, not 1/sqrt(d)); the output and the gradients of q, k, v scaled by the
    reference's model of the output's RMS (at mult 1 about sqrt(T / log T) for causal
    attention over T positions, whose near-uniform weights average the values)."""
    t, d = v.shape[1], v.shape[-1]
    lower = ((math.log(t) if causal and t > 1 else 1.0) / t) ** 0.5
    scale = 1.0 / log_interpolation(1.0 / (1.0 + 4.0 * d / mult**2), lower, 1.0)
    q, k, v = (scale_bwd(a, scale) for a in (q, k, v))
    logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) * jnp.asarray(mult / d, q.dtype)
    if causal:
        mask = jnp.tril(jnp.ones((t, t), bool))
        logits = jnp.where(mask[None, None], logits, jnp.finfo(logits.dtype).min)
    out = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(logits, axis=-1), v)
    return scale_fwd(out, scale)


def rms_norm(x: jax.Array, scale: jax.Array, eps: float = 1e-6) -> jax.Array:
    """x / RMS(x) * scale over the last axis; the gain's gradient times (dim / x.size)^1/2."""
    scale = scale_bwd(scale, (x.shape[-1] / x.size) ** 0.5)
    ms = jnp.mean(jnp.square(x.astype(jnp.float32)), axis=-1, keepdims=True)
    gain = scale.astype(x.dtype).reshape((1,) * (x.ndim - 1) + (-1,))
    return (x * jax.lax.rsqrt(ms + eps).astype(x.dtype)) * gain


def embedding(tokens: jax.Array, table: jax.Array) -> jax.Array:
    """table[tokens]; the table's gradient times (vocab / tokens)^1/2."""
    table = scale_bwd(table, (table.shape[0] / tokens.size) ** 0.5)
    return jnp.take(table, tokens, axis=0)


def residual_split(h: jax.Array, tau: float) -> tuple[jax.Array, jax.Array]:
    """(branch input, skip): both h in the forward pass; their gradients times tau / sqrt(1 +
    tau^2) and 1 / sqrt(1 + tau^2)."""
    denom = (1.0 + tau * tau) ** 0.5
    return scale_bwd(h, tau / denom), scale_bwd(h, 1.0 / denom)


def residual_add(branch: jax.Array, skip: jax.Array, tau: float) -> jax.Array:
    """(skip + tau branch) / sqrt(1 + tau^2): unit RMS for uncorrelated unit-RMS terms."""
    denom = (1.0 + tau * tau) ** 0.5
    return scale_fwd(branch, tau / denom) + scale_fwd(skip, 1.0 / denom)


def residual_taus(layers: int, residual_mult: float = 1.0,
                  attn_ratio: float = 1.0) -> list[float]:
    """tau of the 2 `layers` branches (attention, MLP, attention, ...), the reference's
    ``transformer_residual_scaling_rule``: every attention branch ends with the same share of
    the stream's variance, every MLP branch too, all of them together `residual_mult` times
    the embedding's, attention `attn_ratio` times MLP. With both 1: tau_k = 1 / sqrt(L + k)."""
    alpha_mlp = residual_mult * (2.0 / (1.0 + attn_ratio**2)) ** 0.5
    alpha_attn = attn_ratio * alpha_mlp
    out = []
    for k in range(2 * layers):
        n_attn, n_mlp = (k + 1) // 2, k // 2
        alpha = alpha_attn if k % 2 == 0 else alpha_mlp
        out.append(alpha / (layers + n_attn * alpha_attn**2 + n_mlp * alpha_mlp**2) ** 0.5)
    return out

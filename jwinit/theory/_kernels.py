"""The infinite-width NNGP and NTK of a fully-connected network (the core of `kernel_fn`).

Layer by layer, for inputs x1 (n1, d) and x2 (n2, d) (Neal 1996; Lee et al. 2018; Jacot et al.
2018; Arora et al. 2019), with E the Gaussian expectations of `Moments.k_kd_pair` over the
pre-activation pair of variances (q1_i, q2_j) and covariance K_ij:

    K^0 = sigma_w2 x1 x2^T / d + sigma_b2,   Theta^0 = K^0 ('ntk') or x1 x2^T + 1 ('standard')
    K^{l+1} = sigma_w2 E[phi phi] + sigma_b2
    Theta^{l+1} = K^{l+1} + sigma_w2 E[phi' phi'] Theta^l                ('ntk')
               = n E[phi phi] + 1 + sigma_w2 E[phi' phi'] Theta^l        ('standard', width n)

the diagonal variances following the same map. The 'standard' NTK is the expected empirical NTK
of a network whose weights are N(0, sigma_w2 / fan_in) and biases N(0, sigma_b2), trained with one
learning rate (neural-tangents' 'standard' parameterization); 'ntk' is neural-tangents' default.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jwinit.theory._moments import Moments

__all__ = ["kernels_core"]

#: pairs of inputs per step of the quadrature's loop (activations without a closed form)
PAIR_BLOCK = 256


def _pairs(m: Moments, q1: jax.Array, q2: jax.Array, c: jax.Array) -> tuple[jax.Array, ...]:
    """(E[phi phi], E[phi' phi']) for every (i, j): closed forms broadcast, quadrature in blocks
    of `PAIR_BLOCK` pairs (its nodes per pair times the pairs would not fit otherwise)."""
    qq1 = jnp.broadcast_to(q1[:, None], c.shape)
    qq2 = jnp.broadcast_to(q2[None, :], c.shape)
    if m.kind != "quad":
        return m.k_kd_pair(qq1, qq2, c)
    flat = (qq1.ravel(), qq2.ravel(), c.ravel())
    e, ed = jax.lax.map(lambda a: m.k_kd_pair(*a), flat, batch_size=PAIR_BLOCK)
    return e.reshape(c.shape), ed.reshape(c.shape)


@functools.partial(jax.jit, static_argnames=("m", "standard", "use_bias", "same"))
def kernels_core(m: Moments, sw2: jax.Array, sb2: jax.Array, x1: jax.Array, x2: jax.Array,
                 depth: jax.Array, width: jax.Array, sw2_input: jax.Array, *, standard: bool,
                 use_bias: bool, same: bool) -> tuple[jax.Array, jax.Array]:
    """(NNGP, NTK) of shape (n1, n2) of `depth` hidden layers and a linear readout, in the
    'standard' parameterization of hidden `width` or the 'ntk' one (`width` unused); the input
    layer's weights of variance `sw2_input` / d, every later layer's `sw2` / fan_in. `depth` and
    `width` are traced: one compiled program serves every depth. With `same` (x2 is x1) an
    input's correlation with itself is exactly 1 (not 1 - rounding: arccos is steep there)."""
    d = x1.shape[1]
    sb2 = sb2 if use_bias else jnp.zeros_like(sb2)
    bias_grad = 1.0 if use_bias else 0.0
    k12 = x1 @ x2.T / d
    q1 = sw2_input * jnp.sum(x1 * x1, axis=1) / d + sb2
    q2 = sw2_input * jnp.sum(x2 * x2, axis=1) / d + sb2
    nngp = sw2_input * k12 + sb2
    ntk = d * k12 + bias_grad if standard else nngp
    tiny = jnp.finfo(x1.dtype).tiny

    def layer(_, carry):
        nngp, ntk, q1, q2 = carry
        c = nngp / jnp.sqrt(jnp.maximum(q1[:, None] * q2[None, :], tiny))
        if same:
            c = jnp.where(jnp.eye(c.shape[0], dtype=bool), 1.0, c)
        e, ed = _pairs(m, q1, q2, c)
        new = sw2 * e + sb2
        ntk = (width * e + bias_grad if standard else new) + sw2 * ed * ntk
        return (new, ntk, sw2 * jax.vmap(m.m2)(q1) + sb2, sw2 * jax.vmap(m.m2)(q2) + sb2)

    nngp, ntk, _, _ = jax.lax.fori_loop(0, depth, layer, (nngp, ntk, q1, q2))
    return nngp, ntk

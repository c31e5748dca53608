"""QR and singular values of stacks of matrices, safe on XLA:CPU's shared thread pool.

jaxlib's CPU LAPACK kernels (QR, SVD, ...) split a *batch* of matrices into pieces on XLA's
intra-op thread pool and block the pool thread they run on until the pieces are done. XLA:CPU runs
independent operations of one program concurrently on the same pool (and several CPU devices share
it), so when every pool thread holds such a kernel, the pieces wait for a thread that never comes
free and the program never finishes. Seen with jax 0.10.2 on a 2-core machine: two batched QRs of
one jitted initialization (an orthogonal init vmapped over seeds) hang forever; pinned to one core
(a pool of one thread, which runs the kernel inline) the same program finishes.

A single matrix is never split (the kernel runs it inline), so on CPU these functions factorize a
stack one matrix after the other (``lax.map``), also under ``vmap`` (their batching rules), which
gives the values of the batched call. Accelerators keep the batched kernel.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _one_at_a_time(z: jax.Array) -> bool:
    return z.ndim > 2 and jax.default_backend() == "cpu"


def _over_stack(fn, z: jax.Array):
    """``fn`` of each (m, n) matrix of a (..., m, n) stack by ``lax.map``, outputs restacked."""
    batch = z.shape[:-2]
    out = jax.lax.map(fn, jnp.reshape(z, (-1, *z.shape[-2:])))
    return jax.tree.map(lambda a: jnp.reshape(a, (*batch, *a.shape[1:])), out)


@jax.custom_batching.custom_vmap
def qr(z: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``jnp.linalg.qr(z)`` (reduced) of a (..., m, n) stack: (q, r)."""
    if _one_at_a_time(z):
        return _over_stack(lambda a: tuple(jnp.linalg.qr(a)), z)
    return tuple(jnp.linalg.qr(z))


@qr.def_vmap
def _qr_vmap(axis_size: int, in_batched: list[bool], z: jax.Array):
    del axis_size
    return qr(z), (in_batched[0], in_batched[0])


@jax.custom_batching.custom_vmap
def singular_values(z: jax.Array) -> jax.Array:
    """``jnp.linalg.svd(z, compute_uv=False)`` of a (..., m, n) stack."""
    if _one_at_a_time(z):
        return _over_stack(lambda a: jnp.linalg.svd(a, compute_uv=False), z)
    return jnp.linalg.svd(z, compute_uv=False)


@singular_values.def_vmap
def _singular_values_vmap(axis_size: int, in_batched: list[bool], z: jax.Array):
    del axis_size
    return singular_values(z), in_batched[0]

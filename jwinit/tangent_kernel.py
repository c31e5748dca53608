"""`jwinit.ntk(model, variables, x1, x2)`: the empirical neural tangent kernel of a model at its
current parameters.

Theta(x1, x2)_{ab, ij} = sum over every parameter theta of df_i(x1_a)/dtheta df_j(x2_b)/dtheta
(Jacot, Gabriel & Hongler 2018), f the model's output flattened to k values per example. With
``trace=True`` the output dimensions are averaged, Theta_ab = (1/k) sum_i Theta_{ab, ii} (as
neural-tangents' ``trace_axes=(-1,)`` with its averaging), shape (n1, n2); otherwise the full
(n1, n2, k, k) kernel.

The kernel is computed from Jacobians of blocks of `batch_size` examples (reverse mode, one
compiled program per shape, the last block padded), so memory stays within `memory_bytes`: a
block's Jacobian holds batch_size x k x P numbers for P parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

__all__ = ["ntk"]


def _split(model: Any, variables: Any, apply_kwargs: Mapping[str, Any]
           ) -> tuple[Any, Callable[[Any, jax.Array], jax.Array]]:
    """(params, f(params, x) -> (n, k) outputs) for a linen, nnx or Equinox model."""
    if isinstance(model, nn.Module):
        if not isinstance(variables, Mapping) or "params" not in variables:
            raise ValueError("a linen model needs `variables`, the dict returned by "
                             f"`model.init(...)` with a 'params' collection; got "
                             f"{type(variables).__name__}.")
        variables = nn.unbox(dict(variables))
        params = variables.pop("params")
        rest = variables

        def f(p: Any, x: jax.Array) -> jax.Array:
            return model.apply({"params": p, **rest}, x, **apply_kwargs)

        return params, f
    if variables is not None:
        raise ValueError("`variables` must be None for an nnx or Equinox model (its parameters "
                         "are inside it).")
    if isinstance(model, nnx.Module):
        graphdef, params, rest = nnx.split(model, nnx.Param, ...)

        def f(p: Any, x: jax.Array) -> jax.Array:
            return nnx.merge(graphdef, p, rest, copy=True)(x, **apply_kwargs)

        return params, f
    try:
        import equinox as eqx
    except ImportError:  # pragma: no cover - equinox is in [dev]
        eqx = None
    if eqx is not None and isinstance(model, eqx.Module):
        params, static = eqx.partition(model, eqx.is_inexact_array)

        def f(p: Any, x: jax.Array) -> jax.Array:
            return jax.vmap(eqx.combine(p, static))(x)

        return params, f
    raise TypeError(f"`model` must be a flax.linen.Module, an nnx.Module or an equinox.Module, "
                    f"got {type(model).__name__}.")


def ntk(model: Any, variables: Mapping[str, Any] | None, x1: Any, x2: Any = None, *,
        trace: bool = True, batch_size: int | None = None, memory_bytes: int = 2**30,
        apply_kwargs: Mapping[str, Any] | None = None) -> jax.Array:
    """The empirical NTK of `model` at its current parameters between `x1` and `x2`.

    Args:
      model: a ``flax.linen.Module`` (with `variables`), an ``nnx.Module`` or an
        ``equinox.Module`` (`variables` None; an Equinox model is applied to one example at a
        time, vmapped).
      variables: linen: the variables dict (boxed or not); its non-parameter collections are
        held fixed.
      x1, x2: batches (n1, ...) and (n2, ...) of the same example shape; `x2` None means `x1`.
      trace: average over the output dimensions (shape (n1, n2)); False: (n1, n2, k, k).
      batch_size: examples per Jacobian block (default: the most that fit `memory_bytes`).
      memory_bytes: the budget of one block's Jacobian (batch_size x k x P x itemsize).
      apply_kwargs: keyword arguments of the model's call.

    Returns:
      The kernel, float32 (float64 under x64).

    Raises:
      ValueError, TypeError: x1 and x2 of different example shapes, an output that is not a
        floating array, parameters that are not all floating, a `batch_size` whose Jacobian
        exceeds `memory_bytes` (naming one that fits).

    Examples:
      >>> model = jwinit.models.MLP(depth=2, width=64, output_dim=3)
      >>> x = jax.random.normal(jax.random.key(0), (5, 8))
      >>> theta = jwinit.ntk(model, model.init(jax.random.key(1), x), x)
      >>> theta.shape, bool(jnp.allclose(theta, theta.T, rtol=1e-5))
      ((5, 5), True)

    References:
      Jacot, Gabriel & Hongler 2018, "Neural Tangent Kernel: Convergence and Generalization in
      Neural Networks"; Novak et al. 2022, "Fast Finite Width Neural Tangent Kernel" (the
      Jacobian-contraction method).
    """
    params, f = _split(model, variables, dict(apply_kwargs or {}))
    leaves = jax.tree.leaves(params)
    bad = [str(getattr(v, "dtype", type(v).__name__)) for v in leaves
           if not jnp.issubdtype(getattr(v, "dtype", np.float32), jnp.floating)]
    if bad:
        raise TypeError(f"`model`: the NTK differentiates every parameter, and {len(bad)} of "
                        f"them hold non-floating values ({sorted(set(bad))}).")
    x1 = jnp.asarray(x1)
    x2 = x1 if x2 is None else jnp.asarray(x2)
    if x1.ndim < 1 or x2.ndim < 1 or x1.shape[1:] != x2.shape[1:]:
        raise ValueError(f"`x1` and `x2` must be batches of the same example shape, got "
                         f"{x1.shape} and {x2.shape}.")
    out = jax.eval_shape(f, params, x1[:1])
    if not jnp.issubdtype(out.dtype, jnp.floating):
        raise TypeError(f"`model`: its output must be a floating array to differentiate, got "
                        f"{out.dtype}.")
    k = int(np.prod(out.shape[1:]))
    n_params = sum(int(np.prod(v.shape)) for v in leaves)
    itemsize = np.dtype(out.dtype).itemsize
    per_example = k * n_params * itemsize
    fits = max(1, memory_bytes // per_example)
    if batch_size is None:
        batch_size = int(min(fits, max(x1.shape[0], x2.shape[0])))
    elif not (isinstance(batch_size, int) and not isinstance(batch_size, bool)
              and batch_size >= 1):
        raise ValueError(f"`batch_size` must be an int >= 1 or None, got {batch_size!r}.")
    elif batch_size * per_example > memory_bytes:
        raise ValueError(f"`batch_size`={batch_size}: a block's Jacobian needs "
                         f"{batch_size * per_example / 2**20:.0f} MiB ({k} outputs x {n_params} "
                         f"parameters per example), over memory_bytes={memory_bytes}; "
                         f"batch_size={fits} fits (or raise memory_bytes).")

    jac = _jacobian_program(f)
    b = batch_size

    def blocks(x: jax.Array) -> list[tuple[jax.Array, int]]:
        out = []
        for start in range(0, x.shape[0], b):
            xb = x[start:start + b]
            m = xb.shape[0]
            if m < b:  # pad the last block: one compiled shape
                xb = jnp.concatenate([xb, jnp.zeros((b - m, *xb.shape[1:]), xb.dtype)])
            out.append((jac(params, xb), m))
        return out

    j1 = blocks(x1)
    j2 = j1 if x2 is x1 else blocks(x2)
    rows = []
    for a, m1 in j1:
        cols = []
        for c, m2 in j2:
            if trace:
                cols.append(jnp.einsum("akp,bkp->ab", a, c)[:m1, :m2] / k)
            else:
                cols.append(jnp.einsum("akp,blp->abkl", a, c)[:m1, :m2])
        rows.append(jnp.concatenate(cols, axis=1))
    return jnp.concatenate(rows, axis=0)


def _jacobian_program(f: Callable[[Any, jax.Array], jax.Array]) -> Callable[..., jax.Array]:
    """params, x (b, ...) -> the Jacobian of the flattened outputs, (b, k, P), example by
    example (vmapped): the model is applied to one example at a time, so a model whose examples
    interact (BatchNorm in training mode) is not what this kernel describes."""

    def one(params: Any, xi: jax.Array) -> jax.Array:
        """(k, P): one example's Jacobian (k reverse passes, not k x batch)."""
        tree = jax.jacrev(lambda p: f(p, xi[None]).reshape(-1))(params)
        return jnp.concatenate([leaf.reshape(leaf.shape[0], -1)
                                for leaf in jax.tree.leaves(tree)], axis=-1)

    def jacobian(params: Any, x: jax.Array) -> jax.Array:
        return jax.vmap(one, in_axes=(None, 0))(params, x)

    return jax.jit(jacobian)


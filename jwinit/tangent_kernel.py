"""`jwinit.ntk(model, variables, x1, x2)`: the empirical neural tangent kernel of a model at its
current parameters, and `jwinit.trainability`: what it predicts of gradient descent from there.

Theta(x1, x2)_{ab, ij} = sum over every parameter theta of df_i(x1_a)/dtheta df_j(x2_b)/dtheta
(Jacot, Gabriel & Hongler 2018), f the model's output flattened to k values per example. With
``trace=True`` the output dimensions are averaged, Theta_ab = (1/k) sum_i Theta_{ab, ii} (as
neural-tangents' ``trace_axes=(-1,)`` with its averaging), shape (n1, n2); otherwise the full
(n1, n2, k, k) kernel.

The kernel is computed from Jacobians of blocks of `batch_size` examples (reverse mode, one
compiled program per shape, the last block padded), so memory stays within `memory_bytes`: a
block's Jacobian holds batch_size x k x P numbers for P parameters; when all blocks' Jacobians
do not fit the budget together, two are held at a time and the column blocks are recomputed.
With ``method='auto'`` (the default) a linen model's ``nn.Dense`` layers are not differentiated
that way: their part of the kernel comes from each layer's inputs and output gradients,
S (d_in + k d_out) numbers per example instead of k d_in d_out (`jwinit._dense_ntk`; Novak et
al. 2022's structured derivatives), the same kernel to float rounding at a fraction of the cost.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jwinit._dense_ntk import Layer as DenseLayer
from jwinit._dense_ntk import bytes_per_example, covered, dense_layers, factors_program, merged
from jwinit._dense_ntk import contract as dense_contract
from jwinit._programs import ProgramCache

__all__ = ["ntk", "trainability", "TrainabilityReport", "TRAINABILITY_LOSSES", "NTK_METHODS"]

#: The losses `trainability` predicts for.
TRAINABILITY_LOSSES = ("mse", "cross_entropy")

#: How `ntk` differentiates: 'auto' (a linen model's dense layers from their factors, the rest
#: from the Jacobian) or 'jacobian' (every parameter from the Jacobian).
NTK_METHODS = ("auto", "jacobian")


def _check_method(method: Any) -> str:
    if not isinstance(method, str) or method not in NTK_METHODS:
        raise ValueError(f"`method` must be one of {NTK_METHODS}, got {method!r}.")
    return method


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
        apply_kwargs: Mapping[str, Any] | None = None, method: str = "auto") -> jax.Array:
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
      method: 'auto': a linen model's ``nn.Dense`` layers (called once per example, kernel
        not stacked by ``nn.scan``) contribute from their factors, sum over positions s, t of
        (h_as . h_bt + 1) (delta_as . delta_bt) with h the layer's input and delta the output's
        gradient, when that is cheaper than their Jacobian; every other parameter (and every
        parameter of an nnx or Equinox model) from the Jacobian. 'jacobian': all from the
        Jacobian. Both give the same kernel to float rounding.

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
    _check_method(method)
    apply_kwargs = dict(apply_kwargs or {})
    params, f = _split(model, variables, apply_kwargs)
    return _kernel(params, f, x1, x2, trace=trace, batch_size=batch_size,
                   memory_bytes=memory_bytes,
                   dense_of=_dense_of(model, variables, params, apply_kwargs, method))


def _kernel(params: Any, f: Callable[[Any, jax.Array], jax.Array], x1: Any, x2: Any, *,
            trace: bool, batch_size: int | None, memory_bytes: int,
            dense_of: Callable[[jax.Array, int], _Dense | None] | None = None) -> jax.Array:
    """`ntk` of the model as (params, f), `_split`'s form; with `dense_of` (x1, k -> the
    factored dense layers or None), their part from their factors and every other parameter's
    from the Jacobian."""
    leaves = jax.tree.leaves(params)
    bad = [str(getattr(v, "dtype", type(v).__name__)) for v in leaves
           if not jnp.issubdtype(getattr(v, "dtype", np.float32), jnp.floating)]
    if bad:
        raise TypeError(f"`model`: the NTK differentiates every parameter, and {len(bad)} of "
                        f"them hold non-floating values ({sorted(set(bad))}).")
    x1, x2, k, itemsize = _check_batches(params, f, x1, x2)
    dense = None if dense_of is None else dense_of(x1, k)
    if dense is not None:
        try:
            return _kernel_of(params, f, x1, x2, k, itemsize, trace, batch_size, memory_bytes,
                              dense)
        except jax.errors.UnexpectedTracerError:
            # a dense layer inside a lifted transform (nn.remat): its recorded input is of the
            # inner trace; the whole model is then differentiated by the Jacobian
            pass
    return _kernel_of(params, f, x1, x2, k, itemsize, trace, batch_size, memory_bytes, None)


def _kernel_of(params: Any, f: Callable[[Any, jax.Array], jax.Array], x1: jax.Array,
               x2: jax.Array, k: int, itemsize: int, trace: bool, batch_size: int | None,
               memory_bytes: int, dense: _Dense | None) -> jax.Array:
    n_params = sum(int(np.prod(v.shape)) for v in jax.tree.leaves(params))
    if dense is not None:  # the Jacobian is of the other parameters only
        jac_params = dense.rest
        n_jac = sum(int(np.prod(v.shape)) for v in jax.tree.leaves(jac_params))
        per_example = k * n_jac * itemsize + bytes_per_example(dense.layers, k,
                                                                           itemsize)
        what = (f"{k} outputs x {n_jac} parameters, plus the factors of "
                f"{len(dense.layers)} dense layers, per example")
    else:
        jac_params, n_jac = params, n_params
        per_example = k * n_params * itemsize
        what = f"{k} outputs x {n_params} parameters per example"
    fits = max(1, memory_bytes // per_example)
    if batch_size is None:
        batch_size = int(min(fits, max(x1.shape[0], x2.shape[0])))
    elif not (isinstance(batch_size, int) and not isinstance(batch_size, bool)
              and batch_size >= 1):
        raise ValueError(f"`batch_size` must be an int >= 1 or None, got {batch_size!r}.")
    elif batch_size * per_example > memory_bytes:
        raise ValueError(f"`batch_size`={batch_size}: a block's Jacobian needs "
                         f"{batch_size * per_example / 2**20:.0f} MiB ({what}), over "
                         f"memory_bytes={memory_bytes}; batch_size={fits} fits (or raise "
                         f"memory_bytes).")

    if dense is None:
        jac = _jacobian_program(f)
    elif n_jac:
        def f_rest(p: Any, x: jax.Array) -> jax.Array:
            return f(merged(dense.mine, p), x)

        jac = _jacobian_program(f_rest)
    else:
        jac = None
    b = batch_size
    same = x2 is x1

    def block(x: jax.Array, start: int) -> tuple[tuple[Any, Any], int]:
        xb = x[start:start + b]
        m = xb.shape[0]
        if m < b:  # pad the last block: one compiled shape
            xb = jnp.concatenate([xb, jnp.zeros((b - m, *xb.shape[1:]), xb.dtype)])
        return ((None if jac is None else jac(jac_params, xb),
                 None if dense is None else dense.factors(params, xb)), m)

    def contract(a: tuple[Any, Any], c: tuple[Any, Any], m1: int, m2: int) -> jax.Array:
        total = 0.0
        if a[0] is not None:
            total = (jnp.einsum("akp,bkp->ab", a[0], c[0]) if trace
                     else jnp.einsum("akp,blp->abkl", a[0], c[0]))
        if a[1] is not None:
            total = total + dense_contract(a[1], c[1], dense.layers, trace)
        return (total / k if trace else total)[:m1, :m2]

    starts1, starts2 = range(0, x1.shape[0], b), range(0, x2.shape[0], b)
    held = (x1.shape[0] + (0 if same else x2.shape[0])) * per_example
    # every block's Jacobian held when they fit the budget together; else two at a time, the
    # column blocks recomputed for every row block (memory within memory_bytes, more compute)
    j2 = None
    if held <= memory_bytes:
        j1 = [block(x1, s) for s in starts1]
        j2 = j1 if same else [block(x2, s) for s in starts2]
    rows = []
    for i, s1 in enumerate(starts1):
        a, m1 = j1[i] if j2 is not None else block(x1, s1)
        cols = []
        for j, s2 in enumerate(starts2):
            if j2 is not None:
                c, m2 = j2[j]
            elif same and s2 == s1:
                c, m2 = a, m1
            else:
                c, m2 = block(x2, s2)
            cols.append(contract(a, c, m1, m2))
        rows.append(jnp.concatenate(cols, axis=1))
    return jnp.concatenate(rows, axis=0)


def _check_batches(params: Any, f: Callable[[Any, jax.Array], jax.Array], x1: Any, x2: Any
                   ) -> tuple[jax.Array, jax.Array, int, int]:
    """(x1, x2 (x1 itself when None), outputs per example, the output's itemsize), checked."""
    x1 = jnp.asarray(x1)
    x2 = x1 if x2 is None else jnp.asarray(x2)
    if x1.ndim < 1 or x2.ndim < 1 or x1.shape[1:] != x2.shape[1:]:
        raise ValueError(f"`x1` and `x2` must be batches of the same example shape, got "
                         f"{x1.shape} and {x2.shape}.")
    out = jax.eval_shape(f, params, x1[:1])
    if not jnp.issubdtype(out.dtype, jnp.floating):
        raise TypeError(f"`model`: its output must be a floating array to differentiate, got "
                        f"{out.dtype}.")
    return x1, x2, int(np.prod(out.shape[1:])), np.dtype(out.dtype).itemsize


@dataclasses.dataclass(frozen=True)
class _Dense:
    """A linen model's factored dense layers: their parameters (`mine`), every other parameter
    (`rest`) and the program of their factors (`jwinit._dense_ntk.factors_program`)."""

    layers: Mapping[tuple[str, ...], DenseLayer]
    mine: Any
    rest: Any
    factors: Callable[[Any, jax.Array], Any]


def _dense_of(model: Any, variables: Any, params: Any, apply_kwargs: Mapping[str, Any],
              method: str) -> Callable[[jax.Array, int], _Dense | None] | None:
    """x1, k -> the factored path for a linen model's dense layers (None when it has none);
    None for a model that is not linen or `method` 'jacobian'."""
    if method == "jacobian" or not isinstance(model, nn.Module):
        return None
    return lambda x1, k: _dense(model, variables, params, x1, k, apply_kwargs)


def _dense(model: nn.Module, variables: Any, params: Any, x1: jax.Array, k: int,
           apply_kwargs: Mapping[str, Any]) -> _Dense | None:
    if x1.shape[0] < 1:
        return None
    rest_variables = {c: v for c, v in nn.unbox(dict(variables)).items() if c != "params"}
    full = {**rest_variables, "params": params}
    layers = dense_layers(model, full, x1[:1], k, apply_kwargs)
    if not layers:
        return None
    mine, rest = covered(params, layers)
    return _Dense(layers, mine, rest,
                  factors_program(model, rest_variables, layers, apply_kwargs, k))


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



# ------------------------------------------------------------------------------------------------
# what the NTK predicts


@dataclasses.dataclass(frozen=True)
class TrainabilityReport:
    """What the NTK on a batch predicts of full-batch gradient descent (`trainability`).

    Attributes:
      loss: 'mse' or 'cross_entropy' (conventions in `trainability`).
      n, outputs: examples and outputs per example.
      eigenvalues: the NTK's (traced over outputs, n x n) eigenvalues, largest first.
      lambda_max, lambda_min, condition: the largest, the smallest and their ratio.
      lr_max: the largest stable learning rate of plain gradient descent on the loss.
      residual: f(x) - y at these parameters, (n, outputs) (mse; None for cross-entropy).
      projections: the residual on the NTK's eigenvectors, (n, outputs), same order.
      kernel: 'empirical' or 'infinite'; `infinite` the report of the infinite-width kernel on
        the same batch and residual, when `trainability` was given one.
      eigenvectors: the NTK's eigenvectors, (n, n), columns in the order of `eigenvalues`.
    """

    loss: str
    n: int
    outputs: int
    eigenvalues: np.ndarray
    lr_max: float
    residual: np.ndarray | None
    projections: np.ndarray | None
    kernel: str = "empirical"
    infinite: TrainabilityReport | None = None
    eigenvectors: np.ndarray | None = None

    @property
    def lambda_max(self) -> float:
        return float(self.eigenvalues[0])

    @property
    def lambda_min(self) -> float:
        return float(self.eigenvalues[-1])

    @property
    def condition(self) -> float:
        return self.lambda_max / self.lambda_min if self.lambda_min > 0 else float("inf")

    def loss_curve(self, learning_rate: float, steps: int, *, flow: bool = False) -> np.ndarray:
        """The linearized model's loss at steps 0..`steps` of gradient descent (mse only):
        ``sum_i (1 - 2 lr lambda_i / (n k))^(2t) |p_i|^2 / (n k)``, p_i the residual on the i-th
        eigenvector; with `flow`, gradient flow at time lr t: ``exp(-4 lr t lambda_i / (n k))``
        in place of the power (neural-tangents' ``predict.gradient_descent_mse`` in this loss's
        scale)."""
        self._check_prediction("loss_curve", learning_rate, steps)
        nk = self.n * self.outputs
        rate = 2 * learning_rate * self.eigenvalues / nk
        weight = np.sum(self.projections ** 2, axis=1) / nk
        t = np.arange(steps + 1)[:, None]
        with np.errstate(over="ignore", invalid="ignore"):
            decay = np.exp(-2 * rate * t) if flow else (1 - rate) ** (2 * t)
        return np.sum(decay * weight, axis=1)

    def _check_prediction(self, name: str, learning_rate: Any, steps: Any) -> None:
        if self.loss != "mse":
            raise ValueError(f"`{name}` predicts the mse loss; this report is for "
                             f"{self.loss!r}, whose linearized dynamics are not closed-form.")
        if not (isinstance(learning_rate, int | float) and not isinstance(learning_rate, bool)
                and learning_rate > 0 and np.isfinite(learning_rate)):
            raise ValueError(f"`learning_rate` must be a positive number, got {learning_rate!r}.")
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ValueError(f"`steps` must be an int >= 0, got {steps!r}.")

    def residual_curve(self, learning_rate: float, steps: int) -> np.ndarray:
        """The linearized model's residual f_t(x) - y at steps 0..`steps` of gradient descent on
        the mse, (steps + 1, n, outputs): ``r_t = V diag((1 - 2 lr lambda / (n k))^t) V^T r_0``
        (every output moves by the traced kernel). Its distance from the trained network's
        residual is the departure from lazy training that Lee et al. 2019 (Thm. 2.1) bound by
        O(width^-1/2)."""
        self._check_prediction("residual_curve", learning_rate, steps)
        rate = 2 * learning_rate * self.eigenvalues / (self.n * self.outputs)
        t = np.arange(steps + 1)[:, None]
        with np.errstate(over="ignore", invalid="ignore"):
            decay = (1 - rate) ** t  # (steps + 1, n)
        return np.einsum("in,tn,nk->tik", self.eigenvectors, decay, self.projections)

    def __repr__(self) -> str:
        def row(r: TrainabilityReport) -> str:
            return (f"{r.kernel:9} lambda_max {r.lambda_max:.4g}  lambda_min {r.lambda_min:.4g}"
                    f"  condition {r.condition:.4g}  lr_max {r.lr_max:.4g}")

        lines = [f"TrainabilityReport({self.loss}, n={self.n}, outputs={self.outputs})",
                 "  " + row(self)]
        if self.infinite is not None:
            lines.append("  " + row(self.infinite))
        return "\n".join(lines)


_APPLY = ProgramCache(32)


def _outputs(model: Any, variables: Any, params: Any, f: Callable[[Any, jax.Array], jax.Array],
             x: jax.Array, apply_kwargs: Mapping[str, Any]) -> jax.Array:
    """f(params, x), for a linen model by a compiled apply kept per model and keyword
    arguments (the reports of many initializations of one model compile it once)."""
    if isinstance(model, nn.Module):
        apply = _APPLY.get((model, tuple(sorted(apply_kwargs.items()))),
                           lambda: jax.jit(lambda v, xb: model.apply(v, xb, **apply_kwargs)))
        rest = {c: v for c, v in nn.unbox(dict(variables)).items() if c != "params"}
        return apply({**rest, "params": params}, x)
    return jax.jit(f)(params, x)


def _report(theta: np.ndarray, loss: str, k: int, residual: np.ndarray | None, kernel: str,
            infinite: TrainabilityReport | None = None) -> TrainabilityReport:
    theta = np.asarray(theta, np.float64)
    theta = (theta + theta.T) / 2
    values, vectors = np.linalg.eigh(theta)
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    n = theta.shape[0]
    # mse (mean over examples and outputs of (f - y)^2): r <- (I - 2 lr Theta / (n k)) r;
    # cross-entropy at near-uniform softmax: the logits' Hessian is (I - 11^T / k) / k
    lr_max = (n * k / values[0]) if loss == "mse" else (2 * n * k / values[0])
    projections = None if residual is None else vectors.T @ residual
    return TrainabilityReport(loss, n, k, values, float(lr_max), residual, projections, kernel,
                              infinite, vectors)


def trainability(model: Any, variables: Mapping[str, Any] | None, x: Any, y: Any, *,
                 loss: str = "mse", kernel: Callable[..., Any] | None = None,
                 batch_size: int | None = None, memory_bytes: int = 2**30,
                 apply_kwargs: Mapping[str, Any] | None = None,
                 method: str = "auto") -> TrainabilityReport:
    """Predict full-batch gradient descent on (x, y) from the model's NTK at these parameters.

    Under the linearized model f_t = f_0 + J (theta_t - theta_0) (Lee et al. 2019), gradient
    descent on the batch moves the residual r = f(x) - y by r <- (I - s lr Theta) r, Theta the
    NTK (traced over outputs: each output moves alike) and s the loss's scale. Conventions, n
    examples, k outputs (those of `jwinit.train`):

    * 'mse': the mean over examples AND outputs of (f - y)^2 (``optax.squared_error(...).mean()``):
      s = 2 / (n k), so the largest stable learning rate is ``lr_max = n k / lambda_max``. (For
      the convention of NTK papers, 1/(2n) sum_i |f_i - y_i|^2, it is 2 n / lambda_max.)
    * 'cross_entropy': the mean softmax cross-entropy, at the near-uniform predictions of an
      init: the Gauss-Newton curvature is lambda / (n k), so ``lr_max = 2 n k / lambda_max``.

    Above lr_max the linearized model diverges; a finite wide ReLU network may instead catapult
    (its NTK shrinks until the step is stable, Lewkowycz et al. 2020), so lr_max is where the
    lazy regime ends, not always where training fails.

    Args:
      model, variables, batch_size, memory_bytes, apply_kwargs, method: as `jwinit.ntk`.
      x: the batch (n, ...); y: targets (n, k) or (n,) for mse, integer labels (n,) for
        cross-entropy.
      loss: 'mse' or 'cross_entropy'.
      kernel: optionally the infinite-width kernel, a callable ``kernel(x)`` returning the (n, n)
        NTK or a `jwinit.theory.Kernels` (``jwinit.theory.kernel_fn(...)``): its numbers are
        `report.infinite`, side by side (on the same residual).

    Returns:
      A `TrainabilityReport`; ``report.loss_curve(lr, steps)`` is the predicted mse curve.

    Raises:
      ValueError, TypeError: an unknown `loss` (before any compute), targets that do not fit the
        outputs, and what `jwinit.ntk` refuses.

    Examples:
      >>> model = jwinit.models.MLP(depth=2, width=128, output_dim=2)
      >>> x = jax.random.normal(jax.random.key(0), (16, 4))
      >>> y = jnp.zeros((16, 2))
      >>> r = jwinit.trainability(model, model.init(jax.random.key(1), x), x, y)
      >>> r.lr_max == 16 * 2 / r.lambda_max
      True
      >>> curve = r.loss_curve(0.5 * r.lr_max, steps=100)
      >>> bool(curve[-1] < curve[0])
      True

    References:
      Jacot, Gabriel & Hongler 2018; Lee et al. 2019, "Wide neural networks of any depth evolve
      as linear models under gradient descent"; Lewkowycz et al. 2020, "The large learning rate
      phase of deep learning: the catapult mechanism".
    """
    if not isinstance(loss, str) or loss not in TRAINABILITY_LOSSES:
        raise ValueError(f"`loss` must be one of {TRAINABILITY_LOSSES}, got {loss!r}.")
    if kernel is not None and not callable(kernel):
        raise TypeError(f"`kernel` must be None or a callable kernel(x) (jwinit.theory."
                        f"kernel_fn(...)), got {type(kernel).__name__}.")
    _check_method(method)
    apply_kwargs = dict(apply_kwargs or {})
    params, f = _split(model, variables, apply_kwargs)
    x = jnp.asarray(x)
    y = np.asarray(y)
    n = x.shape[0] if x.ndim else 0
    out = jax.eval_shape(f, params, x[:1]) if n else None
    k = int(np.prod(out.shape[1:])) if out is not None else 0
    if y.shape[:1] != (n,):
        raise ValueError(f"`y` must have one row per example of `x` ({n}), got shape {y.shape}.")
    if loss == "mse":
        if y.ndim == 1:
            y = y[:, None]
        if y.reshape(n, -1).shape[1] != k:
            raise ValueError(f"`y` must hold the model's {k} outputs per example for 'mse', "
                             f"got shape {y.shape}.")
        if not np.issubdtype(y.dtype, np.number):
            raise TypeError(f"`y` must hold numbers, got {y.dtype}.")
    elif y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or (
            y.size and (y.min() < 0 or y.max() >= k)):
        raise ValueError(f"`y` must be integer labels in [0, {k}) of shape ({n},) for "
                         f"'cross_entropy', got shape {y.shape}, dtype {y.dtype}.")
    theta = np.asarray(_kernel(params, f, x, None, trace=True, batch_size=batch_size,
                               memory_bytes=memory_bytes,
                               dense_of=_dense_of(model, variables, params, apply_kwargs,
                                                  method)))
    residual = None
    if loss == "mse":
        f0 = np.asarray(_outputs(model, variables, params, f, x, apply_kwargs),
                        np.float64).reshape(n, k)
        residual = f0 - y.reshape(n, k).astype(np.float64)
    infinite = None
    if kernel is not None:
        k_inf = kernel(x)
        k_inf = np.asarray(getattr(k_inf, "ntk", k_inf))
        if k_inf.shape != (n, n):
            raise ValueError(f"`kernel(x)` must be the ({n}, {n}) NTK of the batch, got shape "
                             f"{k_inf.shape}.")
        infinite = _report(k_inf, loss, k, residual, "infinite")
    return _report(theta, loss, k, residual, "empirical", infinite)

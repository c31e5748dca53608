"""Mean-field theory of signal propagation in wide random networks.

For a fully connected network with i.i.d. zero-mean weights and biases,

    h^{l+1} = W^{l+1} phi(h^l) + b^{l+1},   Var(W_ij) = sigma_w2 / n_l,   Var(b_i) = sigma_b2,

the pre-activations of every layer are, in the limit of infinite width, centred Gaussians whose
second moment q^l and whose correlation c^l between two inputs follow deterministic maps
(Poole et al. 2016; Schoenholz et al. 2017). With z, z1, z2 i.i.d. N(0, 1):

* length map      q' = sigma_w2 E[phi(sqrt(q) z)^2] + sigma_b2                     (`q_map`)
* its fixed point q* = q_map(q*), the stable one reached from q0 = 1           (`fixed_point`)
* gradient factor chi1 = sigma_w2 E[phi'(sqrt(q*) z)^2]                               (`chi1`)
* correlation map c' = (sigma_w2 E[phi(u1) phi(u2)] + sigma_b2) / q*,
  u1 = sqrt(q*) z1, u2 = sqrt(q*) (c z1 + sqrt(1 - c^2) z2)                          (`c_map`)
* its slope       chi_c = sigma_w2 E[phi'(u1) phi'(u2)]                               (`chi_c`)
* depth scales    xi_q = -1 / log(chi_q),  xi_c = -1 / log(chi_c(c*))          (`depth_scales`)
* edge of chaos   chi1 = 1                                               (`critical_sigma_w2`)
* per-layer forward / backward second moments of a finite-depth MLP                (`predict`)
* moments of the input-output Jacobian spectrum (Pennington et al. 2017, 2018)
  (`jacobian_spectrum`), and all of the above on a grid (`phase_diagram`);
* the infinite-width NNGP and NTK of the whole network on any two sets of inputs
  (Lee et al. 2018; Jacot et al. 2018), from the same expectations (`kernel_fn`).

Numerics: closed forms for 'linear', 'relu', 'leaky_relu', 'abs' (the degree-1 arc-cosine kernel
of Cho & Saul 2009) and 'erf' (Williams 1997); every other activation (any elementwise callable
too) by Gaussian quadrature with panel edges that follow the activation's kinks and length scales
as q changes (:func:`jwinit._quadrature.split_rule`). In float64 the one-dimensional
expectations are accurate to ~1e-12 and the bivariate ones (c-map) to ~1e-10 for
1e-4 <= q <= 1e4; in float32 to its rounding. ``degree=n`` switches to Gauss-Hermite of
degree n (fine for smooth activations at moderate q). Derivatives of phi and of the maps are taken
by autodiff. Every function is pure JAX: jit-able, and vmap-able over its numeric arguments, which
may also be arrays (broadcast against each other) or tracers. Computation is in float64 under
``jax.enable_x64`` and in float32 otherwise. Concrete arguments are validated eagerly. Where no
fixed point exists (ReLU with sigma_w2 > 2, say) q* is inf (run-away) or nan (no convergence)
and so is every quantity defined at q*, never a finite stand-in; quantities that do not depend
on q keep their value (the ReLU chi1 = sigma_w2 / 2).

Passing an activation as a callable (``jax.nn.relu`` instead of ``'relu'``) bypasses the closed
forms: this is how the tests check the closed forms against the quadrature.

References:
  Poole, Lahiri, Raghu, Sohl-Dickstein, Ganguli 2016, "Exponential expressivity in deep neural
  networks through transient chaos". Schoenholz, Gilmer, Ganguli, Sohl-Dickstein 2017, "Deep
  information propagation". Pennington, Schoenholz, Ganguli 2017, "Resurrecting the sigmoid in
  deep learning through dynamical isometry"; 2018, "The emergence of spectral universality in deep
  networks". Klambauer, Unterthiner, Mayr, Hochreiter 2017, "Self-normalizing neural networks".
  Cho & Saul 2009, "Kernel methods for deep learning". Williams 1997, "Computing with infinite
  networks".
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jwinit._checks import check_callable_init, check_choice, check_int, check_reals
from jwinit.theory._batching import cast, compiled, float_dtype
from jwinit.theory._cores import (
    assemble_phase,
    c_star_core,
    critical_core,
    jacobian_core,
    local_core,
    pair_core,
    phase_core,
    predict_core,
    star_core,
)
from jwinit.theory._kernels import kernels_core
from jwinit.theory._moments import ActivationLike, Moments, moments
from jwinit.theory._variances import MeanFieldVariances, variances_of

__all__ = [
    "q_map",
    "fixed_point",
    "chi1",
    "chi_q",
    "c_map",
    "chi_c",
    "correlation_fixed_point",
    "depth_scales",
    "DepthScales",
    "critical_sigma_w2",
    "predict",
    "Prediction",
    "jacobian_spectrum",
    "JacobianSpectrum",
    "phase_diagram",
    "PhaseDiagram",
    "variances_of",
    "MeanFieldVariances",
    "WEIGHT_ENSEMBLES",
    "kernel_fn",
    "Kernels",
    "PARAMETERIZATIONS",
]

WEIGHT_ENSEMBLES = ("gaussian", "orthogonal")
#: How `kernel_fn` scales the weights' gradients: neural-tangents' two parameterizations.
PARAMETERIZATIONS = ("ntk", "standard")


class Kernels(NamedTuple):
    """The infinite-width kernels of `kernel_fn`, each (n1, n2)."""

    nngp: jax.Array
    ntk: jax.Array


def kernel_fn(activation: ActivationLike, depth: int, sigma_w2: Any, sigma_b2: Any, *,
              parameterization: str = "ntk", width: int | None = None, use_bias: bool = True,
              degree: int | None = None, input_sigma_w2: Any = None) -> Any:
    """The infinite-width NNGP and NTK of a fully-connected network: ``f(x1, x2=None) ->
    Kernels(nngp, ntk)``.

    The network is `depth` hidden layers of `activation` and a linear readout (as
    `jwinit.models.MLP`), weights of variance sigma_w2 / fan_in and biases of variance sigma_b2.
    Layer by layer (Lee et al. 2018, eq. 4; Jacot et al. 2018, Thm. 1; Arora et al. 2019), with
    (u1, u2) the Gaussian pre-activation pair of the two inputs:

        K^0 = sigma_w2 x1 . x2 / d + sigma_b2,      K^{l+1} = sigma_w2 E[phi(u1) phi(u2)] + sigma_b2
        Theta^{l+1} = K^{l+1} + sigma_w2 E[phi'(u1) phi'(u2)] Theta^l,      Theta^0 = K^0

    in the 'ntk' parameterization (neural-tangents' default). In the 'standard' one (weights
    N(0, sigma_w2 / fan_in), one learning rate: what a Flax model trained by optax is), a layer's
    weights contribute fan_in x E[phi phi] and its biases 1 instead: Theta^0 = x1 . x2 + 1,
    Theta^{l+1} = width E[phi phi] + 1 + sigma_w2 E[phi' phi'] Theta^l, the expected empirical NTK
    (`jwinit.ntk`, averaged over outputs) of that network at init. The expectations are
    `jwinit.theory`'s (closed forms for the relu family and erf, quadrature for every other
    activation, also for inputs of different norms), so every activation jwinit knows has its
    kernels; they equal neural-tangents' ``stax`` kernels to float64 rounding (relu, erf, gelu).

    Args:
      activation: a registered name, an `Activation` or an elementwise callable.
      depth: hidden layers (>= 0).
      sigma_w2, sigma_b2: weight variance times fan-in and bias variance (>= 0).
      parameterization: 'ntk' or 'standard'.
      width: the hidden layers' width ('standard' only, where the NTK grows with it).
      use_bias: whether the layers have biases (their gradients count in the NTK even at
        sigma_b2 = 0, in the 'standard' parameterization).
      degree: Gauss-Hermite degree for activations without a closed form (faster, less
        accurate than the default split quadrature; about 1e4 nodes per pair of inputs).
      input_sigma_w2: the input layer's weight variance times its fan-in, when it differs from
        the later layers' `sigma_w2` (K^0 = input_sigma_w2 x1 . x2 / d + sigma_b2); None: the
        same. An orthogonal init of gain g on a d x width input layer (d < width) has
        Var = g^2 / width, so input_sigma_w2 = g^2 d / width, not g^2.

    Returns:
      ``f(x1, x2=None)``: `x1` (n1, ...) and `x2` (n2, ...) of the same feature shape (flattened;
      `x2` defaults to `x1`) -> `Kernels` of shape (n1, n2), in float64 under ``jax.enable_x64``.

    Raises:
      ValueError, TypeError: naming the argument (in the factory; the inputs when called).

    Examples:
      >>> f = theory.kernel_fn('relu', depth=2, sigma_w2=2.0, sigma_b2=0.0)
      >>> k = f(jnp.eye(3))
      >>> k.nngp.shape, bool(jnp.allclose(jnp.diag(k.nngp), 2 / 3))  # He init keeps q = 2 |x|^2 / d
      ((3, 3), True)
      >>> bool(jnp.allclose(jnp.diag(k.ntk), 3 * 2 / 3))  # each of 3 layers adds q
      True
    """
    m = moments(activation, degree)
    depth = check_int(depth, "depth", minimum=0)
    for name, v in (("sigma_w2", sigma_w2), ("sigma_b2", sigma_b2),
                    ("input_sigma_w2", input_sigma_w2)):
        if v is None and name == "input_sigma_w2":
            continue
        check_reals(v, name)
        if np.ndim(v) != 0:
            raise ValueError(f"`{name}` must be a scalar, got shape {np.shape(v)}.")
    parameterization = check_choice(parameterization, "parameterization", PARAMETERIZATIONS)
    if parameterization == "standard":
        if width is None:
            raise TypeError("`width` (the hidden layers' width) is needed for "
                            "parameterization='standard', where the NTK grows with it.")
        width = check_int(width, "width", minimum=1)
    elif width is not None:
        raise ValueError(f"`width` is only for parameterization='standard' (the 'ntk' "
                         f"parameterization's kernels do not depend on it), got {width!r}.")
    if not isinstance(use_bias, bool):
        raise TypeError(f"`use_bias` must be a bool, got {use_bias!r}.")

    def kernels(x1: Any, x2: Any = None) -> Kernels:
        a = _kernel_inputs(x1, "x1")
        b = a if x2 is None else _kernel_inputs(x2, "x2")
        if a.shape[1:] != b.shape[1:]:
            raise ValueError(f"`x1` and `x2` must have the same feature shape, got "
                             f"{np.shape(x1)[1:]} and {np.shape(x2)[1:]}.")
        sw2, sb2, w, sw2_in = cast(sigma_w2, sigma_b2, 0.0 if width is None else width,
                                   sigma_w2 if input_sigma_w2 is None else input_sigma_w2)
        nngp, ntk = kernels_core(m, sw2, sb2, a, b, jnp.asarray(depth, jnp.int32), w, sw2_in,
                                 standard=width is not None, use_bias=use_bias,
                                 same=x2 is None)
        return Kernels(nngp, ntk)

    return kernels


def _kernel_inputs(x: Any, name: str) -> jax.Array:
    """(n, features) in the theory's float dtype."""
    try:
        arr = jnp.asarray(x)
    except TypeError:
        raise TypeError(f"`{name}` must be an array of inputs, got {type(x).__name__}.") from None
    if arr.ndim < 2 or arr.shape[0] == 0:
        raise ValueError(f"`{name}` must be a batch of inputs (n, features...) with n >= 1, got "
                         f"shape {arr.shape}.")
    if not (jnp.issubdtype(arr.dtype, jnp.floating) or jnp.issubdtype(arr.dtype, jnp.integer)):
        raise TypeError(f"`{name}` must hold real numbers, got {arr.dtype}.")
    return arr.reshape(arr.shape[0], -1).astype(float_dtype())


def _check_depth(depth: Any, *, static: bool) -> None:
    """`depth` must be an int >= 1 (a Python int when `static`; else also an int array/tracer)."""
    if isinstance(depth, jax.core.Tracer):
        if static:
            raise TypeError("`depth` must be a Python int (it sets the output length), got a "
                            "tracer.")
        return
    arr = np.asarray(depth)
    if isinstance(depth, bool) or arr.dtype.kind not in "iu" or (static and arr.ndim):
        raise TypeError(f"`depth` must be a positive int, got {depth!r}.")
    if np.any(arr < 1):
        raise ValueError(f"`depth` must be a positive int (>= 1), got {depth!r}.")


def _phase(m: Moments, sigma_w2: Any, sigma_b2: Any) -> tuple[jax.Array, ...]:
    """(q*, chi1, c*, xi_q, xi_c) on broadcast arrays.

    With concrete arguments, c* (a Newton iteration on a two-dimensional quadrature, the costly
    part) is solved only where it is not 1, i.e. at the chaotic points (chi1 > 1); the ordered
    points skip it. Under tracing every point runs the whole core (same values).
    """
    sw, sb = cast(sigma_w2, sigma_b2)
    if isinstance(sw, jax.core.Tracer) or isinstance(sb, jax.core.Tracer):
        return compiled(phase_core, m)(sw, sb)
    qs, c1, cq = compiled(star_core, m)(sw, sb, jnp.ones_like(sw))
    chaotic = np.asarray(jnp.isfinite(qs) & (c1 > 1))
    cs = jnp.where(jnp.isfinite(qs), jnp.ones_like(qs), jnp.nan)
    kd = jnp.zeros_like(qs)
    flat = [jnp.ravel(a) for a in (sw, sb, qs)]
    cs, kd = jnp.ravel(cs), jnp.ravel(kd)
    idx = np.nonzero(chaotic.ravel())[0]
    c0 = jnp.zeros((idx.size,), cs.dtype)
    # Two accurate Newton steps suffice almost everywhere; the few points that need more (just
    # right of the critical line, where c* -> 1 is nearly a double root) continue on their own,
    # so the whole grid does not iterate at the pace of its slowest point.
    for steps, cheap in ((2, True), (100, False)):
        if not idx.size:
            break
        c, k, done = compiled(c_star_core, m, max_iter=steps, cheap_start=cheap)(
            *(a[idx] for a in flat), c0)
        done = np.asarray(done)
        if steps == 100:
            c = jnp.where(done, c, jnp.nan)
            done = np.ones_like(done)
        cs = cs.at[idx[done]].set(c[done])
        kd = kd.at[idx[done]].set(k[done])
        idx, c0 = idx[~done], c[~done]
    return assemble_phase(sw, qs, c1, cq, cs.reshape(qs.shape), kd.reshape(qs.shape))


def _slope(activation: ActivationLike, sigma_w2: Any, sigma_b2: Any, q: Any, degree: int | None,
           index: int) -> jax.Array:
    """Output `index` of the length-map program (1: chi1, 2: chi_q) at `q`, or at q* if None."""
    m = moments(activation, degree)
    check_reals(sigma_w2, "sigma_w2")
    check_reals(sigma_b2, "sigma_b2")
    if q is None:
        return compiled(star_core, m)(*cast(sigma_w2, sigma_b2, 1.0))[index]
    check_reals(q, "q")
    return compiled(local_core, m)(*cast(sigma_w2, sigma_b2, q))[index]


def _pair(activation: ActivationLike, sigma_w2: Any, sigma_b2: Any, c: Any, q: Any,
          degree: int | None, index: int) -> jax.Array:
    """Output `index` of the two-input program (0: c_map, 1: chi_c) at (q or q*, c)."""
    m = moments(activation, degree)
    check_reals(sigma_w2, "sigma_w2")
    check_reals(sigma_b2, "sigma_b2")
    check_reals(c, "c", low=-1.0, high=1.0, legal="in [-1, 1]")
    q = _q_or_star(m, sigma_w2, sigma_b2, q)
    return compiled(pair_core, m)(*cast(sigma_w2, sigma_b2, q, c))[index]


def _q_or_star(m: Moments, sigma_w2: Any, sigma_b2: Any, q: Any) -> Any:
    """`q` validated, or q* (from the shared fixed-point program) when it is None."""
    if q is None:
        return compiled(star_core, m)(*cast(sigma_w2, sigma_b2, 1.0))[0]
    check_reals(q, "q")
    return q



def q_map(activation: ActivationLike, sigma_w2: Any, sigma_b2: Any, q: Any, *,
          degree: int | None = None) -> jax.Array:
    """The length map q' = sigma_w2 E[phi(sqrt(q) z)^2] + sigma_b2, z ~ N(0, 1).

    The second moment of the next layer's pre-activations given this layer's (Poole et al. 2016,
    eq. 3). Closed forms: relu q/2, leaky_relu(a) q (1 + a^2) / 2, abs and linear q,
    erf (2/pi) arcsin(2q / (1 + 2q)).

    Args:
      activation: a registered name ('relu', 'tanh', 'leaky_relu:0.2', ...), an `Activation` or
        an elementwise callable.
      sigma_w2: weight variance times fan-in (>= 0).
      sigma_b2: bias variance (>= 0).
      q: the input second moment (>= 0).
      degree: Gauss-Hermite degree to use instead of the default split quadrature (closed
        forms ignore it).

    Returns:
      q', broadcast over the shapes of the numeric arguments.

    Raises:
      ValueError: unknown activation, negative or non-finite concrete variances, bad `degree`.
      TypeError: non-numeric arguments.

    Examples:
      >>> theory.q_map('relu', 2.0, 0.0, 1.5)   # He init preserves the length
      Array(1.5, dtype=float32)
    """
    m = moments(activation, degree)
    for name, v in (("sigma_w2", sigma_w2), ("sigma_b2", sigma_b2), ("q", q)):
        check_reals(v, name)
    return compiled(local_core, m)(*cast(sigma_w2, sigma_b2, q))[0]


def fixed_point(activation: ActivationLike, sigma_w2: Any, sigma_b2: Any, *, q0: Any = 1.0,
                degree: int | None = None) -> jax.Array:
    """The stable fixed point q* = q_map(q*) reached by iterating the length map from `q0`.

    Safeguarded Newton iteration on q_map(q) - q inside ``lax.while_loop`` (closed form
    q* = sigma_b2 / (1 - sigma_w2 (1 + a^2) / 2) for the ReLU family). Where the iterates run
    away (ReLU-like activations above sigma_w2 (1 + a^2) / 2 = 1, e.g. ReLU with sigma_w2 > 2)
    the result is ``inf``; where the iteration fails to converge, ``nan``. At exact ReLU
    criticality (sigma_w2 = 2, sigma_b2 = 0) every q is fixed and `q0` is returned.

    Args:
      activation: activation name, `Activation` or callable.
      sigma_w2, sigma_b2: weight and bias variances (>= 0).
      q0: starting length (>= 0); the iterates converge to the fixed point attracting it.
      degree: Gauss-Hermite degree instead of the default quadrature.

    Returns:
      q*, satisfying ``q_map(q*) == q*`` to a few float ulps, or inf/nan (see above).

    Examples:
      >>> theory.fixed_point('selu', 1.0, 0.0)   # Klambauer et al. 2017: the (0, 1) point
      Array(1., dtype=float32)
    """
    m = moments(activation, degree)
    for name, v in (("sigma_w2", sigma_w2), ("sigma_b2", sigma_b2), ("q0", q0)):
        check_reals(v, name)
    return compiled(star_core, m)(*cast(sigma_w2, sigma_b2, q0))[0]


def chi1(activation: ActivationLike, sigma_w2: Any, sigma_b2: Any, *, q: Any = None,
         degree: int | None = None) -> jax.Array:
    """chi1 = sigma_w2 E[phi'(sqrt(q*) z)^2]: the per-layer growth of gradient second moments.

    It is also the slope of the correlation map at c = 1 (Poole et al. 2016, eq. 7): chi1 < 1 is
    the ordered phase, chi1 > 1 the chaotic one, chi1 = 1 the edge of chaos (Schoenholz et al.
    2017). ReLU: sigma_w2 / 2 (so He init, sigma_w2 = 2, is critical); erf: sigma_w2 (4/pi) /
    sqrt(1 + 4 q*).

    Args:
      activation: activation name, `Activation` or callable.
      sigma_w2, sigma_b2: weight and bias variances (>= 0).
      q: evaluate at this length instead of at q* (for a layer away from the fixed point).
      degree: Gauss-Hermite degree instead of the default quadrature.

    Returns:
      chi1 (nan where q* does not exist and the moment has no limit).

    Examples:
      >>> theory.chi1('relu', 2.0, 0.0)
      Array(1., dtype=float32)
    """
    return _slope(activation, sigma_w2, sigma_b2, q, degree, 1)


def chi_q(activation: ActivationLike, sigma_w2: Any, sigma_b2: Any, *, q: Any = None,
          degree: int | None = None) -> jax.Array:
    """chi_q = d q_map / dq at q*: the rate at which lengths approach their fixed point.

    chi_q = chi1 + sigma_w2 E[phi''(sqrt(q*) z) phi(sqrt(q*) z)] (Schoenholz et al. 2017, eq. 5),
    computed by autodiff of the length map (so kinks are handled). |q^l - q*| ~ chi_q^l.

    Args:
      activation, sigma_w2, sigma_b2, degree: as for :func:`chi1`.
      q: evaluate at this length instead of at q*.

    Returns:
      chi_q (nan where q* is not finite).

    Examples:
      >>> theory.chi_q('tanh', 1.5, 0.05)   # below chi1 = 0.95: lengths converge faster
      Array(0.5519832, dtype=float32)
    """
    return _slope(activation, sigma_w2, sigma_b2, q, degree, 2)


def c_map(activation: ActivationLike, sigma_w2: Any, sigma_b2: Any, c: Any, *, q: Any = None,
          degree: int | None = None) -> jax.Array:
    """The correlation map c' = (sigma_w2 E[phi(u1) phi(u2)] + sigma_b2) / q_map(q).

    (u1, u2) are centred Gaussians with E u1^2 = E u2^2 = q and correlation c, q = q* by default
    (Poole et al. 2016, eq. 5); the denominator is the same expression at c = 1, so
    ``c_map(1) == 1`` exactly. Closed forms: ReLU family via the arc-cosine kernel (Cho & Saul
    2009) E[relu(u1) relu(u2)] = q (sqrt(1 - c^2) + (pi - arccos c) c) / (2 pi); erf via
    E[erf(u1) erf(u2)] = (2/pi) arcsin(2 q c / (1 + 2 q)). For the ReLU family with
    sigma_b2 = 0 the map does not depend on q. Otherwise a two-dimensional split quadrature.

    Args:
      activation: activation name, `Activation` or callable.
      sigma_w2, sigma_b2: weight and bias variances (>= 0).
      c: input correlation in [-1, 1].
      q: the length of both inputs (default q*).
      degree: Gauss-Hermite degree (per dimension) instead of the default quadrature.

    Returns:
      c' (nan where q* is needed but not finite).

    Examples:
      >>> theory.c_map('relu', 2.0, 0.0, 0.0)   # 1 / pi
      Array(0.31830987, dtype=float32)
    """
    return _pair(activation, sigma_w2, sigma_b2, c, q, degree, 0)


def chi_c(activation: ActivationLike, sigma_w2: Any, sigma_b2: Any, c: Any, *, q: Any = None,
          degree: int | None = None) -> jax.Array:
    """The slope of the correlation map, dc'/dc = sigma_w2 E[phi'(u1) phi'(u2)] at q*.

    The derivative of the covariance map q12' = sigma_w2 E[phi(u1) phi(u2)] + sigma_b2 with
    respect to q12 = q c (Price's theorem; Schoenholz et al. 2017, eq. 9), evaluated at (q, c).
    At q = q* it is the slope of :func:`c_map`; at c = 1 it is chi1; at the stable correlation
    fixed point c* it sets the correlation depth scale xi_c = -1 / log(chi_c). (Where q* = 0,
    e.g. tanh with sigma_b2 = 0 in the ordered phase, this is the q* -> 0+ limit of the formula.)

    Args:
      activation, sigma_w2, sigma_b2, q, degree: as for :func:`c_map`.
      c: correlation in [-1, 1].

    Returns:
      chi_c.

    Examples:
      >>> theory.chi_c('relu', 2.0, 0.0, 0.0)   # P(u1 > 0, u2 > 0) sigma_w2 = 1/4 * 2
      Array(0.5, dtype=float32)
    """
    return _pair(activation, sigma_w2, sigma_b2, c, q, degree, 1)


def correlation_fixed_point(activation: ActivationLike, sigma_w2: Any, sigma_b2: Any, *,
                            degree: int | None = None) -> jax.Array:
    """The stable correlation fixed point c* of :func:`c_map` at q*.

    The map is increasing and convex on [0, 1] with c_map(1) = 1 and slope chi1 there, so:
    c* = 1 when chi1 <= 1 (ordered phase; two inputs become identical); when chi1 > 1 (chaotic
    phase) c* is the unique other fixed point in [0, 1), found by Newton's method from c = 0,
    which converges monotonically for a convex map (Poole et al. 2016).

    Args:
      activation, sigma_w2, sigma_b2, degree: as for :func:`c_map`.

    Returns:
      c* (nan where q* is not finite and the map has no limit).

    Examples:
      >>> theory.correlation_fixed_point('tanh', 1.0, 0.05)   # ordered
      Array(1., dtype=float32)
    """
    m = moments(activation, degree)
    check_reals(sigma_w2, "sigma_w2")
    check_reals(sigma_b2, "sigma_b2")
    return _phase(m, sigma_w2, sigma_b2)[2]


class DepthScales(NamedTuple):
    """Depth scales (in layers) of Schoenholz et al. 2017: ``xi_q``, ``xi_c``."""

    xi_q: jax.Array
    xi_c: jax.Array


def depth_scales(activation: ActivationLike, sigma_w2: Any, sigma_b2: Any, *,
                 degree: int | None = None) -> DepthScales:
    """The depth scales over which lengths and correlations reach their fixed points.

    Schoenholz et al. 2017, eqs. (5)-(9): |q^l - q*| ~ exp(-l / xi_q), |c^l - c*| ~
    exp(-l / xi_c), with

        xi_q = -1 / log(chi_q),  chi_q = d q_map / dq (q*)
                                       = chi1 + sigma_w2 E[phi''(sqrt(q*) z) phi(sqrt(q*) z)],
        xi_c = -1 / log(chi_c*), chi_c* = sigma_w2 E[phi'(u1) phi'(u2)] at (q*, c*).

    In the ordered phase c* = 1 and chi_c* = chi1, so xi_c = -1 / log(chi1); xi_c diverges at the
    edge of chaos (chi1 = 1), which bounds the depth of trainable networks. A scale is ``inf``
    where its chi is >= 1 (marginal) and xi_q is ``nan`` where q* is not finite.

    Args:
      activation, sigma_w2, sigma_b2, degree: as for :func:`c_map`.

    Returns:
      ``DepthScales(xi_q, xi_c)`` (unpacks as a pair).

    Examples:
      >>> theory.depth_scales('tanh', 1.5, 0.05).xi_c   # chi1 = 0.939: -1 / log(chi1)
      Array(15.791035, dtype=float32)
    """
    m = moments(activation, degree)
    check_reals(sigma_w2, "sigma_w2")
    check_reals(sigma_b2, "sigma_b2")
    _, _, _, xq, xc = _phase(m, sigma_w2, sigma_b2)
    return DepthScales(xq, xc)


class PhaseDiagram(NamedTuple):
    """Mean-field quantities on a (sigma_w2, sigma_b2) grid (see :func:`phase_diagram`)."""

    q_star: jax.Array
    chi1: jax.Array
    c_star: jax.Array
    xi_q: jax.Array
    xi_c: jax.Array


def phase_diagram(activation: ActivationLike, sigma_w2: Any, sigma_b2: Any, *,
                  degree: int | None = None) -> PhaseDiagram:
    """q*, chi1, c*, xi_q and xi_c at every (sigma_w2, sigma_b2), in one compiled call.

    The order-to-chaos diagram of Poole et al. 2016 (Fig. 2) and the depth scales of Schoenholz
    et al. 2017 (Fig. 1). The arguments broadcast: pass ``sw[:, None]`` and ``sb[None, :]`` for a
    grid. Closed-form activations cost microseconds per point; the others need a two-dimensional
    quadrature per Newton step for c* (about 20k nodes), some milliseconds per point on a CPU.

    Args:
      activation, degree: as for :func:`c_map`.
      sigma_w2, sigma_b2: arrays of variances (>= 0).

    Returns:
      A `PhaseDiagram` of arrays of the broadcast shape.

    Examples:
      >>> sw = jnp.linspace(0.5, 4, 64)[:, None]; sb = jnp.linspace(0, 0.3, 32)[None, :]
      >>> pd = theory.phase_diagram('tanh', sw, sb)   # pd.chi1 > 1 is the chaotic phase
    """
    m = moments(activation, degree)
    check_reals(sigma_w2, "sigma_w2")
    check_reals(sigma_b2, "sigma_b2")
    return PhaseDiagram(*_phase(m, sigma_w2, sigma_b2))


def critical_sigma_w2(activation: ActivationLike, sigma_b2: Any = 0.0, *,
                      degree: int | None = None) -> jax.Array:
    """The weight variance on the edge of chaos: chi1(sigma_w2, sigma_b2) = 1.

    Closed form for the ReLU family, 2 / (1 + a^2) (He et al. 2015; for sigma_b2 > 0 the length
    map has no finite fixed point there). Otherwise the bracket [0, sigma] is grown by doubling
    until chi1 >= 1 and bisected to full precision inside ``lax`` loops (vmap-able over
    `sigma_b2`); the result is checked to satisfy |chi1 - 1| <= 1e3 eps and is nan otherwise
    (no crossing, or chi1 jumps over 1 where q* diverges). Where several crossings exist the
    first one found from small sigma_w2 is returned. With sigma_b2 = 0 and phi(0) = 0 the
    transition is where the collapsed state q* = 0 loses stability, sigma_w2 = 1 / phi'(0)^2
    (Poole et al. 2016): tanh and hard_tanh give 1, erf pi / 4.

    Args:
      activation: activation name, `Activation` or callable.
      sigma_b2: bias variance (>= 0).
      degree: Gauss-Hermite degree instead of the default quadrature.

    Returns:
      sigma_w2 at criticality.

    Examples:
      >>> theory.critical_sigma_w2('relu')
      Array(2., dtype=float32)
    """
    m = moments(activation, degree)
    check_reals(sigma_b2, "sigma_b2")
    (sb,) = cast(sigma_b2)
    return compiled(critical_core, m)(sb)


class JacobianSpectrum(NamedTuple):
    """Mean and variance of the eigenvalue distribution of J J^T (see :func:`jacobian_spectrum`)."""

    mean: jax.Array
    variance: jax.Array


def jacobian_spectrum(activation: ActivationLike, sigma_w2: Any, sigma_b2: Any, depth: Any, *,
                      weights: str = "gaussian", q: Any = None,
                      degree: int | None = None) -> JacobianSpectrum:
    """Moments of the spectrum of J J^T for the input-output Jacobian of a deep MLP at q*.

    J = prod_{l=1..L} D^l W^l, D^l = diag(phi'(h^l)), all layers at the fixed point q*
    (Pennington, Schoenholz & Ganguli 2017, eqs. 13-17; Pennington et al. 2018). With
    mu_k = E[phi'(sqrt(q*) z)^(2k)], free probability gives, for width -> infinity,

        mean      m1        = (sigma_w2 mu_1)^L = chi1^L
        variance  m2 - m1^2 = L m1^2 (mu_2 / mu_1^2 - 1 - s_1),

    s_1 = -1 for Gaussian weights (W^T W Marchenko-Pastur, relative variance 1) and s_1 = 0 for
    (scaled) orthogonal weights. Linear networks: Gaussian variance L sigma_w2^(2L), orthogonal 0;
    ReLU at He init: mean 1, variance 2L (Gaussian) and L (orthogonal), so ReLU nets are never
    dynamically isometric.

    Args:
      activation: activation name, `Activation` or callable.
      sigma_w2, sigma_b2: weight and bias variances (>= 0).
      depth: number of layers L (>= 1).
      weights: 'gaussian' or 'orthogonal'.
      q: evaluate at this length instead of q*.
      degree: Gauss-Hermite degree instead of the default quadrature.

    Returns:
      ``JacobianSpectrum(mean, variance)``.

    Examples:
      >>> theory.jacobian_spectrum('linear', 1.0, 0.0, 10, weights='orthogonal')
      JacobianSpectrum(mean=Array(1., dtype=float32), variance=Array(0., dtype=float32))
    """
    m = moments(activation, degree)
    check_choice(weights, "weights", WEIGHT_ENSEMBLES)
    check_reals(sigma_w2, "sigma_w2")
    check_reals(sigma_b2, "sigma_b2")
    _check_depth(depth, static=False)
    core = compiled(jacobian_core, m, orthogonal=weights == "orthogonal")
    q = _q_or_star(m, sigma_w2, sigma_b2, q)
    return JacobianSpectrum(*core(*cast(sigma_w2, sigma_b2, depth, q)))


class Prediction(NamedTuple):
    """Per-layer mean-field prediction for an MLP (see :func:`predict`).

    Attributes:
      forward: shape (..., depth); ``forward[l]`` = E[(h^{l+1})^2].
      backward: shape (..., depth); ``backward[l]`` = E[(d<g, h^L>/dh^{l+1})^2].
      sigma_w2: hidden-layer weight variance times fan-in.
      sigma_b2: bias variance.
    """

    forward: jax.Array
    backward: jax.Array
    sigma_w2: jax.Array
    sigma_b2: jax.Array


def predict(kernel_init: Any, activation: ActivationLike, depth: int, *, bias_init: Any = None,
            input_q: Any = 1.0, width: int = 1024, input_dim: int | None = None,
            first_layer_bias: bool = True, degree: int | None = None) -> Prediction:
    """Per-layer forward and backward second moments of an MLP, as the probe measures them.

    The network (layers l = 1..L = `depth`, all of width `width`, flax layout ``x @ W``):

        h^1 = W^1 x + b^1,   h^{l+1} = W^{l+1} phi(h^l) + b^{l+1}   (l = 1 .. L - 1),

    with inputs of mean square `input_q` (b^1 only if `first_layer_bias`), and a cotangent
    g ~ N(0, I) on the last pre-activation h^L (no loss, no activation after the last layer). This
    is the network `jwinit.probe.probe_mlp` measures, index for index. With 0-based index l:

        forward[l]  = q^{l+1} = E[(h^{l+1})^2]:
                      q^1 = sigma_w2^(1) input_q (+ sigma_b2),
                      q^{l+1} = sigma_w2 E[phi(sqrt(q^l) z)^2] + sigma_b2   (:func:`q_map`);
        backward[l] = E[(d<g, h^L> / dh^{l+1})^2]:
                      backward[L-1] = 1,
                      backward[l-1] = sigma_w2 E[phi'(sqrt(q^l) z)^2] backward[l]
                      (chi1 at each layer's own q, gradient independence; Schoenholz et al. 2017).

    Args:
      kernel_init: a jwinit initializer (its exact per-entry variance is read with
        `jwinit.describe` at shape (width, width), sigma_w2 = width Var(W), and at
        (input_dim, width) for the first layer, sigma_w2^(1) = input_dim Var(W^1); it must have
        mean 0) or a pair ``(sigma_w2, sigma_b2)`` of numbers or arrays/tracers.
      activation: activation name, `Activation` or callable.
      depth: number of layers L (a positive Python int).
      bias_init: bias initializer (sigma_b2 = its variance; default: no bias, sigma_b2 = 0).
        Only with an initializer `kernel_init`.
      input_q: mean square of the input entries (default 1).
      width: layer width used to describe the initializers (fan-in schemes do not depend on it).
      input_dim: input dimension (default `width`).
      first_layer_bias: whether the first layer adds a bias b^1 (default True, as in the probe;
        False for ``h^1 = W^1 x``).
      degree: Gauss-Hermite degree instead of the default quadrature.

    Returns:
      A `Prediction` (forward, backward of shape (..., depth), sigma_w2, sigma_b2).

    Raises:
      ValueError: bad depth/width, nonzero-mean initializers, negative variances, unknown
        activation.

    Examples:
      >>> p = theory.predict(jwinit.he_normal(), 'relu', depth=10)
      >>> p.forward   # He init preserves q^l = 2 input_q
      Array([2., 2., 2., 2., 2., 2., 2., 2., 2., 2.], dtype=float32)
    """
    m = moments(activation, degree)
    _check_depth(depth, static=True)
    depth = int(depth)
    check_reals(input_q, "input_q")
    width = check_int(width, "width", minimum=1)
    if input_dim is not None:
        input_dim = check_int(input_dim, "input_dim", minimum=1)
    if isinstance(kernel_init, tuple | list):
        if len(kernel_init) != 2 or bias_init is not None:
            raise ValueError(
                "`kernel_init` as numbers must be a pair (sigma_w2, sigma_b2) and then "
                f"`bias_init` must be None; got {kernel_init!r} and {bias_init!r}."
            )
        sw, sb = kernel_init
        check_reals(sw, "sigma_w2")
        check_reals(sb, "sigma_b2")
        sw1 = sw
    elif callable(kernel_init):
        check_callable_init(kernel_init, "kernel_init", name="predict")
        check_callable_init(bias_init, "bias_init", name="predict", optional=True)
        sw, sb, sw1 = variances_of(kernel_init, bias_init, width=width, input_dim=input_dim)
    else:
        raise TypeError(
            "`kernel_init` must be an initializer or a pair (sigma_w2, sigma_b2), got "
            f"{kernel_init!r}."
        )
    sw, sb, sw1, q0 = cast(sw, sb, sw1, input_q)
    core = compiled(predict_core, m, depth=depth,
                     first_layer_bias=bool(first_layer_bias))
    forward, backward = core(sw, sb, sw1, q0)
    return Prediction(forward, backward, sw, sb)

"""The signal-propagation probe: per-layer forward and backward statistics of deep random MLPs.

The network is the one mean-field theory describes (Poole et al. 2016; Schoenholz et al. 2017)::

    h^1     = W^1 x + b^1,                      x ~ N(0, I_{input_dim})
    h^{l+1} = W^{l+1} phi(h^l) + b^{l+1},        l = 1 .. depth - 1

with ``W^l = kernel_init(fold_in(k_w, l), (n_in, n_out))`` and ``b^l = bias_init(fold_in(k_b, l),
(n_out,))`` (Flax layout: ``h = phi(h_prev) @ W + b``). For every layer the probe records the
statistics of `TABLE` (``jwinit.probe.TABLE``; each is documented there and on `ProbeResult`):
the forward second moment of h^{l+1}, the backward one of ``d<g, h^depth>/dh^{l+1}`` for a
Gaussian cotangent ``g ~ N(0, I)`` on the last pre-activation (no loss), the mean and variance,
the two signal statistics of Brock et al. 2021, dead and saturated units, and the correlation of
input pairs (the c-map of Poole et al. 2016).

How it runs (the performance core):

* one ``jit`` per distinct program, cached by its static configuration;
* ``lax.scan`` over layers, so the compile time does not grow with depth;
* weights sampled inside the scan body with the kernel initializer itself from
  ``fold_in(k_w, layer)``: any jwinit or ``jax.nn.initializers`` closure works, and no
  (depth, width, width) stack ever exists;
* ``vmap`` over seeds; several schemes (and scale parameters) share one program and one batched
  matmul per layer;
* ``jax.checkpoint`` around the scan body decides what the backward pass keeps. ``remat='none'``
  keeps the sampled weights (one (width, width) matrix per layer, kernel closure and seed) and
  the per-layer carries: nothing is re-sampled. ``remat='layer'`` keeps only one (batch, width)
  carry per layer and re-samples the weights from the key (sampling a truncated normal costs about
  a third of a CPU probe); ``remat='sqrt'`` nests the scan in blocks of about sqrt(depth) layers
  so memory is O(sqrt(depth)) at the price of one more forward pass. ``'auto'`` picks the first
  of 'none', 'layer', 'sqrt' whose memory fits in a quarter of the device's. The values are the
  same in every mode;
* per-layer gradient statistics come out of a custom-VJP "tap" whose cotangent is the statistic
  itself, so the backward pass never materializes a per-layer gradient stack.

Verdicts (`ProbeResult.verdict`, `ProbeResult.assess`): the regime of each direction
('preserved', 'vanishing', 'exploding') from the measured steady per-layer rate over the last half
of the network (more than a factor 10 over the depth at that rate is vanishing or exploding; the
definition is on `jwinit.probe.Assessment` and does not depend on the width), reported next to the
agreement with `jwinit.theory.predict` (within a finite-width tolerance), the mean-field phase
and depth scale, and any float32 underflow or overflow.

References:
  Poole et al. 2016, "Exponential expressivity in deep neural networks through transient chaos".
  Schoenholz et al. 2017, "Deep Information Propagation".
  Pennington, Schoenholz & Ganguli 2017, "Resurrecting the sigmoid in deep learning through
  dynamical isometry: theory and practice".
  Brock, De & Smith 2021, "Characterizing signal propagation to close the performance gap in
  unnormalized ResNets".
  Hanin & Nica 2019, "Products of many large random matrices and gradients in deep neural networks"
  (the finite-width spread of log second moments, used for the verdict tolerance).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jwinit._checks import check_callable_init, check_initializer, check_int, renamed
from jwinit.probe._jacobian import OUTPUTS, jacobian_singular_values
from jwinit.probe._options import PRECISIONS, REMAT, STATISTICS, ProbeOptions
from jwinit.probe._program import (
    Config,
    Member,
    program,
    resolve_activation,
    seed_keys,
    single_key,
)
from jwinit.probe._result import ProbeResult, make_result
from jwinit.probe._stats import CORRELATION_PAIRS, STATS, TABLE, Statistic
from jwinit.probe._sweep import (
    CELL_FIELDS,
    SUMMARY_COLUMNS,
    Task,
    default_mesh,
    plan,
    results_from_rows,
    summarize,
    sweep,
)
from jwinit.probe._verdict import (
    PHASES,
    REGIME_FACTOR,
    VERDICTS,
    Assessment,
    finite_width_tolerance,
    rate_margin,
    theory_tolerance,
)
from jwinit.schemes import effective_sigmas

__all__ = [
    "PRECISIONS",
    "REMAT",
    "STATISTICS",
    "STATS",
    "TABLE",
    "VERDICTS",
    "PHASES",
    "REGIME_FACTOR",
    "theory_tolerance",
    "rate_margin",
    "OUTPUTS",
    "ProbeOptions",
    "ProbeResult",
    "Assessment",
    "Statistic",
    "probe_mlp",
    "probe_program",
    "jacobian_singular_values",
    "finite_width_tolerance",
    "CORRELATION_PAIRS",
    "sweep",
    "plan",
    "Task",
    "summarize",
    "results_from_rows",
    "default_mesh",
    "CELL_FIELDS",
    "SUMMARY_COLUMNS",
]


@renamed(batch="batch_size", num_seeds="seeds")
def probe_program(kernel_init: Callable[..., Any], activation: str | Callable[..., Any], *,
                  depth: int, width: int, batch_size: int, seeds: int = 1,
                  bias_init: Callable[..., Any] | None = None, input_dim: int | None = None,
                  precision: str | None = None, remat: str = "auto",
                  input_correlation: float = 0.5, saturation_threshold: float = 1e-3,
                  statistics: str = "all"
                  ) -> tuple[Callable[..., Any], tuple[jax.Array, ...]]:
    """The jitted program `probe_mlp` runs and its arguments, for compile-time measurements.

    Returns ``(fn, args)`` with ``fn(*args)`` the raw statistics; ``fn.lower(*args).compile()``
    compiles it anew. Arguments as in `probe_mlp`, without `key` (seed keys from
    ``jax.random.key(0)``).
    """
    cfg, keys, gw, gb = _setup(
        jax.random.key(0), kernel_init, activation, depth=depth, width=width,
        batch_size=batch_size, seeds=seeds, bias_init=bias_init, input_dim=input_dim,
        precision=precision,
        remat=remat, input_correlation=input_correlation,
        saturation_threshold=saturation_threshold, statistics=statistics)
    return program(cfg), (keys, gw, gb)


def _setup(key: Any, kernel_init: Any, activation: Any, *, depth: int, width: int,
           batch_size: int, seeds: int = 1, bias_init: Any = None, **options: Any):
    options = ProbeOptions(batch_size=batch_size, **options)
    key = single_key(key, "probe_mlp")
    depth = check_int(depth, "depth", minimum=1)
    width = check_int(width, "width", minimum=1)
    num_seeds = check_int(seeds, "seeds", minimum=1)
    act = resolve_activation(activation)
    input_dim = options.input_dim_for(width)
    check_initializer(kernel_init, "kernel_init", (input_dim, width))
    if input_dim != width or depth > 1:
        check_initializer(kernel_init, "kernel_init", (width, width))
    if bias_init is not None:
        check_callable_init(bias_init, "bias_init")
        check_initializer(bias_init, "bias_init", (width,))
    cfg = Config.build((Member(kernel_init, bias_init, act, 1),), depth, width, options,
                       seeds_per_device=num_seeds)
    keys = seed_keys(key, range(num_seeds))
    ones = jnp.ones((1,), jnp.float32)
    return cfg, keys, ones, ones


@renamed(batch="batch_size", num_seeds="seeds")
def probe_mlp(
    key: jax.Array | int,
    kernel_init: Callable[..., Any],
    activation: str | Callable[..., Any],
    *,
    depth: int,
    width: int,
    batch_size: int,
    seeds: int = 1,
    bias_init: Callable[..., Any] | None = None,
    input_dim: int | None = None,
    precision: str | None = None,
    remat: str = "auto",
    input_correlation: float = 0.5,
    saturation_threshold: float = 1e-3,
    statistics: str = "all",
) -> ProbeResult:
    """Probe a deep random MLP: per-layer forward and backward statistics, for each seed.

    Seed s uses the network of ``jax.random.fold_in(key, s)``; its weights of layer l are
    ``kernel_init(fold_in(k_w, l), (n_in, n_out))``, sampled inside the compiled scan.

    Args:
      key: a PRNG key (or an int seed).
      kernel_init: any initializer closure (``jwinit.he_normal()``,
        ``jax.nn.initializers.orthogonal()``, ...).
      activation: a name from `jwinit.activation_names()` or an elementwise callable.
      depth: number of layers (>= 1).
      width: units per layer (>= 1).
      batch_size: inputs per seed (>= 1; pairs (2i, 2i + 1) give the correlation statistic).
      seeds: independent networks, vmapped (>= 1); seed s uses ``fold_in(key, s)``.
      bias_init: initializer of the biases, or None for no bias.
      input_dim: dimension of x (default `width`).
      precision: matmul precision, one of `PRECISIONS`: 'highest' (float32), 'tensorfloat32'
        (TF32 on NVIDIA GPUs), 'bfloat16' (bf16 operands, float32 accumulation) or None (the
        backend default).
      remat: 'auto', 'none', 'layer' or 'sqrt' (see the module docstring).
      input_correlation: correlation of the input pairs, in [-1, 1].
      saturation_threshold: |phi'(h)| at or below which a unit counts as dead/saturated.
      statistics: 'all'; 'second_moments' for only `forward` and `backward` (the other
        statistics are NaN; the cheapest probe); 'forward' for every forward statistic without
        the backward pass (`backward` NaN).

    Returns:
      A `ProbeResult` with (seeds, depth) arrays.

    Raises:
      ValueError, TypeError: a bad argument, named with its value and the legal values, before
        any compute.

    Examples:
      >>> r = jwinit.probe_mlp(jax.random.key(0), jwinit.he_normal(), 'relu', depth=64,
      ...                      width=512, batch_size=256, seeds=4)
      >>> r.forward.shape
      (4, 64)
      >>> r.verdict()
      'preserved'

    References:
      Schoenholz et al. 2017; Pennington et al. 2017; Brock et al. 2021.
    """
    cfg, keys, gw, gb = _setup(
        key, kernel_init, activation, depth=depth, width=width, batch_size=batch_size,
        seeds=seeds, bias_init=bias_init, input_dim=input_dim, precision=precision,
        remat=remat, input_correlation=input_correlation,
        saturation_threshold=saturation_threshold, statistics=statistics)
    stats, back = program(cfg)(keys, gw, gb)
    stats, back = np.asarray(stats)[:, :, 0, :], np.asarray(back)[:, :, 0]
    sw2, sb2 = effective_sigmas(kernel_init, bias_init, cfg.width)
    act = cfg.members[0].activation
    return make_result(
        stats, back, scheme=getattr(kernel_init, "__name__", type(kernel_init).__name__),
        activation=act.label, cfg=cfg, seeds=tuple(range(keys.shape[0])), sigma_w2=sw2,
        sigma_b2=sb2, kernel_init=kernel_init, bias_init=bias_init,
    )



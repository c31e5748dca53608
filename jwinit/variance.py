"""`variance_scaling`, the core of the fan-based schemes, and its named one-line variants.

    Var(W) = scale / n,   n = fan_in | fan_out | (fan_in + fan_out) / 2 | sqrt(fan_in * fan_out)

Distributions (all with mean 0 and exactly that variance; complex: E|W|^2 = scale / n):

* ``'truncated_normal'``: N(0, 1) truncated to [-2, 2], divided by its std 0.87962566103423978
  (complex: modulus <= 2, divided by the exact sqrt(E|z|^2) = 0.96196);
* ``'normal'``: N(0, scale / n);
* ``'uniform'``: U(-sqrt(3 scale / n), +sqrt(3 scale / n)) (complex: the uniform disk).

For real float32/float64 the values are bit-identical to ``jax.nn.initializers.variance_scaling``
for the same key; half-precision dtypes sample in float32 and cast.
"""

from __future__ import annotations

from typing import Any

from jwinit._builders import DISTRIBUTIONS, MODES, scaled_variance
from jwinit._checks import check_real
from jwinit._types import DTypeLike, Initializer
from jwinit.fans import Axes, fan_spec
from jwinit.registry import register

__all__ = [
    "variance_scaling",
    "MODES",
    "DISTRIBUTIONS",
    "glorot_uniform",
    "glorot_normal",
    "xavier_uniform",
    "xavier_normal",
    "he_uniform",
    "he_normal",
    "kaiming_uniform",
    "kaiming_normal",
    "lecun_uniform",
    "lecun_normal",
    "leaky_relu_scale",
]

def variance_scaling(
    scale: Any,
    mode: str,
    distribution: str,
    in_axis: Axes = -2,
    out_axis: Axes = -1,
    batch_axis: Axes = (),
    dtype: DTypeLike = None,
    *,
    layout: str | None = None,
    groups: int = 1,
    einsum: str | None = None,
) -> Initializer:
    """Initializer with Var(W) = scale / n, n chosen by `mode` from the weight's fans.

    Args:
      scale: positive multiplier of the variance (2.0 for He, 1.0 for Glorot/LeCun).
      mode: ``'fan_in'``, ``'fan_out'``, ``'fan_avg'`` or ``'fan_geo_avg'``.
      distribution: ``'truncated_normal'``, ``'normal'`` or ``'uniform'``.
      in_axis, out_axis, batch_axis: weight axes of inputs, outputs and independent copies;
        others are the receptive field (see `jwinit.compute_fans`).
      dtype: the default dtype (``None``: the default float dtype).
      layout: ``'flax'``, ``'torch'`` or ``'equinox'`` instead of the axes.
      groups: convolution feature groups (divides fan_out).
      einsum: an einsum spec ``'inputs,kernel->output'`` from which to read the fans of a
        DenseGeneral/Einsum kernel (see `jwinit.fans_from_einsum`).

    Returns:
      ``init(key, shape, dtype=dtype, out_sharding=None)``.

    References:
      Glorot & Bengio 2010; He et al. 2015; LeCun et al. 1998; Klambauer et al. 2017.
    """
    check_real(scale, "scale", low=0, low_open=True)
    if mode not in MODES:
        raise ValueError(f"`mode` must be one of {MODES}, got {mode!r}.")
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"`distribution` must be one of {DISTRIBUTIONS}, got {distribution!r}.")
    spec = fan_spec(in_axis, out_axis, batch_axis, layout=layout, groups=groups, einsum=einsum)
    return scaled_variance(scale, mode, distribution, spec, dtype, "variance_scaling")


register(
    distribution="truncated normal / normal / uniform", variance="scale / n(mode)",
    fan_mode="any", paper="Glorot & Bengio 2010; He et al. 2015", min_ndim=2, kind="matrix",
    example={"scale": 2.0, "mode": "fan_in", "distribution": "normal"}, shared_with_jax=True,
)(variance_scaling)


def _named(scale, mode, distribution, name, in_axis, out_axis, batch_axis, dtype, layout, groups,
           einsum):
    spec = fan_spec(in_axis, out_axis, batch_axis, layout=layout, groups=groups, einsum=einsum)
    return scaled_variance(scale, mode, distribution, spec, dtype, name)


def leaky_relu_scale(negative_slope: Any) -> float:
    """He et al. 2015 (PReLU paper, eq. 15): Var(W) = 2 / ((1 + a^2) fan_in)."""
    check_real(negative_slope, "negative_slope")
    return 2.0 / (1.0 + float(negative_slope) ** 2)


_DOC_ARGS = """
    Args:
      in_axis, out_axis, batch_axis: weight axes (see `jwinit.compute_fans`).
      dtype: default dtype.
      layout: 'flax' (default), 'torch' or 'equinox'.
      groups: conv feature groups (divides fan_out).
      einsum: einsum spec of a DenseGeneral/Einsum kernel, fans read from it.
"""


@register(
    aliases=("xavier_uniform",), distribution="uniform", variance="2 / (fan_in + fan_out)",
    fan_mode="fan_avg", paper="Glorot & Bengio 2010", min_ndim=2, kind="matrix",
    shared_with_jax=True,
)
def glorot_uniform(in_axis: Axes = -2, out_axis: Axes = -1, batch_axis: Axes = (),
                   dtype: DTypeLike = None, *, layout: str | None = None, groups: int = 1,
                   einsum: str | None = None) -> Initializer:
    return _named(1.0, "fan_avg", "uniform", "glorot_uniform", in_axis, out_axis, batch_axis,
                  dtype, layout, groups, einsum)


@register(
    aliases=("xavier_normal",), distribution="truncated normal (+-2 std)",
    variance="2 / (fan_in + fan_out)", fan_mode="fan_avg", paper="Glorot & Bengio 2010",
    min_ndim=2, kind="matrix", shared_with_jax=True,
)
def glorot_normal(in_axis: Axes = -2, out_axis: Axes = -1, batch_axis: Axes = (),
                  dtype: DTypeLike = None, *, layout: str | None = None, groups: int = 1,
                  einsum: str | None = None) -> Initializer:
    return _named(1.0, "fan_avg", "truncated_normal", "glorot_normal", in_axis, out_axis,
                  batch_axis, dtype, layout, groups, einsum)


@register(
    distribution="uniform", variance="1 / fan_in", fan_mode="fan_in",
    paper="LeCun et al. 1998", min_ndim=2, kind="matrix", shared_with_jax=True,
)
def lecun_uniform(in_axis: Axes = -2, out_axis: Axes = -1, batch_axis: Axes = (),
                  dtype: DTypeLike = None, *, layout: str | None = None, groups: int = 1,
                  einsum: str | None = None) -> Initializer:
    return _named(1.0, "fan_in", "uniform", "lecun_uniform", in_axis, out_axis, batch_axis,
                  dtype, layout, groups, einsum)


@register(
    distribution="truncated normal (+-2 std)", variance="1 / fan_in", fan_mode="fan_in",
    paper="LeCun et al. 1998; Klambauer et al. 2017", min_ndim=2, kind="matrix",
    shared_with_jax=True,
)
def lecun_normal(in_axis: Axes = -2, out_axis: Axes = -1, batch_axis: Axes = (),
                 dtype: DTypeLike = None, *, layout: str | None = None, groups: int = 1,
                 einsum: str | None = None) -> Initializer:
    return _named(1.0, "fan_in", "truncated_normal", "lecun_normal", in_axis, out_axis,
                  batch_axis, dtype, layout, groups, einsum)


@register(
    aliases=("kaiming_uniform",), distribution="uniform", variance="2 / ((1 + a^2) fan_in)",
    fan_mode="fan_in", paper="He et al. 2015", min_ndim=2, kind="matrix", shared_with_jax=True,
)
def he_uniform(in_axis: Axes = -2, out_axis: Axes = -1, batch_axis: Axes = (),
               dtype: DTypeLike = None, *, negative_slope: float = 0.0,
               layout: str | None = None, groups: int = 1,
               einsum: str | None = None) -> Initializer:
    return _named(leaky_relu_scale(negative_slope), "fan_in", "uniform", "he_uniform", in_axis,
                  out_axis, batch_axis, dtype, layout, groups, einsum)


@register(
    aliases=("kaiming_normal",), distribution="truncated normal (+-2 std)",
    variance="2 / ((1 + a^2) fan_in)", fan_mode="fan_in", paper="He et al. 2015", min_ndim=2,
    kind="matrix", shared_with_jax=True,
)
def he_normal(in_axis: Axes = -2, out_axis: Axes = -1, batch_axis: Axes = (),
              dtype: DTypeLike = None, *, negative_slope: float = 0.0,
              layout: str | None = None, groups: int = 1,
              einsum: str | None = None) -> Initializer:
    return _named(leaky_relu_scale(negative_slope), "fan_in", "truncated_normal", "he_normal",
                  in_axis, out_axis, batch_axis, dtype, layout, groups, einsum)


glorot_uniform.__doc__ = (
    "Glorot/Xavier uniform (Glorot & Bengio 2010): W ~ U(-r, r), r = sqrt(6 / (fan_in + "
    "fan_out)), Var(W) = 2 / (fan_in + fan_out).\n" + _DOC_ARGS
)
glorot_normal.__doc__ = (
    "Glorot/Xavier normal (Glorot & Bengio 2010): truncated normal (+-2 std, rescaled) with "
    "Var(W) = 2 / (fan_in + fan_out).\n" + _DOC_ARGS
)
lecun_uniform.__doc__ = (
    "LeCun uniform (LeCun et al. 1998): W ~ U(-r, r), r = sqrt(3 / fan_in), "
    "Var(W) = 1 / fan_in.\n" + _DOC_ARGS
)
lecun_normal.__doc__ = (
    "LeCun normal (LeCun et al. 1998; the SELU init of Klambauer et al. 2017): truncated normal "
    "(+-2 std, rescaled) with Var(W) = 1 / fan_in.\n" + _DOC_ARGS
)
he_uniform.__doc__ = (
    "He/Kaiming uniform (He et al. 2015): W ~ U(-r, r), r = sqrt(3 * 2 / ((1 + a^2) fan_in)), "
    "Var(W) = 2 / ((1 + a^2) fan_in); a = `negative_slope` of a leaky ReLU/PReLU (0: ReLU).\n"
    + _DOC_ARGS
)
he_normal.__doc__ = (
    "He/Kaiming normal (He et al. 2015): truncated normal (+-2 std, rescaled) with "
    "Var(W) = 2 / ((1 + a^2) fan_in); a = `negative_slope` (0: ReLU).\n" + _DOC_ARGS
)

xavier_uniform = glorot_uniform
xavier_normal = glorot_normal
kaiming_uniform = he_uniform
kaiming_normal = he_normal

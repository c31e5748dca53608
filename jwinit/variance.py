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
from jwinit._checks import check_choice, check_real
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
    allow_1d: bool = False,
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
      allow_1d: Keras' convention for rank-1 shapes, fan_in = fan_out = n (default: refused).

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
    spec = fan_spec(in_axis, out_axis, batch_axis, layout=layout, groups=groups, einsum=einsum,
                    allow_1d=allow_1d)
    return scaled_variance(scale, mode, distribution, spec, dtype, "variance_scaling")


variance_scaling = register(
    distribution="truncated normal / normal / uniform", variance="scale / n(mode)",
    fan_mode="any", paper="Glorot & Bengio 2010; He et al. 2015", min_ndim=2, kind="matrix",
    example={"scale": 2.0, "mode": "fan_in", "distribution": "normal"}, shared_with_jax=True,
)(variance_scaling)


def _named(scale, mode, distribution, name, in_axis, out_axis, batch_axis, dtype, **fans):
    spec = fan_spec(in_axis, out_axis, batch_axis, **fans)
    return scaled_variance(scale, mode, distribution, spec, dtype, name)


def leaky_relu_scale(negative_slope: Any) -> float:
    """He et al. 2015 (PReLU paper, eq. 15): Var(W) = 2 / ((1 + a^2) fan_in)."""
    check_real(negative_slope, "negative_slope")
    return 2.0 / (1.0 + float(negative_slope) ** 2)


def _he_scale(negative_slope: Any, nonlinearity: str | None, name: str) -> float:
    """2 / (1 + a^2), or PyTorch's ``calculate_gain(nonlinearity, a)^2`` when it is named."""
    if nonlinearity is None:
        return leaky_relu_scale(negative_slope)
    from jwinit.gains import GAIN_NONLINEARITIES, calculate_gain

    check_choice(nonlinearity, "nonlinearity", GAIN_NONLINEARITIES, name=name)
    check_real(negative_slope, "negative_slope")
    param = float(negative_slope) if nonlinearity == "leaky_relu" else None
    return calculate_gain(nonlinearity, param) ** 2


def _he_mode(mode: Any, name: str) -> str:
    return check_choice(mode, "mode", ("fan_in", "fan_out"), name=name)


_DOC_ARGS = """
    Args:
      in_axis, out_axis, batch_axis: weight axes (see `jwinit.compute_fans`).
      dtype: default dtype.
      layout: 'flax' (default), 'torch' or 'equinox'.
      groups: conv feature groups (divides fan_out).
      einsum: einsum spec of a DenseGeneral/Einsum kernel, fans read from it.
      allow_1d: Keras' convention for rank-1 shapes, fan_in = fan_out = n (default: refused).
"""


@register(
    aliases=("xavier_uniform",), distribution="uniform", variance="2 / (fan_in + fan_out)",
    fan_mode="fan_avg", paper="Glorot & Bengio 2010", min_ndim=2, kind="matrix",
    shared_with_jax=True,
)
def glorot_uniform(in_axis: Axes = -2, out_axis: Axes = -1, batch_axis: Axes = (),
                   dtype: DTypeLike = None, *, layout: str | None = None, groups: int = 1,
                   einsum: str | None = None, allow_1d: bool = False) -> Initializer:
    return _named(1.0, "fan_avg", "uniform", "glorot_uniform", in_axis, out_axis, batch_axis,
                  dtype, layout=layout, groups=groups, einsum=einsum,
                  allow_1d=allow_1d)


@register(
    aliases=("xavier_normal",), distribution="truncated normal (+-2 std)",
    variance="2 / (fan_in + fan_out)", fan_mode="fan_avg", paper="Glorot & Bengio 2010",
    min_ndim=2, kind="matrix", shared_with_jax=True,
)
def glorot_normal(in_axis: Axes = -2, out_axis: Axes = -1, batch_axis: Axes = (),
                  dtype: DTypeLike = None, *, layout: str | None = None, groups: int = 1,
                  einsum: str | None = None, allow_1d: bool = False) -> Initializer:
    return _named(1.0, "fan_avg", "truncated_normal", "glorot_normal", in_axis, out_axis,
                  batch_axis, dtype, layout=layout, groups=groups, einsum=einsum,
                  allow_1d=allow_1d)


@register(
    distribution="uniform", variance="1 / fan_in", fan_mode="fan_in",
    paper="LeCun et al. 1998", min_ndim=2, kind="matrix", shared_with_jax=True,
)
def lecun_uniform(in_axis: Axes = -2, out_axis: Axes = -1, batch_axis: Axes = (),
                  dtype: DTypeLike = None, *, layout: str | None = None, groups: int = 1,
                  einsum: str | None = None, allow_1d: bool = False) -> Initializer:
    return _named(1.0, "fan_in", "uniform", "lecun_uniform", in_axis, out_axis, batch_axis,
                  dtype, layout=layout, groups=groups, einsum=einsum,
                  allow_1d=allow_1d)


@register(
    distribution="truncated normal (+-2 std)", variance="1 / fan_in", fan_mode="fan_in",
    paper="LeCun et al. 1998; Klambauer et al. 2017", min_ndim=2, kind="matrix",
    shared_with_jax=True,
)
def lecun_normal(in_axis: Axes = -2, out_axis: Axes = -1, batch_axis: Axes = (),
                 dtype: DTypeLike = None, *, layout: str | None = None, groups: int = 1,
                 einsum: str | None = None, allow_1d: bool = False) -> Initializer:
    return _named(1.0, "fan_in", "truncated_normal", "lecun_normal", in_axis, out_axis,
                  batch_axis, dtype, layout=layout, groups=groups, einsum=einsum,
                  allow_1d=allow_1d)


@register(
    aliases=("kaiming_uniform",), distribution="uniform", variance="2 / ((1 + a^2) fan_in)",
    fan_mode="fan_in", paper="He et al. 2015", min_ndim=2, kind="matrix", shared_with_jax=True,
)
def he_uniform(in_axis: Axes = -2, out_axis: Axes = -1, batch_axis: Axes = (),
               dtype: DTypeLike = None, *, negative_slope: float = 0.0, mode: str = "fan_in",
               nonlinearity: str | None = None, layout: str | None = None, groups: int = 1,
               einsum: str | None = None, allow_1d: bool = False) -> Initializer:
    return _named(_he_scale(negative_slope, nonlinearity, "he_uniform"),
                  _he_mode(mode, "he_uniform"), "uniform", "he_uniform", in_axis, out_axis,
                  batch_axis, dtype, layout=layout, groups=groups, einsum=einsum,
                  allow_1d=allow_1d)


@register(
    aliases=("kaiming_normal",), distribution="truncated normal (+-2 std)",
    variance="2 / ((1 + a^2) fan_in)", fan_mode="fan_in", paper="He et al. 2015", min_ndim=2,
    kind="matrix", shared_with_jax=True,
)
def he_normal(in_axis: Axes = -2, out_axis: Axes = -1, batch_axis: Axes = (),
              dtype: DTypeLike = None, *, negative_slope: float = 0.0, mode: str = "fan_in",
              nonlinearity: str | None = None, layout: str | None = None, groups: int = 1,
              einsum: str | None = None, allow_1d: bool = False) -> Initializer:
    return _named(_he_scale(negative_slope, nonlinearity, "he_normal"),
                  _he_mode(mode, "he_normal"), "truncated_normal", "he_normal", in_axis,
                  out_axis, batch_axis, dtype, layout=layout, groups=groups, einsum=einsum,
                  allow_1d=allow_1d)


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
_HE_ARGS = """
    `mode` and `nonlinearity` are PyTorch's ``kaiming_*_(w, a, mode, nonlinearity)``:
    Var(W) = gain^2 / fan_mode, fan_mode = fan_in (default; preserves activations) or fan_out
    (preserves gradients; torchvision's ResNets use ``mode='fan_out', nonlinearity='relu'``), and
    gain^2 = 2 / (1 + a^2) by default or ``jwinit.calculate_gain(nonlinearity, a)^2`` when
    `nonlinearity` is given ('relu', 'leaky_relu', 'tanh', 'selu', 'linear', ...). (PyTorch's
    ``kaiming_normal_`` is an untruncated normal; ``he_normal`` is jax's truncated normal with the
    same variance. For PyTorch's exact distribution use
    ``jwinit.variance_scaling(2.0, 'fan_out', 'normal')``.)

    Args:
      negative_slope: a of a leaky ReLU/PReLU (0: ReLU).
      mode: 'fan_in' or 'fan_out'.
      nonlinearity: None (use `negative_slope`) or a name of PyTorch's gain table.
"""

he_uniform.__doc__ = (
    "He/Kaiming uniform (He et al. 2015): W ~ U(-r, r), r = sqrt(3 * 2 / ((1 + a^2) fan_in)), "
    "Var(W) = 2 / ((1 + a^2) fan_in); a = `negative_slope` of a leaky ReLU/PReLU (0: ReLU).\n"
    + _HE_ARGS + _DOC_ARGS.replace("    Args:\n", "")
)
he_normal.__doc__ = (
    "He/Kaiming normal (He et al. 2015): truncated normal (+-2 std, rescaled) with "
    "Var(W) = 2 / ((1 + a^2) fan_in); a = `negative_slope` (0: ReLU).\n"
    + _HE_ARGS + _DOC_ARGS.replace("    Args:\n", "")
)

xavier_uniform = glorot_uniform
xavier_normal = glorot_normal
kaiming_uniform = he_uniform
kaiming_normal = he_normal

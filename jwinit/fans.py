"""Fan-in and fan-out of a weight tensor, in every layout users meet.

Convention (Glorot & Bengio 2010; He et al. 2015): for a kernel whose axes split into an input
group, an output group, batch axes (independent copies, ignored) and the rest (the receptive field
of a convolution),

    fan_in  = prod(in axes)  * receptive_field
    fan_out = prod(out axes) * receptive_field / groups

Layouts:

* ``'flax'`` (default): ``(..., in, out)``; conv kernels are HWIO (``(*kernel, in, out)``).
* ``'torch'``: ``(out, in, *kernel)`` (``nn.Linear.weight``, ``nn.ConvNd.weight``).
* ``'equinox'``: ``(out, in, *kernel)`` as in ``eqx.nn.Linear``/``eqx.nn.Conv``.

Grouped convolutions store ``in / groups`` input channels per kernel, so `fan_in` is read off the
shape as is; each input channel reaches ``out / groups`` outputs, so `fan_out` divides by
`groups` (PyTorch's ``_calculate_fan_in_and_fan_out`` does not; a depthwise conv with channel
multiplier m has ``fan_out = m * receptive_field`` here).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence

from jwinit._checks import check_axes, check_bool, check_choice, check_int, normalize_axis
from jwinit._types import Shape, prod

__all__ = ["compute_fans", "fans_from_einsum", "LAYOUTS", "FanSpec", "fan_spec"]

LAYOUTS = ("flax", "torch", "equinox")
_LAYOUT_AXES = {"flax": (-2, -1), "torch": (1, 0), "equinox": (1, 0)}

Axes = int | Sequence[int]


def _normalize(axes: tuple[int, ...], ndim: int, argument: str, shape: Shape) -> tuple[int, ...]:
    return tuple(normalize_axis(a, ndim, argument, shape) for a in axes)


@dataclasses.dataclass(frozen=True)
class FanSpec:
    """Validated fan arguments; `fans(shape)` returns ``(fan_in, fan_out)``."""

    in_axis: tuple[int, ...] = (-2,)
    out_axis: tuple[int, ...] = (-1,)
    batch_axis: tuple[int, ...] = ()
    groups: int = 1
    einsum: str | None = None
    layout: str = "flax"
    allow_1d: bool = False

    def fans(self, shape: Shape) -> tuple[int, int]:
        if self.einsum is not None:
            return fans_from_einsum(self.einsum, shape)
        shape = tuple(shape)
        ndim = len(shape)
        if ndim < 2 and self.allow_1d:  # Keras: fan_in = fan_out = n (1 for a scalar)
            n = shape[0] if ndim == 1 else 1
            return n, n
        if ndim < 2:
            raise ValueError(
                f"cannot compute fan_in and fan_out of a weight of shape {shape}: fan-based "
                "initializers need at least 2 dimensions (use `constant`/`normal`/`uniform` for "
                "biases, pass `in_axis`/`out_axis`, or `allow_1d=True` for Keras' convention "
                "fan_in = fan_out = n)."
            )
        ins = _normalize(self.in_axis, ndim, "in_axis", shape)
        outs = _normalize(self.out_axis, ndim, "out_axis", shape)
        batch = _normalize(self.batch_axis, ndim, "batch_axis", shape)
        named = ins + outs + batch
        if len(set(named)) != len(named):
            raise ValueError(
                f"`in_axis`={self.in_axis}, `out_axis`={self.out_axis} and "
                f"`batch_axis`={self.batch_axis} overlap for a weight of shape {shape}."
            )
        in_size = prod([shape[a] for a in ins])
        out_size = prod([shape[a] for a in outs])
        receptive = prod([shape[a] for a in range(ndim) if a not in named])
        if self.groups > 1 and out_size % self.groups:
            raise ValueError(
                f"`groups`={self.groups} does not divide the {out_size} output channels of a "
                f"weight of shape {shape}."
            )
        return in_size * receptive, out_size * receptive // self.groups


def fan_spec(
    in_axis: Axes = -2,
    out_axis: Axes = -1,
    batch_axis: Axes = (),
    *,
    layout: str | None = None,
    groups: int = 1,
    einsum: str | None = None,
    allow_1d: bool = False,
) -> FanSpec:
    """Validate fan arguments once (in a factory) and return a `FanSpec`."""
    ins = check_axes(in_axis, "in_axis")
    outs = check_axes(out_axis, "out_axis")
    batch = check_axes(batch_axis, "batch_axis")
    if layout is not None:
        check_choice(layout, "layout", (*LAYOUTS, None))
        if (ins, outs) != ((-2,), (-1,)) and (ins, outs) != tuple(
            (a,) for a in _LAYOUT_AXES[layout]
        ):
            raise ValueError(
                f"`layout`={layout!r} fixes the axes; do not also pass `in_axis`={in_axis!r} "
                f"and `out_axis`={out_axis!r}."
            )
        ins, outs = ((_LAYOUT_AXES[layout][0],), (_LAYOUT_AXES[layout][1],))
    if not ins or not outs:
        raise ValueError(
            f"`in_axis` and `out_axis` must name at least one axis, got {in_axis!r}, {out_axis!r}."
        )
    both_signs = {(a >= 0) for a in ins + outs + batch}
    if len(both_signs) == 1 and len(set(ins + outs + batch)) != len(ins + outs + batch):
        raise ValueError(
            f"`in_axis`={in_axis!r}, `out_axis`={out_axis!r} and `batch_axis`={batch_axis!r} "
            "must name different axes."
        )
    groups = check_int(groups, "groups", minimum=1)
    if einsum is not None:
        _parse_einsum(einsum)
        if groups != 1 or layout not in (None, "flax") or batch:
            raise ValueError("`einsum` fixes the fans; do not combine it with `groups`, `layout` "
                             "or `batch_axis`.")
    allow_1d = check_bool(allow_1d, "allow_1d")
    return FanSpec(ins, outs, batch, groups, einsum, layout or "flax", allow_1d)


def compute_fans(
    shape: Sequence[int],
    in_axis: Axes = -2,
    out_axis: Axes = -1,
    batch_axis: Axes = (),
    *,
    layout: str | None = None,
    groups: int = 1,
    allow_1d: bool = False,
) -> tuple[int, int]:
    """Return ``(fan_in, fan_out)`` of a weight of `shape`.

    Args:
      shape: the weight's shape.
      in_axis, out_axis, batch_axis: axes (int or sequence) of the input features, output
        features and independent copies; the remaining axes are the receptive field.
      layout: ``'flax'`` (``(..., in, out)``, HWIO), ``'torch'`` (``(out, in, *kernel)``) or
        ``'equinox'`` (``(out, in, *kernel)``); sets `in_axis`/`out_axis`.
      groups: convolution groups (``feature_group_count``); divides `fan_out`.
      allow_1d: Keras' convention for rank-1 (and scalar) shapes, fan_in = fan_out = n
        (default: refused, a vector has no fan_in and fan_out).

    Examples:
      >>> compute_fans((3, 3, 64, 128))
      (576, 1152)
      >>> compute_fans((128, 64, 3, 3), layout='torch')
      (576, 1152)
    """
    spec = fan_spec(in_axis, out_axis, batch_axis, layout=layout, groups=groups,
                    allow_1d=allow_1d)
    return spec.fans(tuple(int(d) for d in shape))


_TERM = re.compile(r"^(\.\.\.)?[a-zA-Z]*$")


def _parse_einsum(spec: str) -> tuple[str, str, str]:
    if not isinstance(spec, str):
        raise ValueError(f"`einsum` must be a string like 'btd,dnh->btnh', got {spec!r}.")
    s = spec.replace(" ", "")
    m = re.fullmatch(r"([.a-zA-Z]*),([a-zA-Z]+)->([.a-zA-Z]*)", s)
    if m is None or not all(_TERM.match(t) for t in m.groups()):
        raise ValueError(
            f"`einsum`={spec!r} must have the form 'inputs,kernel->output' (two operands, the "
            "kernel second, e.g. 'btd,dnh->btnh')."
        )
    x, k, y = (t.replace("...", "") for t in m.groups())
    if len(set(k)) != len(k):
        raise ValueError(f"`einsum`={spec!r}: repeated index in the kernel term {k!r}.")
    stray = [c for c in k if c not in x and c not in y]
    if stray:
        raise ValueError(
            f"`einsum`={spec!r}: kernel indices {stray} appear in neither the input nor the "
            "output, so they are summed over the kernel alone and have no fan."
        )
    return x, k, y


def fans_from_einsum(spec: str, kernel_shape: Sequence[int]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of the kernel of an ``einsum(spec, inputs, kernel)`` layer.

    Kernel indices contracted with the input (in the input, not in the output) make `fan_in`;
    kernel indices kept in the output (not in the input) make `fan_out`; indices in all three
    (e.g. experts, heads applied per input head) are batch axes and ignored.

    Examples:
      >>> fans_from_einsum('btd,dnh->btnh', (512, 8, 64))
      (512, 512)
      >>> fans_from_einsum('btnh,nhd->btd', (8, 64, 512))
      (512, 512)
    """
    x, k, y = _parse_einsum(spec)
    shape = tuple(int(d) for d in kernel_shape)
    if len(shape) != len(k):
        raise ValueError(
            f"kernel shape {shape} has rank {len(shape)} but the kernel term {k!r} of "
            f"`einsum`={spec!r} has {len(k)} indices."
        )
    size = dict(zip(k, shape, strict=True))
    fan_in = prod([size[c] for c in k if c in x and c not in y])
    fan_out = prod([size[c] for c in k if c in y and c not in x])
    return fan_in, fan_out


FanFn = Callable[[Shape], tuple[int, int]]

"""Schemes as the sweep, the configs and the command line name them, resolved to closures once.

A scheme is a registry name (``'he_normal'``), a name with keyword arguments
(``('normal', {'stddev': 0.1})``, written ``'normal(stddev=0.1)'`` in text), an initializer closure,
or a mean-field pair ``(sigma_w2, sigma_b2)`` (weights ``sqrt(sigma_w2 / fan_in) N(0, 1)``, biases
``sqrt(sigma_b2) N(0, 1)``). :func:`resolve_scheme` turns any of them into a `Scheme` (closures,
label, gains, mean-field variances); :func:`parse_scheme` and :func:`parse_pair` read the text forms
and check names against the registry before any compute.
"""

from __future__ import annotations

import ast
import dataclasses
import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["Scheme", "resolve_scheme", "parse_scheme", "parse_pair", "unit_closures",
           "named_closure", "closure_label", "is_number", "effective_sigmas", "LSUV", "PRETRAIN",
           "GRADINIT", "PREFIXES", "RECIPES", "base_scheme", "split_prefix"]

#: prefix of LSUV (`jwinit.lsuv`) started from a scheme: 'lsuv:orthogonal'
LSUV = "lsuv:"
#: prefix of greedy layer-wise pre-training (`jwinit.greedy_pretrain`): 'pretrain:lecun_uniform'
PRETRAIN = "pretrain:"
#: prefix of GradInit (`jwinit.gradinit`) started from a scheme: 'gradinit:he_normal'
GRADINIT = "gradinit:"
#: the data-dependent prefixes, in the order they are recognized
PREFIXES = (LSUV, PRETRAIN, GRADINIT)
#: whole-model recipes whose rules depend on the depth (`fixup_rules`, `t_fixup_rules`,
#: `deepnet_rules`), and the model kind each needs
RECIPES = {"fixup": "residual", "t_fixup": "transformer", "deepnet": "transformer"}


def split_prefix(scheme: Any) -> tuple[str | None, Any]:
    """(prefix, the scheme after it) of a training scheme: ``'lsuv:orthogonal'`` ->
    ``('lsuv:', 'orthogonal')``; a scheme without a prefix (or not a string) -> ``(None, scheme)``.

    Examples:
      >>> split_prefix('gradinit:he_normal'), split_prefix('he_normal')
      (('gradinit:', 'he_normal'), (None, 'he_normal'))
    """
    if isinstance(scheme, str):
        for prefix in PREFIXES:
            if scheme.startswith(prefix):
                return prefix, scheme[len(prefix):]
    return None, scheme


def base_scheme(scheme: Any) -> Any:
    """What a training scheme samples from: the scheme after an 'lsuv:' / 'pretrain:' /
    'gradinit:' prefix, a mapping of rules itself, or None for a depth-dependent recipe
    (`RECIPES`), whose rules come from the model.

    Examples:
      >>> base_scheme('lsuv:orthogonal'), base_scheme('fixup'), base_scheme('he_normal')
      ('orthogonal', None, 'he_normal')
    """
    if isinstance(scheme, str) and scheme in RECIPES:
        return None
    return split_prefix(scheme)[1]

def effective_sigmas(kernel_init: Callable[..., Any], bias_init: Callable[..., Any] | None,
                     width: int) -> tuple[float | None, float | None]:
    """(sigma_w2, sigma_b2) of a hidden layer by `jwinit.theory.variances_of` (exact
    descriptions only), or (None, None) when the theory cannot describe the scheme."""
    from jwinit.theory import variances_of

    try:
        v = variances_of(kernel_init, bias_init, width=width, estimate=False)
    except (ValueError, TypeError):
        return None, None
    return v.sigma_w2, v.sigma_b2


@dataclasses.dataclass(frozen=True)
class Scheme:
    """A resolved scheme: a label, the closures, and the scale of one row.

    Attributes:
      label: the name rows carry.
      kernel: the kernel closure (for mean-field pairs, the unit-variance fan-in normal).
      bias: the bias closure or None.
      gain_w, gain_b: multipliers of the sampled weights and biases (1 for closures;
        sqrt(sigma_w2) and sqrt(sigma_b2) for mean-field pairs).
      sigma_w2, sigma_b2: effective mean-field variances when known.
      mean_field: whether the scheme is a (sigma_w2, sigma_b2) pair (pairs with one activation
        share a program member and are vmapped over their gains).
    """

    label: str
    kernel: Callable[..., Any]
    bias: Callable[..., Any] | None
    gain_w: float = 1.0
    gain_b: float = 1.0
    sigma_w2: float | None = None
    sigma_b2: float | None = None
    mean_field: bool = False

    @property
    def bias_label(self) -> str | None:
        """The bias initializer's label (None without a bias, or for a mean-field pair, whose
        label already holds sigma_b2)."""
        if self.bias is None or self.mean_field:
            return None
        return closure_label(self.bias)


_UNIT: dict[str, Callable[..., Any]] = {}


def unit_closures() -> tuple[Callable[..., Any], Callable[..., Any]]:
    """One shared (kernel, bias) pair for mean-field schemes, so their programs are cached."""
    if not _UNIT:
        from jwinit.distributions import normal
        from jwinit.variance import variance_scaling

        _UNIT["kernel"] = variance_scaling(1.0, "fan_in", "normal")
        _UNIT["bias"] = normal(1.0)
    return _UNIT["kernel"], _UNIT["bias"]


_NAMED: dict[tuple[str, tuple[tuple[str, Any], ...]], Callable[..., Any]] = {}


def named_closure(name: str, kwargs: Mapping[str, Any], argument: str) -> Callable[..., Any]:
    from jwinit import registry

    key = (name, tuple(sorted(kwargs.items())))
    if key not in _NAMED:
        try:
            _NAMED[key] = registry.make(name, **kwargs)
        except (ValueError, TypeError) as e:
            raise type(e)(f"`{argument}`: {e}") from None
    return _NAMED[key]


def _fmt(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else repr(v) if isinstance(v, str) else str(v)


def closure_label(init: Callable[..., Any]) -> str:
    from jwinit._types import info_of

    info = info_of(init)
    if info is None:
        return getattr(init, "__name__", type(init).__name__)
    shown = {k: v for k, v in info.params.items() if info.name in ("normal", "uniform", "constant",
                                                                      "truncated_normal",
                                                                      "variance_scaling")}
    if not shown:
        return info.name
    return f"{info.name}({', '.join(f'{k}={_fmt(v)}' for k, v in shown.items())})"


def is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def resolve_scheme(spec: Any, bias: Any, width: int, *, label: str | None = None,
                   argument: str = "schemes") -> Scheme:
    """A `Scheme` from a registry name, ``(name, kwargs)``, a closure or a mean-field pair."""
    if isinstance(spec, tuple) and len(spec) == 2 and all(is_number(v) for v in spec):
        sw2, sb2 = float(spec[0]), float(spec[1])
        if not (sw2 > 0 and sb2 >= 0 and math.isfinite(sw2) and math.isfinite(sb2)):
            raise ValueError(
                f"`{argument}`: a mean-field pair (sigma_w2, sigma_b2) needs sigma_w2 > 0 and "
                f"sigma_b2 >= 0, got {spec}."
            )
        kernel, unit_bias = unit_closures()
        return Scheme(
            label=label or f"sw2={sw2:g},sb2={sb2:g}", kernel=kernel,
            bias=unit_bias if sb2 > 0 else None, gain_w=math.sqrt(sw2), gain_b=math.sqrt(sb2),
            sigma_w2=sw2, sigma_b2=sb2, mean_field=True,
        )
    if isinstance(spec, str):
        kernel, name = named_closure(spec, {}, argument), spec
    elif (isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str)
          and isinstance(spec[1], Mapping)):
        kernel = named_closure(spec[0], spec[1], argument)
        name = f"{spec[0]}({', '.join(f'{k}={_fmt(v)}' for k, v in spec[1].items())})"
    elif callable(spec):
        kernel, name = spec, closure_label(spec)
    else:
        raise TypeError(
            f"`{argument}` entries must be a registry name ('he_normal'), a (name, kwargs) pair, "
            f"an initializer closure or a (sigma_w2, sigma_b2) pair, got {type(spec).__name__} "
            f"{spec!r}."
        )
    sw2, sb2 = effective_sigmas(kernel, bias, width)
    return Scheme(label=label or name, kernel=kernel, bias=bias, sigma_w2=sw2, sigma_b2=sb2)




def parse_scheme(text: str) -> Any:
    """``'he_normal'`` -> ``'he_normal'``; ``'normal(stddev=0.1)'`` -> ``('normal', {...})``;
    ``'(2.0, 0.05)'`` -> the mean-field pair ``(2.0, 0.05)``.

    Names are checked against the registry here, before any compute.
    """
    if not isinstance(text, str):
        raise TypeError(f"a scheme must be a string, got {type(text).__name__} {text!r}.")
    s = text.strip()
    if s.startswith("("):
        try:
            pair = ast.literal_eval(s)
        except (ValueError, SyntaxError):
            raise ValueError(
                f"scheme {text!r}: a mean-field pair looks like '(2.0, 0.05)'.") from None
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise ValueError(f"scheme {text!r}: a mean-field pair looks like '(2.0, 0.05)'.")
        return tuple(float(v) for v in pair)
    try:
        node = ast.parse(s, mode="eval").body
    except SyntaxError:
        raise ValueError(f"scheme {text!r} must look like 'he_normal' or "
                         "'normal(stddev=0.1)'.") from None
    from jwinit import registry

    if isinstance(node, ast.Name):
        registry.entry(node.id)
        return node.id
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.args
            and all(k.arg for k in node.keywords)):
        registry.entry(node.func.id)
        try:
            kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
        except ValueError:
            raise ValueError(f"scheme {text!r}: arguments must be literals.") from None
        registry.make(node.func.id, **kwargs)  # validate the arguments now
        return (node.func.id, kwargs)
    raise ValueError(f"scheme {text!r} must look like 'he_normal' or 'normal(stddev=0.1)' "
                     "(keyword arguments only).")


def parse_pair(text: str) -> tuple[Any, str]:
    """``'he_normal+relu'`` -> ``('he_normal', 'relu')`` (the activation after the last '+')."""
    scheme, sep, act = text.rpartition("+")
    if not sep or not scheme or not act:
        raise ValueError(f"a pair must look like 'scheme+activation', got {text!r}.")
    return parse_scheme(scheme), act.strip()

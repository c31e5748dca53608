"""What `train(inits=...)` accepts, resolved once, and how a run's parameters are built from it.

An entry of `inits` maps a display name to one of:

* an initializer (a jwinit or ``jax.nn.initializers`` closure, a registry name such as
  ``'he_normal'`` or ``'normal(stddev=0.1)'``): applied to every parameter named ``kernel``;
  every ``bias`` is zero; every other parameter keeps the model's own initialization;
* a mean-field pair ``(sigma_w2, sigma_b2)`` (or its text ``'(2.0, 0.05)'``): kernels
  N(0, sigma_w2 / fan_in), biases N(0, sigma_b2), as in the theory;
* a mapping of regular expression to initializer, for role recipes: the rules of
  `jwinit.init_params` (searched with ``re.search`` in the '/'-joined parameter path, e.g.
  ``r'kernel$'``, ``r'^Dense_0/'``, ``r'layers/3/kernel$'``): each parameter takes the first rule
  that matches it, unmatched parameters keep the model's own initialization;
* ``variables_fn(fn)``: a callable ``fn(key, x_batch)`` returning initialized variables (linen:
  the variables dict or its 'params'; nnx: an initialized ``nnx.Module`` or its ``nnx.State`` of
  parameters), for data-dependent schemes such as LSUV: it runs eagerly, once per seed. The
  wrapper says which it is: any other callable is an initializer ``init(key, shape, dtype)``,
  whatever its parameters are named.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

import jax

from jwinit._checks import check_callable_init
from jwinit.rules import ZERO  # the engine's marker: the parameter is set to zeros
from jwinit.train._model import leaf_paths

__all__ = ["InitSpec", "VariablesFn", "variables_fn", "resolve_inits", "check_patterns",
           "apply_rules", "ZERO"]

#: The rules an initializer alone stands for: every kernel, every bias.
KERNEL, BIAS = r"(^|/)kernel$", r"(^|/)bias$"


@dataclasses.dataclass(frozen=True)
class InitSpec:
    """One resolved entry of `inits`.

    Attributes:
      name: the display name.
      kind: 'rules' (initializers by path pattern) or 'variables' (a callable returning them).
      rules: (pattern, initializer or ZERO) in order; the first match wins.
      variables: for kind 'variables', ``fn(key, x_batch)``.
      label: how the spec was given (for reports).
    """

    name: str
    kind: str
    rules: tuple[tuple[str, Any], ...] = ()
    variables: Callable[..., Any] | None = None
    label: str = ""

    def rule_for(self, path: str) -> Any:
        """The initializer (or ZERO) for the parameter at `path`, or None to keep the default."""
        for pattern, init in self.rules:
            if re.search(pattern, path):
                return init
        return None


@dataclasses.dataclass(frozen=True)
class VariablesFn:
    """A data-dependent init for `jwinit.train.train`'s `inits`: ``fn(key, x_batch)`` returning
    the model's initialized variables (see `variables_fn`)."""

    fn: Callable[..., Any]

    def __call__(self, key: Any, x: Any) -> Any:
        return self.fn(key, x)


def variables_fn(fn: Callable[..., Any]) -> VariablesFn:
    """Mark ``fn(key, x_batch) -> variables`` as a data-dependent init for `inits` (LSUV,
    pre-training, GradInit, ...): it runs eagerly once per seed, with the seed's init key and the
    first training batch. Without the mark a callable is an initializer (key, shape, dtype).

    Examples:
      >>> model = jwinit.models.MLP(depth=2, width=16, output_dim=10)
      >>> lsuv = jwinit.train.variables_fn(
      ...     lambda key, x: jwinit.lsuv(model, x, model.init(key, x)))
      >>> [s.kind for s in jwinit.train.check_inits({'lsuv': lsuv, 'he': 'he_normal'})]
      ['variables', 'rules']
    """
    if isinstance(fn, VariablesFn):
        return fn
    if not callable(fn):
        raise TypeError(f"`variables_fn` takes a callable fn(key, x_batch) returning variables, "
                        f"got {fn!r}.")
    return VariablesFn(fn)


def _positional(value: Any) -> int | None:
    """How many parameters `value` takes positionally, or None if unknown/unbounded."""
    try:
        params = inspect.signature(value).parameters.values()
    except (TypeError, ValueError):
        return None
    kinds = [p.kind for p in params]
    if inspect.Parameter.VAR_POSITIONAL in kinds:
        return None
    return sum(k in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
               for k in kinds)


def _pair_rules(sw2: float, sb2: float) -> tuple[tuple[str, Any], ...]:
    from jwinit.distributions import normal
    from jwinit.variance import variance_scaling

    return ((KERNEL, variance_scaling(sw2, "fan_in", "normal")),
            (BIAS, normal(math.sqrt(sb2)) if sb2 > 0 else ZERO))


def _from_text(text: str, name: str) -> tuple[tuple[str, Any], ...]:
    from jwinit.schemes import named_closure, parse_scheme

    try:
        spec = parse_scheme(text)
    except (ValueError, TypeError) as e:
        raise type(e)(f"`inits[{name!r}]`: {e}") from None
    if isinstance(spec, tuple) and len(spec) == 2 and not isinstance(spec[1], dict):
        return _pair_rules(*spec)
    fname, kwargs = (spec, {}) if isinstance(spec, str) else spec
    return ((KERNEL, named_closure(fname, kwargs, f"inits[{name!r}]")), (BIAS, ZERO))


def _one_init(value: Any, argument: str) -> Any:
    if isinstance(value, str):
        if value.strip() in (ZERO, "zero"):
            return ZERO
        rules = _from_text(value, argument)
        return rules[0][1]
    return check_callable_init(value, argument)


def resolve_inits(inits: Any) -> list[InitSpec]:
    """Check and resolve `inits` (see the module docstring); errors name the entry."""
    if not isinstance(inits, Mapping) or not inits:
        raise TypeError("`inits` must be a non-empty mapping of display name to initializer, "
                        f"rules or variables function, got {type(inits).__name__} {inits!r}.")
    out = []
    for name, value in inits.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"`inits` keys must be non-empty strings (display names), got "
                            f"{name!r}.")
        arg = f"inits[{name!r}]"
        if isinstance(value, str):
            out.append(InitSpec(name, "rules", _from_text(value, name), label=value))
        elif (isinstance(value, tuple) and len(value) == 2
              and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)):
            sw2, sb2 = (float(v) for v in value)
            if not (sw2 > 0 and sb2 >= 0 and math.isfinite(sw2) and math.isfinite(sb2)):
                raise ValueError(f"`{arg}`: a mean-field pair (sigma_w2, sigma_b2) needs "
                                 f"sigma_w2 > 0 and sigma_b2 >= 0, got {value!r}.")
            out.append(InitSpec(name, "rules", _pair_rules(sw2, sb2),
                                label=f"({sw2:g}, {sb2:g})"))
        elif isinstance(value, Mapping):
            if not value:
                raise ValueError(f"`{arg}` is an empty mapping of patterns.")
            rules = []
            for pattern, init in value.items():
                if not isinstance(pattern, str):
                    raise TypeError(f"`{arg}`: patterns must be regular expression strings such "
                                    f"as r'kernel$', got {pattern!r}.")
                try:
                    re.compile(pattern)
                except re.error as e:
                    raise ValueError(f"`{arg}`: {pattern!r} is not a regular expression ({e}); "
                                     "rules are searched in the '/'-joined parameter path, e.g. "
                                     "r'kernel$' or r'^Dense_0/'.") from None
                rules.append((pattern, _one_init(init, f"{arg}[{pattern!r}]")))
            out.append(InitSpec(name, "rules", tuple(rules), label="rules"))
        elif isinstance(value, VariablesFn):
            out.append(InitSpec(name, "variables", variables=value, label="variables"))
        elif callable(value):
            check_callable_init(value, arg)  # a jwinit or jax factory passed uncalled
            if _positional(value) == 2 and not hasattr(value, "jwinit_info"):
                raise TypeError(f"`{arg}` takes two arguments: an initializer takes (key, shape, "
                                f"dtype); if it is fn(key, x_batch) returning variables, wrap it: "
                                f"jwinit.train.variables_fn(fn).")
            out.append(InitSpec(name, "rules", ((KERNEL, value), (BIAS, ZERO)),
                                label=getattr(value, "__name__", "initializer")))
        else:
            raise TypeError(f"`{arg}` must be an initializer, a registry name, a mean-field pair "
                            f"(sigma_w2, sigma_b2), a mapping of pattern to initializer, or "
                            f"jwinit.train.variables_fn(fn) for fn(key, x_batch) returning "
                            f"variables, got {value!r}.")
    return out


def check_patterns(specs: list[InitSpec], params: Any) -> None:
    """Every pattern must match at least one parameter of the model (a typo is an error)."""
    paths = leaf_paths(params)
    for spec in specs:
        for pattern, _ in spec.rules:
            if not any(re.search(pattern, p) for p in paths):
                raise ValueError(f"`inits[{spec.name!r}]`: the pattern {pattern!r} matches no "
                                 f"parameter of the model; its parameters are {paths}.")


def apply_rules(spec: InitSpec, params: Any, key: jax.Array) -> Any:
    """`params` (the model's own) with every parameter a rule covers re-initialized by the one
    rule engine (`jwinit.rules`): the leaf at path p from ``fold_in(key, crc32(p))``, as
    ``jwinit.init_params(model, key, x, rules)`` (traceable; vmap over `key` for seeds)."""
    from jwinit.rules import apply_rules as engine

    return engine([(p, re.compile(p), i) for p, i in spec.rules], params, key, check=False)

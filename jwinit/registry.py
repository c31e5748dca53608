"""Name -> initializer factory, for configs, the CLI, the README table and the tests.

Each module registers its public factories with :func:`register`; ``jwinit/__init__`` imports every
module, so the registry is complete once ``import jwinit`` returns. Configs name initializers by
string (``'he_normal'``, ``'orthogonal'``); :func:`get` resolves a name once, up front, so an
unknown name fails before any compute.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from jwinit._checks import guard_factory

__all__ = ["Entry", "register", "get", "entry", "names", "entries", "make", "markdown_table"]


@dataclasses.dataclass(frozen=True)
class Entry:
    """One registered scheme.

    Attributes:
      name: canonical name (the factory's ``__name__``).
      factory: the public factory.
      aliases: other public names for the same factory.
      distribution: e.g. 'uniform', 'truncated normal', 'orthogonal (Haar)'.
      variance: Var(W) as a formula string, e.g. '2 / fan_in'.
      fan_mode: 'fan_in', 'fan_avg', ... or '-' when the scheme is not fan-based.
      paper: short citation.
      example: keyword arguments that make a representative instance (for tests and the table).
      kind: 'kernel' (weights of any rank), 'matrix' (needs rank >= 2), 'conv' (1-3-D conv
        kernels only), 'bias' (any rank) or 'role' (a recipe returning several initializers).
      min_ndim: the least rank the scheme accepts.
      shared_with_jax: whether ``jax.nn.initializers`` has a factory of the same name and
        arguments (then values must be equal for real dtypes).
    """

    name: str
    factory: Callable[..., Any]
    aliases: tuple[str, ...] = ()
    distribution: str = ""
    variance: str = ""
    fan_mode: str = "-"
    paper: str = ""
    example: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    kind: str = "kernel"
    min_ndim: int = 0
    shared_with_jax: bool = False


_REGISTRY: dict[str, Entry] = {}
_ALIASES: dict[str, str] = {}


def register(
    *,
    aliases: tuple[str, ...] = (),
    distribution: str = "",
    variance: str = "",
    fan_mode: str = "-",
    paper: str = "",
    example: Mapping[str, Any] | None = None,
    kind: str = "kernel",
    min_ndim: int = 0,
    shared_with_jax: bool = False,
    name: str | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: add a factory to the registry under its ``__name__`` (or `name`)."""

    def deco(factory: Callable[..., Any]) -> Callable[..., Any]:
        key = name or factory.__name__
        if key in _REGISTRY or key in _ALIASES:
            raise ValueError(f"initializer name {key!r} is registered twice.")
        factory = guard_factory(factory, key)
        _REGISTRY[key] = Entry(
            name=key,
            factory=factory,
            aliases=tuple(aliases),
            distribution=distribution,
            variance=variance,
            fan_mode=fan_mode,
            paper=paper,
            example=dict(example or {}),
            kind=kind,
            min_ndim=min_ndim,
            shared_with_jax=shared_with_jax,
        )
        for a in aliases:
            if a in _REGISTRY or a in _ALIASES:
                raise ValueError(f"initializer alias {a!r} is registered twice.")
            _ALIASES[a] = key
        return factory

    return deco


def names(*, include_aliases: bool = False) -> list[str]:
    """Registered names, sorted (aliases too if asked)."""
    out = list(_REGISTRY)
    if include_aliases:
        out += list(_ALIASES)
    return sorted(out)


def entries() -> list[Entry]:
    return [_REGISTRY[n] for n in sorted(_REGISTRY)]


def entry(name: str) -> Entry:
    """The `Entry` for `name` (an alias resolves to its canonical entry)."""
    if not isinstance(name, str):
        raise TypeError(f"initializer name must be a string, got {type(name).__name__}.")
    key = _ALIASES.get(name, name)
    if key not in _REGISTRY:
        raise ValueError(
            f"unknown initializer {name!r}; legal names: {', '.join(names(include_aliases=True))}."
        )
    return _REGISTRY[key]


def get(name: str) -> Callable[..., Any]:
    """The factory registered under `name`."""
    return entry(name).factory


def make(name: str, **kwargs: Any) -> Callable[..., Any]:
    """``get(name)(**kwargs)``: the closure, built (and validated) now.

    Raises:
      ValueError: unknown `name` (listing the legal names).
      TypeError: an argument the factory does not take, or a missing one (listing its
        parameters), or the factory's own argument errors.
    """
    factory = get(name)
    signature = inspect.signature(factory)
    try:
        signature.bind(**kwargs)
    except TypeError as e:
        legal = ", ".join(p for p in signature.parameters)
        raise TypeError(f"bad arguments {kwargs} for initializer {name!r}: {e}; its parameters: "
                        f"{legal}.") from None
    return factory(**kwargs)


def markdown_table() -> str:
    """The README table of every registered initializer (kept in sync by a test)."""
    rows = [
        "| name | aliases | distribution | Var(W) | fan mode | paper |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    for e in entries():
        aliases = ", ".join(f"`{a}`" for a in e.aliases) or "-"
        cells = [f"`{e.name}`", aliases, e.distribution, e.variance, e.fan_mode, e.paper]
        rows.append("| " + " | ".join(cell(c) for c in cells) + " |")
    return "\n".join(rows)

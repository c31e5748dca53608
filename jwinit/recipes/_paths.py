"""Role paths: where each role of a whole-model recipe lives in a model, as regular expressions
on parameter paths (private to `jwinit.recipes`)."""

from __future__ import annotations

from collections.abc import Mapping

from jwinit._checks import check_pattern


def role_paths(paths: Mapping[str, str] | None, default: Mapping[str, str],
               argument: str = "paths") -> dict[str, str]:
    """The default role paths updated by the user's `paths` (each checked as a pattern)."""
    if paths is None:
        return dict(default)
    if not isinstance(paths, Mapping):
        raise TypeError(f"`{argument}` must be a mapping {{role: regular expression}}, got "
                        f"{paths!r}.")
    out = dict(default)
    for role, pattern in paths.items():
        if role == "layer":  # a format string with {i}, used by the per-block recipes
            out[role] = pattern
            continue
        out[role] = check_pattern(pattern, f"{argument}[{role!r}]")
    return out

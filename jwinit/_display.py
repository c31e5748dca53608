"""Notebook display: treescope renderings (Flax's own display) of jwinit's result objects.

An object defines ``__treescope_repr__(self, path, subtree_renderer)`` by returning
``treescope_repr(self, attributes, path, subtree_renderer)`` with the attributes worth showing
first (a verdict, a summary table) and the arrays after; treescope is imported only when it
renders (it is a dependency of Flax).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def treescope_repr(obj: Any, attributes: Mapping[str, Any], path: Any,
                   subtree_renderer: Any) -> Any:
    """Render `obj` as its type with `attributes` (foldable, arrays as treescope shows them)."""
    from treescope import repr_lib

    return repr_lib.render_object_constructor(type(obj), dict(attributes), path,
                                              subtree_renderer, roundtrippable=False)

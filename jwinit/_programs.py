"""A bounded store of compiled programs, kept per hashable key (a model, its keyword arguments,
shapes): the reports of many initializations of one model compile it once. Private to the
package."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any


class ProgramCache:
    """At most `size` programs; the oldest is dropped first. A key that cannot be hashed (a model
    with an unhashable field, say) is built every time and not kept."""

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self._store: dict[Hashable, Callable[..., Any]] = {}

    def get(self, key: Any, build: Callable[[], Callable[..., Any]]) -> Callable[..., Any]:
        try:
            hash(key)
        except TypeError:
            return build()
        if key not in self._store:
            if len(self._store) >= self.size:
                self._store.pop(next(iter(self._store)))
            self._store[key] = build()
        return self._store[key]

    def __len__(self) -> int:
        return len(self._store)

    def clear(self) -> None:
        self._store.clear()

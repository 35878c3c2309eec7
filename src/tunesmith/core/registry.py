"""Explicit plug-in registries: `register` beside the plug-in, lookup with a did-you-mean on a miss."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Generic, TypeVar

from tunesmith.core.errors import TunesmithError

T = TypeVar("T")


class UnknownNameError(TunesmithError, KeyError):
    """A registry was asked for a name it does not hold."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0])


class Registry(Generic[T]):
    """A named collection of plug-ins of one kind (formats, metrics, strategies, ...)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: `@FORMATS.register("alpaca")` above the plug-in."""
        if name != name.lower() or not name:
            raise ValueError(f"{self.kind} names are lowercase and non-empty, got {name!r}")

        def add(item: T) -> T:
            if name in self._items and self._items[name] is not item:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = item
            return item

        return add

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, self.names(), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        return f"unknown {self.kind} {name!r}.{hint} Known: {', '.join(self.names())}"

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def items(self) -> list[tuple[str, T]]:
        return sorted(self._items.items())

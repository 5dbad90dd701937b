"""Name -> class or function tables, filled by a decorator.

Each package imports its members explicitly in its `__init__.py`, so `grep 'register("gan")'`
finds where a name comes from. An unknown name is an error that lists the known ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from genzoo.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named table of classes or functions of one kind (models, datasets, ...)."""

    def __init__(self, kind: str, plural: str | None = None) -> None:
        self.kind = kind
        self.plural = plural or kind + "s"
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = entry
            return entry

        return add

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "none"
            raise ConfigError(f"unknown {self.kind} {name!r}; known {self.plural}: {known}.") from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def items(self) -> Iterator[tuple[str, T]]:
        return iter(sorted(self._entries.items()))

    def __contains__(self, name: object) -> bool:
        return name in self._entries


MODELS: Registry = Registry("family", "families")
DATASETS: Registry = Registry("dataset")
METRICS: Registry = Registry("metric")
FEATURES: Registry = Registry("feature network")
ADVERSARIAL_LOSSES: Registry = Registry("adversarial objective")

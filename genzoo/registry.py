"""Name -> class or function tables, filled by a decorator.

Each package imports its members explicitly in its `__init__.py`, so `grep 'register("gan")'`
finds where a name comes from. A registry knows the package that fills it and imports it the first
time it is read, so nothing heavy (torch) is imported before a command needs it. An unknown name is
an error that lists the known ones.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from genzoo.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named table of classes or functions of one kind (models, datasets, ...)."""

    def __init__(self, kind: str, plural: str | None = None, package: str | None = None) -> None:
        self.kind = kind
        self.plural = plural or kind + "s"
        self.package = package  # imported on first read: its modules register the entries
        self._entries: dict[str, T] = {}
        self._loaded = package is None

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            importlib.import_module(self.package)

    def register(self, name: str) -> Callable[[T], T]:
        def add(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = entry
            return entry

        return add

    def get(self, name: str) -> T:
        self._load()
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "none"
            raise ConfigError(f"unknown {self.kind} {name!r}; known {self.plural}: {known}.") from None

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def items(self) -> Iterator[tuple[str, T]]:
        self._load()
        return iter(sorted(self._entries.items()))

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries


MODELS: Registry = Registry("family", "families", "genzoo.models")
DATASETS: Registry = Registry("dataset", package="genzoo.data")
METRICS: Registry = Registry("metric", package="genzoo.metrics")
FEATURES: Registry = Registry("feature network", package="genzoo.metrics")
ADVERSARIAL_LOSSES: Registry = Registry("adversarial objective", package="genzoo.losses")
PROCEDURES: Registry = Registry("procedure", package="genzoo.procedures")

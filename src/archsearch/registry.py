"""A small name -> object registry: the single list of names the CLI and config files use."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from archsearch.errors import RegistryError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to objects. Registering a name twice raises; looking up an unknown name lists the known ones."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""

        def decorate(obj: T) -> T:
            self.add(name, obj)
            return obj

        return decorate

    def add(self, name: str, obj: T) -> None:
        """Register ``obj`` under ``name``; a duplicate name raises :class:`RegistryError`, except that a class or
        function defined again under the same module and name (a notebook cell run twice, a module reloaded)
        replaces its earlier definition."""
        if name in self._items:
            old = self._items[name]
            same = getattr(old, "__module__", None), getattr(old, "__qualname__", None)
            if old is not obj and (same[1] is None or same != (getattr(obj, "__module__", None),
                                                                 getattr(obj, "__qualname__", None))):  # fmt: skip
                raise RegistryError(f"{self.kind} {name!r} is already registered")
        self._items[name] = obj

    def snapshot(self) -> dict[str, T]:
        """The registrations now (for :meth:`restore`: tests that register their own pieces put things back)."""
        return dict(self._items)

    def restore(self, snapshot: dict[str, T]) -> None:
        """Undo every registration made since ``snapshot``."""
        self._items = dict(snapshot)

    def get(self, name: str) -> T:
        """The object registered as ``name``; an unknown name raises with the list of allowed names."""
        try:
            return self._items[name]
        except KeyError:
            allowed = ", ".join(self._items) or "(none)"
            raise RegistryError(f"unknown {self.kind} {name!r} (allowed: {allowed})") from None

    def names(self) -> list[str]:
        """Registered names, in registration order."""
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

"""Name → callable registries; an unknown name is an error that lists the registered choices."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from fma_core.exceptions import ConfigurationError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of things (handlers, aggregators, connectors) looked up by name."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str | None = None) -> Callable[[T], T]:
        """Decorator registering its target under ``name`` (default: the target's ``__name__``)."""

        def decorator(entry: T) -> T:
            key = name or entry.__name__  # type: ignore[attr-defined]
            if key in self._entries and self._entries[key] is not entry:
                raise ConfigurationError(f"{self.kind} {key!r} is registered twice")
            self._entries[key] = entry
            return entry

        return decorator

    def get(self, name: str, *, setting: str | None = None) -> T:
        """The entry registered as ``name``; ``setting`` names where the name came from in the error."""
        try:
            return self._entries[name]
        except KeyError:
            where = f" (setting {setting})" if setting else ""
            raise ConfigurationError(
                f"Unknown {self.kind} {name!r}{where}; registered: {', '.join(self.names()) or 'none'}"
            ) from None

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

"""One registry type for every pluggable algorithm (watermark schemes, account scorers, ...).

A plugin registers itself once, by name, and everything else finds it by that name::

    schemes: Registry[type[WatermarkScheme]] = Registry("watermark scheme")

    @schemes.register("kgw")
    class KGW(WatermarkScheme): ...

    schemes.get("kgw")        # -> KGW
    schemes.names()           # -> ("gumbel", "kgw")

Plugins from other distributions are discovered through the ``distillguard.<group>`` entry-point
group, loaded lazily on the first lookup so importing distillguard stays cheap.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from distillguard.errors import ConfigError, UnknownPluginError

__all__ = ["Registry"]

T = TypeVar("T")
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")


class Registry(Generic[T]):
    """A name → plugin map with decorator registration and entry-point discovery."""

    def __init__(self, kind: str, entry_point_group: str | None = None) -> None:
        self.kind = kind
        self._entry_point_group = entry_point_group
        self._items: dict[str, T] = {}
        self._discovered = entry_point_group is None

    def register(self, name: str) -> Callable[[T], T]:
        """Return a decorator that registers its target under ``name``.

        Raises:
            ConfigError: the name is malformed or already taken by a different plugin.
        """
        if not _NAME.match(name):
            raise ConfigError(
                f"A {self.kind} name must match {_NAME.pattern} (lower-case, digits, '-', '_'). "
                f"Got {name!r} instead."
            )

        def decorator(item: T) -> T:
            existing = self._items.get(name)
            if existing is not None and existing is not item:
                raise ConfigError(f"A {self.kind} named {name!r} is already registered.")
            self._items[name] = item
            return item

        return decorator

    def get(self, name: str) -> T:
        """Return the plugin registered under ``name``.

        Raises:
            UnknownPluginError: nothing is registered under that name; the message lists
                what is.
        """
        self._discover()
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            raise UnknownPluginError(
                f"Unknown {self.kind} {name!r}. Expected one of: {known}."
            ) from None

    def names(self) -> tuple[str, ...]:
        """Return the registered names, sorted."""
        self._discover()
        return tuple(sorted(self._items))

    def items(self) -> Iterator[tuple[str, T]]:
        """Iterate over ``(name, plugin)`` pairs in name order."""
        self._discover()
        for name in sorted(self._items):
            yield name, self._items[name]

    def __contains__(self, name: object) -> bool:
        self._discover()
        return name in self._items

    def __len__(self) -> int:
        self._discover()
        return len(self._items)

    def _discover(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        group = self._entry_point_group or ""
        for ep in entry_points(group=group):
            if ep.name not in self._items:
                self.register(ep.name)(ep.load())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, names={list(self._items)})"

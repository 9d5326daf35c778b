"""Lazy re-exports for package ``__init__`` modules (PEP 562).

A package lists ``public name -> defining module`` and gets a module ``__getattr__`` that imports
the module on first use, so ``import distillguard.x`` loads nothing heavy and runs nothing.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """Return a module ``__getattr__`` resolving ``exports`` (name -> absolute module name)."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    return __getattr__

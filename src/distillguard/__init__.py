"""distillguard: find, stop and prove unauthorized distillation of a language model.

The public surface is re-exported here and listed in ``__all__`` (checked by
``tests/test_exported_members.py``). Names are resolved lazily so that ``import distillguard``
loads nothing heavy and runs nothing.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "DistillGuardError": "distillguard.errors",
    "ConfigError": "distillguard.errors",
    "KeyFileError": "distillguard.errors",
    "InputError": "distillguard.errors",
    "EncodingError": "distillguard.errors",
    "UnknownPluginError": "distillguard.errors",
    "NotFittedError": "distillguard.errors",
    "DependencyError": "distillguard.errors",
    "Registry": "distillguard.registry",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'distillguard' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)

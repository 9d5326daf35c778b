"""distillguard: find, stop and prove unauthorized distillation of a language model.

The public surface is re-exported here and listed in ``__all__`` (checked by
``tests/test_exported_members.py``). Names are resolved lazily so that ``import distillguard``
loads nothing heavy and runs nothing.
"""

from __future__ import annotations

from distillguard._lazy import lazy_exports

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


__getattr__ = lazy_exports(__name__, _EXPORTS)


def __dir__() -> list[str]:
    return sorted(__all__)

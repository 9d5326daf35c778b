"""The distillguard exception tree.

Every error the library raises on purpose derives from :class:`DistillGuardError`, so a caller
can catch one type at the edge (the CLI, the gateway) and turn it into a clear message::

    DistillGuardError
    ├── ConfigError            a parameter or config value is out of its documented range
    ├── KeyFileError           a secret key file is missing, unreadable, malformed or too open
    ├── UnknownPluginError     a registry has no plugin under the requested name
    ├── InputError             user-supplied input (text, file, log line) cannot be used
    │   └── EncodingError      input bytes are not valid UTF-8
    ├── NotFittedError         a fitted object (scorer, calibrator) was used before fit()
    └── DependencyError        an optional extra (torch, duckdb, pyspark, ...) is not installed

Messages say what was wrong and what was expected, in the scikit-learn style:
"The 'gamma' parameter of KGWConfig must be a float in (0, 1). Got 1.5 instead."
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DependencyError",
    "DistillGuardError",
    "EncodingError",
    "InputError",
    "KeyFileError",
    "NotFittedError",
    "UnknownPluginError",
]


class DistillGuardError(Exception):
    """Root of every error distillguard raises on purpose."""


class ConfigError(DistillGuardError, ValueError):
    """A configuration value is outside its documented range or of the wrong type."""


class KeyFileError(DistillGuardError):
    """A secret key file is missing, unreadable, malformed or has unsafe permissions.

    The message names the path and the problem, never the key material.
    """


class UnknownPluginError(DistillGuardError, KeyError):
    """A registry was asked for a name it does not hold."""

    def __str__(self) -> str:  # KeyError's str() would wrap the message in quotes
        return str(self.args[0]) if self.args else ""


class InputError(DistillGuardError, ValueError):
    """User-supplied input cannot be used as given."""


class EncodingError(InputError):
    """Input bytes are not valid UTF-8."""


class NotFittedError(DistillGuardError, RuntimeError):
    """A fitted object was used before ``fit`` was called."""


class DependencyError(DistillGuardError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


def missing_extra(module: str, extra: str) -> DependencyError:
    """Build the error raised when an edge module's optional dependency is not installed.

    >>> str(missing_extra("torch", "model")).split(". ")[0]
    "This feature needs 'torch', which is not installed"
    """
    return DependencyError(
        f"This feature needs {module!r}, which is not installed. "
        f"Install it with: pip install 'distillguard[{extra}]'"
    )

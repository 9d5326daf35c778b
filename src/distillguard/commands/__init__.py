"""CLI sub-command modules: each exposes ``register(subparsers)`` (see :mod:`distillguard.cli`)."""

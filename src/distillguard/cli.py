"""The ``distillguard`` command line: thin by design.

Each area registers its sub-commands from its own module in :mod:`distillguard.commands`
(``register(subparsers)`` adds parsers whose ``func`` does the work by calling the library).
This module only builds the parser, dispatches, and turns library errors into exit status 2
with a one-line message — never a traceback for a user's mistake.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from distillguard import __version__
from distillguard.errors import DistillGuardError

__all__ = ["build_parser", "main"]

# Modules under distillguard.commands, each exposing register(subparsers). Imported lazily by
# build_parser so `distillguard --help` does not pull in torch or duckdb.
COMMAND_MODULES: tuple[str, ...] = (
    "keys",
    "watermark",
    "model",
    "analytics",
    "intel",
    "provenance",
    "gateway",
    "demo",
)


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every available command module registered."""
    parser = argparse.ArgumentParser(
        prog="distillguard",
        description="Find, stop and prove unauthorized distillation of a language model.",
    )
    parser.add_argument("--version", action="version", version=f"distillguard {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"distillguard.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"distillguard.commands.{name}":
                continue  # that area is not built yet
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the process exit status (0 ok, 1 negative verdict, 2 usage/input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except DistillGuardError as exc:
        print(f"distillguard {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""``distillguard keygen``: create a watermark key file (mode 0600); prints only the key id."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def _keygen(args: argparse.Namespace) -> int:
    from distillguard.watermark.keys import write_key_file

    key = write_key_file(args.out, scheme=args.scheme, force=args.force)
    print(f"wrote {args.out} (mode 0600), key_id {key.key_id}")
    return 0


def register(subparsers: Any) -> None:
    """Add the ``keygen`` sub-command."""
    p = subparsers.add_parser(
        "keygen",
        help="create a secret watermark key file",
        description="Create a 32-byte secret watermark key in a JSON file readable only by you "
        "(mode 0600). Prints the public key id, never the key.",
    )
    p.add_argument("--out", required=True, help="path of the key file to create")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.add_argument("--scheme", default=None, help="optional scheme hint stored in the file (kgw, gumbel)")
    p.set_defaults(func=_keygen)

"""Edge: the coalition key file — every epoch a member holds, readable only by its owner.

Format (JSON, mode 0600)::

    {"format": "distillguard-coalition-key", "coalition": "fmf-2026",
     "keys": [{"epoch": 1, "secret": "<64 hex>"}, {"epoch": 2, "secret": "<64 hex>"}]}

The coalition's key custodian creates epoch 1 with ``distillguard intel keygen`` and each
rotation with ``--rotate`` (which adds the next epoch), then hands the file to members over a
channel they already trust. Members drop an epoch once no live indicator uses it.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from distillguard.errors import ConfigError, KeyFileError
from distillguard.intel.pseudonym import CoalitionKey, KeyRing
from distillguard.watermark.keys import read_private_file, write_private_file

__all__ = ["FORMAT", "load_keyring", "new_keyring", "rotate", "write_keyring"]

FORMAT = "distillguard-coalition-key"


def new_keyring(coalition: str, epoch: int = 1) -> KeyRing:
    """Return a ring with one fresh random 32-byte key (raises :class:`ConfigError` for bad names)."""
    return KeyRing([CoalitionKey(coalition, epoch, secrets.token_bytes(32))])


def rotate(ring: KeyRing, keep: int = 2) -> KeyRing:
    """Return a ring with a new epoch added and only the newest ``keep`` epochs held."""
    if keep < 1:
        raise ConfigError(f"The 'keep' parameter must be >= 1. Got {keep!r} instead.")
    fresh = CoalitionKey(ring.coalition, ring.current.epoch + 1, secrets.token_bytes(32))
    old = [k for e in ring.epochs if (k := ring.get(e)) is not None]
    return KeyRing([*old, fresh][-keep:])


def write_keyring(path: Path, ring: KeyRing, force: bool = False) -> None:
    """Write the ring to ``path`` with mode 0600; refuses to overwrite unless ``force``."""
    keys = [k for e in ring.epochs if (k := ring.get(e)) is not None]
    doc = {
        "format": FORMAT,
        "coalition": ring.coalition,
        "keys": [{"epoch": k.epoch, "secret": k.secret.hex()} for k in keys],
    }
    write_private_file(path, (json.dumps(doc, indent=1) + "\n").encode(), force=force)


def load_keyring(path: Path) -> KeyRing:
    """Read a coalition key file.

    Raises :class:`KeyFileError` when it is missing, readable by others, or malformed (the
    message never contains key material).
    """
    raw = read_private_file(path)
    try:
        doc = json.loads(raw.decode("utf-8"))
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValueError("not a coalition key file")
        return KeyRing(
            [CoalitionKey(doc["coalition"], int(k["epoch"]), bytes.fromhex(k["secret"])) for k in doc["keys"]]
        )
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, ConfigError) as exc:
        reason = "not a coalition key file" if "secret" in str(exc) else str(exc).split(":")[0][:80]
        raise KeyFileError(f"Key file {str(path)!r} is malformed: {reason}.") from None

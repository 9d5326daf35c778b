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
import os
import secrets
import stat
from pathlib import Path

from distillguard.errors import ConfigError, KeyFileError
from distillguard.intel.pseudonym import CoalitionKey, KeyRing

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
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise KeyFileError(
            f"Key file {str(path)!r} exists; pass --force (or --rotate) to replace it."
        ) from None
    except OSError as exc:
        raise KeyFileError(f"Cannot create key file {str(path)!r}: {exc.strerror}.") from None
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (json.dumps(doc, indent=1) + "\n").encode())
    finally:
        os.close(fd)


def load_keyring(path: Path) -> KeyRing:
    """Read a coalition key file.

    Raises :class:`KeyFileError` when it is missing, readable by others, or malformed (the
    message never contains key material).
    """
    try:
        st = path.stat()
    except FileNotFoundError:
        raise KeyFileError(f"Key file {str(path)!r} does not exist.") from None
    except OSError as exc:
        raise KeyFileError(f"Cannot access key file {str(path)!r}: {exc.strerror}.") from None
    if not stat.S_ISREG(st.st_mode):
        raise KeyFileError(f"Key file {str(path)!r} is not a regular file.")
    if st.st_mode & 0o077:
        raise KeyFileError(
            f"Key file {str(path)!r} is readable by others (mode {oct(st.st_mode & 0o777)}); chmod 600 it."
        )
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValueError("not a coalition key file")
        return KeyRing(
            [CoalitionKey(doc["coalition"], int(k["epoch"]), bytes.fromhex(k["secret"])) for k in doc["keys"]]
        )
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, ConfigError) as exc:
        reason = "not a coalition key file" if "secret" in str(exc) else str(exc).split(":")[0][:80]
        raise KeyFileError(f"Key file {str(path)!r} is malformed: {reason}.") from None

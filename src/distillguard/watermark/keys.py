"""Secret watermark keys: generation, key files, rotation, and derived sub-keys.

A key is 32 random bytes. Its public name is the ``key_id``: the first 8 bytes of
SHA-256(key), in hex — safe to print, log and put in reports; it identifies the key without
revealing it. Every PRF the schemes use runs under a *sub-key* derived with
HMAC-SHA256(key, domain) for a fixed domain-separation string per purpose, so the green list,
the context hash, the payload colors and the account-id hash are independent even though they
all come from one secret.

Key file (JSON, mode 0600)::

    {"format": "distillguard-key", "version": 1, "key_id": "3f2a...", "created": "2026-...Z",
     "key": "<64 hex chars>", "scheme": "kgw"}

:func:`load_key_file` refuses files that are group- or world-accessible (like ssh does for
private keys): a leaked watermark key lets anyone forge or strip the watermark.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import json
import os
import secrets
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from distillguard.errors import ConfigError, KeyFileError
from distillguard.watermark.prf import SipKey

__all__ = [
    "KEY_BYTES",
    "KeyRing",
    "SecretKey",
    "as_keyring",
    "generate_key",
    "load_key_file",
    "load_or_create_key_file",
    "read_private_file",
    "write_key_file",
    "write_private_file",
]

KEY_BYTES = 32
_FORMAT = "distillguard-key"
_VERSION = 1
_DOMAIN_PREFIX = b"distillguard/v1/"


def generate_key() -> bytes:
    """Return 32 fresh random bytes from the OS CSPRNG."""
    return secrets.token_bytes(KEY_BYTES)


class SecretKey:
    """A watermark secret. ``repr``/``str`` show only the public ``key_id``, never the bytes.

    >>> k = SecretKey(bytes(32))
    >>> repr(k)
    "SecretKey(key_id='66687aadf862bd77')"
    """

    __slots__ = ("_key", "_subkeys", "key_id")

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, (bytes, bytearray)) or len(key) != KEY_BYTES:
            got = f"{len(key)} bytes" if isinstance(key, (bytes, bytearray)) else type(key).__name__
            raise ConfigError(f"A watermark key must be exactly {KEY_BYTES} bytes. Got {got} instead.")
        self._key = bytes(key)
        self.key_id: str = hashlib.sha256(self._key).digest()[:8].hex()
        self._subkeys: dict[str, bytes] = {}

    @classmethod
    def generate(cls) -> SecretKey:
        """A new random key."""
        return cls(generate_key())

    def derive(self, purpose: str) -> bytes:
        """Return the 32-byte sub-key HMAC-SHA256(key, "distillguard/v1/" + purpose)."""
        sub = self._subkeys.get(purpose)
        if sub is None:
            sub = hmac.new(self._key, _DOMAIN_PREFIX + purpose.encode("utf-8"), hashlib.sha256).digest()
            self._subkeys[purpose] = sub
        return sub

    def sip(self, purpose: str) -> SipKey:
        """The SipHash key for ``purpose`` (the first 16 bytes of :meth:`derive`)."""
        return SipKey.from_bytes(self.derive(purpose)[:16])

    def hex(self) -> str:
        """The key material in hex: only for writing key files. Never log it."""
        return self._key.hex()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretKey) and hmac.compare_digest(self._key, other._key)

    def __hash__(self) -> int:
        return hash(self.key_id)

    def __repr__(self) -> str:
        return f"SecretKey(key_id={self.key_id!r})"

    __str__ = __repr__

    # Pickling is allowed on purpose (multi-process generation servers ship the logits
    # processor to workers); the pickle holds the key, so treat it like the key file.


class KeyRing:
    """The set of currently active keys (rotation: old keys stay for detection).

    Order matters only for generation: the first key is the *primary* one new text is
    watermarked with. Detection tests all keys and corrects for trying several
    (see :meth:`distillguard.watermark.detector.Detector.detect_ids`).
    """

    def __init__(self, keys: Iterable[SecretKey]) -> None:
        self._keys = tuple(keys)
        if not self._keys:
            raise ConfigError("A KeyRing needs at least one key. Got none.")
        ids = [k.key_id for k in self._keys]
        if len(set(ids)) != len(ids):
            raise ConfigError(f"A KeyRing must not hold the same key twice. Got key ids {ids}.")

    @property
    def primary(self) -> SecretKey:
        """The key new text is generated with."""
        return self._keys[0]

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Public ids of every active key, primary first."""
        return tuple(k.key_id for k in self._keys)

    def get(self, key_id: str) -> SecretKey:
        """The key with this id. Raises ConfigError naming the known ids."""
        for k in self._keys:
            if k.key_id == key_id:
                return k
        raise ConfigError(f"No key with id {key_id!r} in this KeyRing. Known ids: {list(self.key_ids)}.")

    def __iter__(self) -> Iterator[SecretKey]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"KeyRing(key_ids={list(self.key_ids)})"


def as_keyring(key: SecretKey | KeyRing | bytes) -> KeyRing:
    """Normalise a key, raw 32 bytes or a KeyRing to a KeyRing."""
    if isinstance(key, KeyRing):
        return key
    if isinstance(key, SecretKey):
        return KeyRing([key])
    if isinstance(key, (bytes, bytearray)):
        return KeyRing([SecretKey(bytes(key))])
    raise ConfigError(f"Expected a SecretKey, a KeyRing or 32 key bytes. Got {type(key).__name__} instead.")


def write_key_file(
    path: str | os.PathLike[str],
    key: SecretKey | None = None,
    *,
    scheme: str | None = None,
    force: bool = False,
    now: _dt.datetime | None = None,
) -> SecretKey:
    """Write ``key`` (a fresh one if None) to ``path`` with mode 0600 and return it.

    The file is created with 0600 from the start (no window where it is readable by others).

    Raises:
        KeyFileError: the file exists and ``force`` is False, or it cannot be written.
    """
    p = Path(path)
    key = key if key is not None else SecretKey.generate()
    created = (now or _dt.datetime.now(_dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    doc: dict[str, object] = {
        "format": _FORMAT,
        "version": _VERSION,
        "key_id": key.key_id,
        "created": created,
        "key": key.hex(),
    }
    if scheme is not None:
        doc["scheme"] = scheme
    write_private_file(p, (json.dumps(doc, indent=2) + "\n").encode("utf-8"), force=force)
    return key


def load_key_file(path: str | os.PathLike[str]) -> SecretKey:
    """Read a key file written by :func:`write_key_file`.

    Raises:
        KeyFileError: the file is missing, unreadable, not a distillguard key file, holds a
            malformed key or a key_id that does not match it, or is group/world-accessible.
            The message names the path and the problem, never key material.
    """
    p = Path(path)
    raw = read_private_file(p)
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise KeyFileError(f"Key file {str(p)!r} is not valid UTF-8 JSON.") from None
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
        raise KeyFileError(f"Key file {str(p)!r} is not a distillguard key file (missing format tag).")
    if doc.get("version") != _VERSION:
        raise KeyFileError(f"Key file {str(p)!r} has version {doc.get('version')!r}; expected {_VERSION}.")
    hexkey = doc.get("key")
    try:
        material = bytes.fromhex(hexkey) if isinstance(hexkey, str) else b""
    except ValueError:
        material = b""
    if len(material) != KEY_BYTES:
        raise KeyFileError(
            f"Key file {str(p)!r} has a malformed 'key' field; expected {2 * KEY_BYTES} hex characters."
        )
    key = SecretKey(material)
    if doc.get("key_id") != key.key_id:
        raise KeyFileError(f"Key file {str(p)!r} is corrupt: its 'key_id' does not match the key it holds.")
    return key


def load_or_create_key_file(path: str | os.PathLike[str], *, scheme: str | None = None) -> SecretKey:
    """Load the key at ``path``, or create it (0600, parent directory 0700) when it is missing.

    For services that must start on a fresh machine with a persistent key (the gateway); a
    key that exists but is unreadable or malformed still raises :class:`KeyFileError`, so a
    typo never silently replaces a key.
    """
    p = Path(path)
    if p.exists():
        return load_key_file(p)
    p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        return write_key_file(p, scheme=scheme)
    except KeyFileError:
        if p.exists():  # another process created it first: use theirs
            return load_key_file(p)
        raise


def write_private_file(path: Path, data: bytes, *, force: bool = False) -> None:
    """Write ``data`` to a new file created with mode 0600 (no window where others can read it).

    Raises:
        KeyFileError: the file exists and ``force`` is False, or it cannot be written.
    """
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise KeyFileError(
            f"Key file {str(path)!r} already exists; refusing to overwrite it (use --force / force=True)."
        ) from None
    except OSError as exc:
        raise KeyFileError(f"Cannot create key file {str(path)!r}: {exc.strerror}.") from None
    try:
        os.fchmod(fd, 0o600)  # O_TRUNC on an existing file keeps its old mode
        os.write(fd, data)
    finally:
        os.close(fd)


def read_private_file(path: Path) -> bytes:
    """Read a secret file that must be a regular file readable by its owner only.

    Raises:
        KeyFileError: missing, not a regular file, group/world-accessible, or unreadable; the
            message names the path and the problem, never the content.
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
            f"Key file {str(path)!r} is accessible by group or others (mode {stat.S_IMODE(st.st_mode):04o}; "
            f"a key readable by others is no secret); expected 0600. Fix it with: chmod 600 {path}"
        )
    try:
        return path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"Cannot read key file {str(path)!r}: {exc.strerror}.") from None

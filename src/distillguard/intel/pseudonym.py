"""Keyed pseudonyms: what a coalition member may say about an identifier without revealing it.

Every identifier leaves as ``HMAC-SHA256(epoch key, domain-separated value)``. A plain hash
would not do: account ids, e-mail domains and IPv4 addresses come from small spaces, so anyone
could hash every candidate and invert the list. Under the coalition key only members can test a
guess, and rotating to a new epoch key makes old pseudonyms unlinkable to new ones.

Addresses are never hashed bare: an IPv4 address is first cut to its /24 and an IPv6 address to
its /64, the granularity at which proxy networks are rented and the smallest one that is not a
single subscriber. Pure stdlib.

>>> ring = KeyRing([CoalitionKey("fmf", 1, bytes(32))])
>>> ip_prefix("203.0.113.77")
'203.0.113.0/24'
>>> len(ring.current.pseudonym("account", "acct-812"))
64
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

from distillguard.errors import ConfigError, InputError

__all__ = ["KINDS", "CoalitionKey", "KeyRing", "email_domain", "ip_prefix", "normalise_identifier"]

# What may be pseudonymised and shared. "template" pseudonyms are digests of keyed MinHash
# signatures (see intel.templates); the others are HMACs of a normalised identifier.
KINDS: tuple[str, ...] = ("account", "ip-prefix", "email-domain", "payment", "template")
MIN_KEY_BYTES = 32
_COALITION = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


@dataclass(frozen=True, repr=False)
class CoalitionKey:
    """The secret shared by a coalition for one key epoch.

    ``coalition`` names the sharing group, ``epoch`` numbers the key (a rotation increments it),
    ``secret`` is at least 32 random bytes. ``repr`` never shows the secret.
    """

    coalition: str
    epoch: int
    secret: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.coalition, str) or not _COALITION.match(self.coalition):
            raise ConfigError(
                "The 'coalition' parameter of CoalitionKey must be 1-64 characters of a-z, 0-9, '.', "
                f"'_' or '-'. Got {self.coalition!r} instead."
            )
        if not isinstance(self.epoch, int) or isinstance(self.epoch, bool) or self.epoch < 1:
            raise ConfigError(
                f"The 'epoch' parameter of CoalitionKey must be an int >= 1. Got {self.epoch!r} instead."
            )
        if not isinstance(self.secret, bytes) or len(self.secret) < MIN_KEY_BYTES:
            raise ConfigError(
                f"The 'secret' parameter of CoalitionKey must be at least {MIN_KEY_BYTES} bytes."
            )

    def __repr__(self) -> str:
        return f"CoalitionKey(coalition={self.coalition!r}, epoch={self.epoch}, secret=<hidden>)"

    def subkey(self, purpose: str) -> bytes:
        """Return a 32-byte key derived for one purpose (e.g. ``"minhash"``), so uses never mix."""
        return hmac.new(self.secret, f"dg-intel/v1/{purpose}".encode(), hashlib.sha256).digest()

    def pseudonym(self, kind: str, value: str) -> str:
        """Return the hex HMAC-SHA256 of an already normalised identifier of ``kind``.

        The kind, coalition and epoch are bound into the message, so an account id and an
        e-mail domain that happen to be equal strings get unrelated pseudonyms.
        Raises :class:`ConfigError` for an unknown kind.
        """
        if kind not in KINDS:
            raise ConfigError(f"The 'kind' of a pseudonym must be one of {KINDS}. Got {kind!r} instead.")
        msg = f"{self.coalition}\x00{self.epoch}\x00{kind}\x00{value}".encode()
        return hmac.new(self.subkey("id"), msg, hashlib.sha256).hexdigest()


class KeyRing:
    """The epochs a member still holds: the newest signs exports, all of them match imports.

    Keeping the previous epoch for one indicator lifetime after a rotation lets partner
    indicators minted before the rotation keep matching until they expire.
    """

    def __init__(self, keys: Iterable[CoalitionKey]) -> None:
        ks = sorted(keys, key=lambda k: k.epoch)
        if not ks:
            raise ConfigError("A KeyRing needs at least one CoalitionKey.")
        if len({k.coalition for k in ks}) != 1:
            raise ConfigError("All keys of a KeyRing must belong to one coalition.")
        if len({k.epoch for k in ks}) != len(ks):
            raise ConfigError("A KeyRing holds each epoch once.")
        self._keys = {k.epoch: k for k in ks}
        self.coalition = ks[0].coalition

    @property
    def current(self) -> CoalitionKey:
        """The newest key (used to export)."""
        return self._keys[max(self._keys)]

    @property
    def epochs(self) -> tuple[int, ...]:
        """The epochs held, oldest first."""
        return tuple(sorted(self._keys))

    def get(self, epoch: int) -> CoalitionKey | None:
        """Return the key of ``epoch``, or ``None`` when it is not held (rotated out, or foreign)."""
        return self._keys.get(epoch)

    def __repr__(self) -> str:
        return f"KeyRing(coalition={self.coalition!r}, epochs={self.epochs})"


def ip_prefix(ip: str) -> str:
    """Return the network an address belongs to: its /24 (IPv4) or /64 (IPv6), as CIDR text.

    Raises :class:`InputError` for text that is not an IP address.
    """
    try:
        addr = ipaddress.ip_address(ip.strip())
    except ValueError:
        raise InputError(f"{ip[:60]!r} is not an IP address.") from None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    bits = 24 if addr.version == 4 else 64
    return str(ipaddress.ip_network(f"{addr}/{bits}", strict=False))


def email_domain(address: str) -> str:
    """Return the lower-cased, IDNA-normalised domain of an e-mail address (or of a bare domain)."""
    domain = address.rsplit("@", 1)[-1].strip().rstrip(".").lower()
    if not domain or any(c.isspace() for c in domain):
        raise InputError(f"{address[:60]!r} has no usable e-mail domain.")
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return domain


def normalise_identifier(kind: str, value: str) -> str:
    """Return the canonical text of an identifier before it is hashed.

    ``ip-prefix`` accepts an address or a prefix and returns the /24 or /64; ``email-domain``
    accepts an address or a domain; ``account`` and ``payment`` are stripped only (they are
    opaque ids, and payment fingerprints are already a processor's token).
    """
    if kind == "ip-prefix":
        return ip_prefix(value.split("/", 1)[0])
    if kind == "email-domain":
        return email_domain(value)
    if kind in ("account", "payment"):
        v = value.strip()
        if not v:
            raise InputError(f"an empty {kind} identifier cannot be pseudonymised")
        return v
    raise ConfigError(f"The 'kind' of an identifier must be one of {KINDS[:4]}. Got {kind!r} instead.")

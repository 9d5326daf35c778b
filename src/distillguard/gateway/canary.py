"""Canary mode: answers to flagged accounts carry account-unique, learnable canaries.

Two kinds: the account's style canaries (its keyed spelling, contraction and list-marker
choices; every answer is rewritten to them, streamed ones chunk by chunk) and alias canaries (one
sentence appended to answers that touch one of its canary concepts).

The registry of served canaries lives in one JSON file next to the store (``canary_registry``)
so ``distillguard audit --canaries FILE`` can probe a suspect later. Accounts are enrolled when
the policy puts them in a canary band or an admin asks; enrolment is permanent (a harvest that
was once canaried stays provable). The canaries themselves are derived from the gateway's
secret key (:mod:`distillguard.fingerprint.canaries`), so the file holds no secret: it lists
what was planted, not how to make more.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path

from distillguard.errors import InputError
from distillguard.fingerprint.canaries import CanaryConfig, CanarySet, make_canaries
from distillguard.fingerprint.concepts import default_concepts
from distillguard.fingerprint.style import StyleRewriter, rewrite_style
from distillguard.watermark.keys import SecretKey

__all__ = ["CanaryService", "load_registry"]


class CanaryService:
    """Enrol accounts in canary mode and plant their canaries in answers (thread-safe)."""

    def __init__(self, key: SecretKey, path: str | os.PathLike[str],
                 concepts: tuple[str, ...] | None = None, config: CanaryConfig | None = None) -> None:
        self._secret = key.derive("canary")
        self._key_id = key.key_id
        self._path = Path(path)
        self._concepts = concepts or default_concepts()
        self._config = config or CanaryConfig()
        self._lock = threading.Lock()
        self._accounts: list[str] = self._read_accounts()
        self._rebuild()
        stored = self._stored_registry()
        self._check_served_kept(stored)
        if self._accounts and stored != json.loads(self._set.to_json()):
            # a registry written by an older version or with fewer decoys gains what is now made
            # (style bits, decoys); the served canaries were just checked to be the same
            self._save()

    def _check_served_kept(self, stored: object) -> None:
        # Served canaries are evidence already out in the world: a change of config (canaries per
        # account, decoys) that would re-derive any of them differently must not overwrite them.
        if not isinstance(stored, dict):
            return
        try:
            before = {(c["label"], c["concept"], c["alias"]) for c in stored.get("canaries", [])
                      if not str(c["label"]).startswith("decoy:")}
        except (TypeError, KeyError):
            raise InputError(f"canary registry {self._path}: its 'registry' holds malformed canaries; "
                             "expected objects with label, concept and alias") from None
        now = {(c.label, c.concept, c.alias) for c in self._set.canaries if not c.is_decoy}
        lost = before - now
        if lost:
            label, concept, alias = sorted(lost)[0]
            raise InputError(
                f"canary registry {self._path}: with this canary config {len(lost)} served canaries "
                f"would change (e.g. {alias!r} for {concept!r}, account {label!r}); start the gateway "
                "with the config the registry was made with"
            )

    def _read_accounts(self) -> list[str]:
        if not self._path.exists():
            return []
        try:
            doc = json.loads(self._path.read_text("utf-8"))
            accounts = doc["accounts"]
            if doc.get("key_id") != self._key_id:
                raise InputError(f"canary registry {self._path} was made with key {doc.get('key_id')!r}, "
                                 f"not the gateway's key {self._key_id!r}; move it aside or use that key")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"cannot read canary registry {self._path}: {exc}") from None
        if not isinstance(accounts, list) or not all(isinstance(a, str) for a in accounts):
            raise InputError(f"canary registry {self._path}: 'accounts' must be a list of strings")
        return accounts

    def _stored_registry(self) -> object:
        try:
            return json.loads(self._path.read_text("utf-8")).get("registry")
        except (OSError, ValueError, AttributeError):
            return None

    def _rebuild(self) -> None:
        self._set = make_canaries(self._secret, self._key_id, self._accounts, self._concepts, self._config)
        self._bits = self._set.style_bits()  # looked up on every answer: built once per enrolment

    def _save(self) -> None:
        doc = {"key_id": self._key_id, "accounts": self._accounts,
               "registry": json.loads(self._set.to_json())}
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self._path.parent, prefix=".canaries-")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh)
        os.replace(tmp, self._path)  # atomic: a crash leaves the old registry or the new one

    @property
    def registry(self) -> CanarySet:
        """The current canary set (served canaries of every enrolled account, plus decoys)."""
        return self._set

    def is_enrolled(self, account_id: str) -> bool:
        return account_id in self._accounts

    def enroll(self, account_id: str) -> bool:
        """Put an account in canary mode; return True if it was not enrolled before."""
        with self._lock:
            if account_id in self._accounts:
                return False
            self._accounts.append(account_id)
            self._rebuild()
            self._save()
            return True

    def rewriter(self, account_id: str) -> StyleRewriter | None:
        """A streaming rewriter to the account's style canaries, or None (not enrolled)."""
        bits = self._bits.get(account_id)
        return StyleRewriter(bits) if bits is not None else None

    def restyle(self, account_id: str, answer: str) -> str:
        """The answer in the account's style-canary spelling (unchanged when not enrolled)."""
        bits = self._bits.get(account_id)
        return answer if bits is None else rewrite_style(answer, bits)

    def mark(self, account_id: str, prompt: str, answer: str) -> str | None:
        """The canary sentence to append to this answer, or None (not enrolled / no concept)."""
        if account_id not in self._accounts:
            return None
        return self._set.marks(account_id, prompt, answer)


def load_registry(path: str | os.PathLike[str]) -> CanarySet:
    """Read the canary set from a registry file written by :class:`CanaryService`."""
    try:
        doc = json.loads(Path(path).read_text("utf-8"))
        return CanarySet.from_json(json.dumps(doc["registry"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"cannot read canary registry {path}: {exc}") from None

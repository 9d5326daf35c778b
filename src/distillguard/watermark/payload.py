"""The payload codec shared by every scheme: which account a text was generated for.

**Message.** An account id of ``id_bits`` (≥ 32) bits is followed by ``checksum_bits`` bits of
HMAC-SHA256(sub-key "payload/checksum", id); the ``id_bits + checksum_bits`` bits are cut into
``L`` chunks of ``chunk_bits`` = b bits, i.e. values in ``[0, r)`` with r = 2^b "colors".
Id 0 is reserved for "watermarked, no account" (rows generated with ``payload=None``).

**Embedding.** The keyed context hash of each position picks which chunk i ∈ [0, L) the next
token carries; the scheme then favours tokens whose PRF color equals chunk i's value (KGW),
or samples with the uniforms of color m_i (Gumbel). Because the chunk depends only on the
context, every candidate token of one generation step serves the same chunk.

**Anchor slots** (``anchor_chunks`` = A > 0). The context hash picks one of L + A slots; the
first L are the payload chunks, the last A carry a colour fixed by the key alone (the same for
every account). Several colluding accounts disagree on some payload chunks, so a student trained
on their mixed outputs learns no consistent bias there, but every account's outputs push the
anchor slots the same way: a mix still carries a payload-free signal that says "trained on our
outputs" even when it cannot say whose. Anchors cost the payload a share A / (L + A) of the
scored tuples (tracing needs that much more text).

**Decoding** takes, per chunk, the color with the most evidence. A chunk is *decided* when
that maximum is unique. The account is named only if the text is watermarked at level α,
every chunk is decided and the checksum verifies. Under the null the colors of a group are
exchangeable, so given the detection statistic the decoded message is uniform over all
messages and passes the checksum with probability exactly 2^-checksum_bits: the chance that
an unrelated text names *some* account is ≤ p_detect · 2^-checksum_bits (the reported
``PayloadEstimate.p_value``), and a watermarked text decoded with a wrong chunk names a wrong
account only if the checksum collides (2^-checksum_bits).

**Account strings** map to ids by :func:`account_id`: the top ``id_bits`` bits of
HMAC-SHA256(sub-key "payload/account", UTF-8 name), with 0 remapped to 1. Distinct accounts
collide with probability 2^-id_bits per pair (about 1 % for 9,300 accounts at 32 bits — keep
the id→account table, or use :meth:`~distillguard.watermark.kgw.KGW.trace` with the
candidate list, which reports ties).
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from distillguard import stats
from distillguard.errors import ConfigError, InputError
from distillguard.watermark.base import PayloadEstimate
from distillguard.watermark.keys import SecretKey
from distillguard.watermark.prf import bucket

__all__ = ["NO_ACCOUNT", "PayloadCodec", "PayloadFreeTest", "TraceEvidence", "TraceResult", "account_id",
           "decode_groups", "trace_result"]

NO_ACCOUNT = 0


def account_id(key: SecretKey, account: str, bits: int = 32) -> int:
    """Map an account name to a ``bits``-bit id (never 0) with a keyed hash.

    The hash is keyed so that ids cannot be linked to names without the secret.
    """
    if not isinstance(account, str) or not account:
        raise InputError(f"An account name must be a non-empty string. Got {account!r} instead.")
    digest = hmac.new(key.derive("payload/account"), account.encode("utf-8"), hashlib.sha256).digest()
    value = int.from_bytes(digest[:8], "big") >> (64 - bits)
    return value or 1


@dataclass(frozen=True)
class PayloadCodec:
    """Encode an account id into chunk values and back (see the module docstring)."""

    id_bits: int
    checksum_bits: int
    chunk_bits: int
    check_key: bytes = field(repr=False)
    anchors: tuple[int, ...] = ()  # the colour of each anchor slot (key-derived)

    def __post_init__(self) -> None:
        if not (isinstance(self.id_bits, int) and 32 <= self.id_bits <= 64):
            raise ConfigError(
                f"The 'payload_bits' parameter must be an int in [32, 64]. Got {self.id_bits!r} instead."
            )
        if not (isinstance(self.checksum_bits, int) and 0 <= self.checksum_bits <= 32):
            raise ConfigError(
                f"The 'checksum_bits' parameter must be an int in [0, 32]. "
                f"Got {self.checksum_bits!r} instead."
            )
        if not (isinstance(self.chunk_bits, int) and 1 <= self.chunk_bits <= 8):
            raise ConfigError(
                f"The 'chunk_bits' parameter must be an int in [1, 8]. Got {self.chunk_bits!r} instead."
            )
        if not all(isinstance(a, int) and 0 <= a < self.n_colors for a in self.anchors):
            raise ConfigError(f"Anchor colours must be ints in [0, {self.n_colors}). Got {self.anchors!r}.")

    @classmethod
    def for_key(
        cls, key: SecretKey, id_bits: int, checksum_bits: int, chunk_bits: int, anchor_chunks: int = 0
    ) -> PayloadCodec:
        """The codec whose checksum and anchor colours are keyed by ``key``."""
        sub = key.derive("payload/anchor")
        # the top chunk_bits bits of one keyed byte per anchor: a uniform colour in [0, r)
        anchors = tuple(
            hmac.digest(sub, i.to_bytes(4, "big"), "sha256")[0] >> (8 - chunk_bits)
            for i in range(anchor_chunks)
        )
        return cls(id_bits, checksum_bits, chunk_bits, key.derive("payload/checksum"), anchors)

    @property
    def n_colors(self) -> int:
        """r = 2^chunk_bits."""
        return 1 << self.chunk_bits

    @property
    def total_bits(self) -> int:
        """Id bits plus checksum bits."""
        return self.id_bits + self.checksum_bits

    @property
    def n_chunks(self) -> int:
        """L = ceil(total_bits / chunk_bits)."""
        return -(-self.total_bits // self.chunk_bits)

    @property
    def n_slots(self) -> int:
        """L + A: the payload chunks, then the anchor slots."""
        return self.n_chunks + len(self.anchors)

    def slots(self, ctx: np.ndarray) -> np.ndarray:
        """The slot (int64 in [0, L + A)) each keyed context hash picks; < L is a payload chunk."""
        return bucket(ctx, self.n_slots)

    @property
    def anchor_colours(self) -> np.ndarray:
        """The anchor slots' colours as int64, in slot order (L, L + 1, …)."""
        return np.asarray(self.anchors, dtype=np.int64)

    def slot_values(self, value: int | None) -> np.ndarray:
        """The colour every slot favours for ``value``: its L chunk values, then the anchors."""
        return np.concatenate([self.encode(value), self.anchor_colours])

    def checksum(self, value: int) -> int:
        """The keyed checksum bits of an id."""
        if self.checksum_bits == 0:
            return 0
        digest = hmac.new(self.check_key, value.to_bytes(8, "big"), hashlib.sha256).digest()
        return int.from_bytes(digest[:8], "big") >> (64 - self.checksum_bits)

    def check_id(self, value: int | None) -> int:
        """Validate an id to embed (None → the reserved "no account" id 0)."""
        if value is None:
            return NO_ACCOUNT
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, np.integer))
            or not 0 <= int(value) < (1 << self.id_bits)
        ):
            raise InputError(
                f"A payload must be an int in [0, 2^{self.id_bits}) or None. Got {value!r} instead."
            )
        return int(value)

    def encode(self, value: int | None) -> np.ndarray:
        """The L chunk values (int64 in [0, r)) carrying ``value``."""
        v = self.check_id(value)
        msg = (v << self.checksum_bits) | self.checksum(v)
        mask = self.n_colors - 1
        return np.array([(msg >> (self.chunk_bits * i)) & mask for i in range(self.n_chunks)], dtype=np.int64)

    def decode(self, chunks: Sequence[int] | np.ndarray) -> tuple[int, bool]:
        """Return ``(id, checksum_ok)`` for L chunk values."""
        msg = 0
        for i, c in enumerate(np.asarray(chunks, dtype=np.int64)):
            msg |= int(c) << (self.chunk_bits * i)
        msg &= (1 << self.total_bits) - 1
        value = msg >> self.checksum_bits
        check = msg & ((1 << self.checksum_bits) - 1)
        return value, check == self.checksum(value)


@dataclass(frozen=True)
class PayloadFreeTest:
    """The test that needs no account: was this text (or suspect) marked with our key at all?

    ``log_p`` is the exact ln p-value of ``score`` over every scored tuple (payload chunks:
    evidence for *some* colour per chunk; anchor slots: the key's colour). ``anchor_log_p`` is
    the exact ln p-value of the anchor slots alone (0 with no anchors): the part that survives a
    mix of several accounts' outputs. :attr:`mixed_log_p` combines the two for audits.
    """

    score: float
    expected: float
    log_p: float
    test: str
    n_groups: int = 0  # independent groups the exact null convolves (KGW payload mode)
    n_anchor: int = 0
    anchor_score: float = 0.0
    anchor_log_p: float = 0.0

    @property
    def mixed_log_p(self) -> float:
        """The smaller of the two p-values, Bonferroni-corrected for the two (valid for a text
        from one account or from several); ``log_p`` alone when there are no anchors."""
        if self.n_anchor == 0:
            return self.log_p
        return stats.bonferroni(min(self.log_p, self.anchor_log_p), 2)

    @property
    def mixed_test(self) -> str:
        """What :attr:`mixed_log_p` is, in words."""
        if not self.n_anchor:
            return self.test
        return f"{self.test}; the smaller of its p-value and the anchor slots' alone, ×2"


def decode_groups(
    codec: PayloadCodec, evidence: np.ndarray, log_p_detect: float, watermarked: bool
) -> tuple[PayloadEstimate, dict[str, Any]]:
    """Decode from an (L, r) evidence matrix (counts or summed scores; larger = more likely).

    Returns the estimate and extra details (per-chunk margins, the reason when undecided).
    """
    order = np.sort(evidence, axis=1)
    top, second = order[:, -1], order[:, -2] if evidence.shape[1] > 1 else np.zeros(evidence.shape[0])
    decided = top > second
    chunks = np.argmax(evidence, axis=1)
    value, ok = codec.decode(chunks)
    all_decided = bool(decided.all())
    log_p = log_p_detect - codec.checksum_bits * math.log(2.0)
    named = watermarked and all_decided and ok and value != NO_ACCOUNT
    reason = (
        "named"
        if named
        else "not watermarked"
        if not watermarked
        else "undecided chunks"
        if not all_decided
        else "checksum failed"
        if not ok
        else "no account embedded"
    )
    est = PayloadEstimate(
        value=value if named else None,
        p_value=stats.log_to_p(log_p),
        bits_decided=min(codec.total_bits, int(decided.sum()) * codec.chunk_bits),
        bits_total=codec.total_bits,
        checksum_ok=bool(ok and all_decided),
    )
    details = {
        "payload_status": reason,
        "payload_log10_p_value": log_p / stats.LN10,
        "payload_margins": (top - second).tolist(),
    }
    return est, details


@dataclass(frozen=True)
class TraceResult:
    """Which of a known list of accounts a text was most likely generated for.

    ``p_value`` is the best candidate's exact p-value corrected for every candidate (and key)
    tried, by ``correction``. ``separated`` says whether the best candidate beats the runner-up
    by an exact sign test at level ``alpha`` — when False the evidence cannot tell them apart.
    """

    account: Any  # the best candidate as given (None if not significant)
    account_index: int | None
    key_id: str
    n_candidates: int
    n_scored: int
    score: float
    p_value: float
    log10_p_value: float
    correction: str
    alpha: float
    significant: bool
    runner_up: Any = None
    separation_p_value: float = 1.0
    separated: bool = False
    details: dict[str, Any] = field(default_factory=dict)


def candidate_ids(key: SecretKey, codec: PayloadCodec, candidates: Sequence[int | str]) -> list[int]:
    """Ids for a candidate list of ints (ids) and/or strings (account names)."""
    if len(candidates) == 0:
        raise InputError("trace() needs at least one candidate account. Got none.")
    out = []
    for c in candidates:
        out.append(account_id(key, c, codec.id_bits) if isinstance(c, str) else codec.check_id(c))
    return out


def best_two(scores: np.ndarray) -> tuple[int, int | None]:
    """Indices of the largest and second-largest scores (ties keep input order)."""
    order = np.argsort(-scores, kind="stable")
    return int(order[0]), (int(order[1]) if order.size > 1 else None)


@dataclass(frozen=True)
class TraceEvidence:
    """One key's tracing statistics, before correction: the best and runner-up candidates
    (indices), tuples scored, the best candidate's score and exact log p-value, and the log
    p-value of the sign test separating it from the runner-up."""

    best: int
    runner_up: int | None
    n_scored: int
    score: float
    log_p: float
    separation_log_p: float


def trace_result(
    key_id: str, candidates: Sequence[Any], ev: TraceEvidence, n_tests: int, alpha: float, enough: bool
) -> TraceResult:
    """Correct one key's evidence (Bonferroni over ``n_tests`` candidate×key tests) and decide."""
    corrected = stats.bonferroni(ev.log_p, n_tests) if enough else 0.0
    significant = enough and corrected <= np.log(alpha)
    j = ev.runner_up
    separated = significant and (j is None or ev.separation_log_p <= np.log(alpha))
    return TraceResult(
        account=candidates[ev.best] if significant else None,
        account_index=ev.best if significant else None,
        key_id=key_id,
        n_candidates=len(candidates),
        n_scored=ev.n_scored,
        score=ev.score,
        p_value=stats.log_to_p(corrected),
        log10_p_value=corrected / stats.LN10,
        correction=f"bonferroni over {n_tests} candidate×key tests",
        alpha=alpha,
        significant=bool(significant),
        runner_up=candidates[j] if j is not None else None,
        separation_p_value=stats.log_to_p(ev.separation_log_p) if j is not None else 0.0,
        separated=bool(separated),
        details={"enough_tokens": enough},
    )

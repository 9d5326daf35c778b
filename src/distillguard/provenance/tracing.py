"""Which accounts' outputs did the suspect learn from? Payload tracing over a whole audit.

With a payload-mode scheme every served token carried its account's id: the keyed context
picks a chunk i, and the token's colour was pushed towards that account's chunk value m_a[i].
A student trained on account a's outputs reproduces that preference, so over the suspect's
de-duplicated tuples the colour m_a[chunk] turns up more often (KGW) or with larger keyed
uniforms (Gumbel) than chance.

**Per-candidate evidence.** For candidate a, S_a sums, over the scored tuples, the indicator
"colour = m_a[chunk]" (KGW; exactly Binomial(n, 1/r) under the null that the suspect's answers do
not depend on our key) or −ln(1 − u^{(m_a[chunk])}) (Gumbel; exactly Gamma(n, 1)). Holm's method
corrects over all candidates.

**Collusion and look-alikes.** An innocent account b shares about 1/r of its chunk values with a
guilty account a, so S_b inherits part of a's signal and can pass an unconditional test. Accounts
are therefore named step-down: the strongest is named first; every further candidate is tested
only on the chunks where its value differs from every account already named (a suspect that
learned only from named accounts pushes those chunks towards the named accounts' colours, so
b's colour is, if anything, *less* frequent than 1/r there: the conditional test stays valid
under that assumption, which the report states). Holm corrects each step over the remaining
candidates. Finally every named account must keep significant evidence on the chunks where it
differs from each rival (the other named accounts, and unnamed candidates that pass the
unconditional test); when it does not, the result says the evidence cannot separate those
accounts instead of naming one.

:func:`decode_accounts` needs no candidate list: per chunk, the colour with the most evidence,
checked by the keyed checksum (as for single texts), now pooled over every answer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from distillguard import stats
from distillguard.errors import ConfigError, InputError
from distillguard.provenance._collect import check_alpha, collect_tuples
from distillguard.provenance.radioactivity import tuple_statistic
from distillguard.watermark.base import PayloadEstimate, WatermarkScheme
from distillguard.watermark.gumbel import Gumbel
from distillguard.watermark.keys import SecretKey
from distillguard.watermark.kgw import KGW
from distillguard.watermark.payload import PayloadCodec, candidate_ids, decode_groups
from distillguard.watermark.prf import bucket, top_bits

__all__ = ["AccountEvidence", "AccountTrace", "decode_accounts", "trace_accounts"]

_EXACT_TOP = 256

ASSUMPTION = (
    "answers independent of our key under the null; when accounts are named step-down, the suspect's "
    "bias favours the colours of accounts it learned from and is neutral elsewhere"
)


@dataclass(frozen=True)
class AccountEvidence:
    """One candidate account's evidence."""

    account: Any
    log10_p_value: float  # unconditional, uncorrected
    log10_p_holm: float  # Holm-adjusted over all candidates
    log10_p_exclusive: float | None  # conditional on the accounts named before it (None if not tested)
    named: bool


@dataclass(frozen=True)
class AccountTrace:
    """Outcome of :func:`trace_accounts`.

    ``verdict`` is ``"none"`` (no candidate significant), ``"single"`` (one account named),
    ``"several"`` (collusion: each named account carries significant evidence of its own) or
    ``"inseparable"`` (something was learned, but the best candidates cannot be told apart;
    ``inseparable`` lists them).
    """

    verdict: str
    named: tuple[Any, ...]
    inseparable: tuple[Any, ...]
    key_id: str
    n_candidates: int
    n_scored: int
    alpha: float
    assumption: str
    top: tuple[AccountEvidence, ...]  # the strongest candidates, best first
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


class _Evidence:
    """Per-(chunk, colour) evidence and per-chunk tuple counts for one key."""

    def __init__(self, scheme: WatermarkScheme, key: SecretKey, answers: Sequence[Any], dedup: bool) -> None:
        if not isinstance(scheme, (KGW, Gumbel)) or not scheme.payload_mode:
            raise ConfigError(
                "Account tracing needs a payload-mode 'kgw' or 'gumbel' scheme (payload_bits ≥ 32)."
            )
        self.scheme, self.key = scheme, key
        self.codec = scheme.codec(key)
        ts = collect_tuples(scheme, key, answers, dedup=dedup)
        self.tuples = ts.tuples
        r, L = self.codec.n_colors, self.codec.n_chunks
        chunk = bucket(ts.tuples.ctx, L)
        self.n_chunk = np.bincount(chunk, minlength=L).astype(np.int64)
        self.kgw = isinstance(scheme, KGW)
        if self.kgw:
            color = top_bits(ts.tuples.values, scheme.config.chunk_bits)
            self.mat = np.bincount(chunk * r + color, minlength=L * r).reshape(L, r).astype(np.float64)
            self.u = None
        else:
            if not isinstance(scheme, Gumbel):
                raise ConfigError(
                    f"Tracing supports the kgw and gumbel schemes. Got {type(scheme).__name__} instead.")
            uu = scheme._uniforms(key, ts.tuples, r) if ts.tuples.n else np.zeros((0, r))
            e = -np.log1p(-uu)
            self.mat = np.stack([np.bincount(chunk, weights=e[:, c], minlength=L) for c in range(r)], axis=1)
            self.u, self.chunk = uu, chunk
        self.chunk_of = chunk

    def log_p(self, msgs: np.ndarray, chunk_mask: np.ndarray | None = None) -> np.ndarray:
        """ln p of each candidate message (rows of ``msgs``), optionally on a subset of chunks."""
        L = self.mat.shape[0]
        cols = self.mat[np.arange(L)[None, :], msgs]  # (n_cand, L)
        ns = np.broadcast_to(self.n_chunk, cols.shape)
        if chunk_mask is not None:
            cols = np.where(chunk_mask, cols, 0.0)
            ns = np.where(chunk_mask, ns, 0)
        s, n = cols.sum(axis=1), ns.sum(axis=1)
        r = self.codec.n_colors
        # Exact tails cost O(n) each, so they are computed for the candidates with the largest
        # standardised score only; the rest keep ln p = 0 (p = 1). With equal n (the
        # unconditional test) the ranking by score is the ranking by p-value, so Holm's
        # adjustment of every reported candidate is unaffected.
        mean = n / r if self.kgw else n.astype(np.float64)
        sd = np.sqrt(np.maximum(n * (1.0 / r) * (1.0 - 1.0 / r) if self.kgw else n, 1e-12))
        z = np.where(n > 0, (s - mean) / sd, -np.inf)
        best = np.argsort(-z, kind="stable")[:_EXACT_TOP]
        out = np.zeros(s.size)
        for i in best.tolist():
            if n[i] == 0:
                continue
            if self.kgw:
                out[i] = stats.binomial_log_sf(round(s[i]), int(n[i]), 1.0 / r)
            else:
                out[i] = stats.gamma_log_sf(float(s[i]), int(n[i]))
        return out


def _encode_many(codec: PayloadCodec, ids: Sequence[int]) -> np.ndarray:
    """Chunk values of many ids, (n, L) int16: row i equals ``codec.encode(ids[i])``."""
    if codec.total_bits > 64:  # the message does not fit a uint64: encode one by one
        return np.stack([codec.encode(int(v)) for v in ids]).astype(np.int16)
    vals = np.array([codec.check_id(v) for v in ids], dtype=np.uint64)
    checks = np.array([codec.checksum(int(v)) for v in vals.tolist()], dtype=np.uint64)
    msg = (vals << np.uint64(codec.checksum_bits)) | checks
    mask = np.uint64(codec.n_colors - 1)
    shifts = (np.arange(codec.n_chunks) * codec.chunk_bits).astype(np.uint64)
    return ((msg[:, None] >> shifts[None, :]) & mask).astype(np.int16)


def _holm_log(log_p: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values in log space (stays exact below 1e-308)."""
    m = log_p.size
    order = np.argsort(log_p, kind="stable")
    adj = np.minimum(0.0, log_p[order] + np.log(m - np.arange(m)))
    adj = np.maximum.accumulate(adj)
    out = np.empty(m)
    out[order] = adj
    return out


def _ties(
    ev: _Evidence, msgs: np.ndarray, named: list[int], ranked: list[int], holm: np.ndarray, ln_alpha: float
) -> set[int]:
    """Named accounts whose evidence cannot be told apart from another plausible account's.

    A named account x is separated from a rival y when x's own chunk values, on the chunks where
    x and y differ, are still significant: if only y had been learned, x's values there would be
    no more frequent than chance. Rivals are the other named accounts and the unnamed candidates
    that pass the unconditional test; Bonferroni over all pairs checked.
    """
    rivals = [i for i in ranked if i not in named and holm[i] <= ln_alpha]
    pairs = [(x, y) for x in named for y in named + rivals if y != x]
    tied: set[int] = set()
    for x, y in pairs:
        mask = (msgs[x] != msgs[y])[None, :]
        lp = float(ev.log_p(msgs[x : x + 1], mask)[0])
        if stats.bonferroni(lp, len(pairs)) > ln_alpha:
            tied.update((x, y))
    return tied


def trace_accounts(
    scheme: WatermarkScheme,
    answers: Sequence[Sequence[int] | np.ndarray],
    candidates: Sequence[int | str],
    *,
    alpha: float = 1e-6,
    dedup: bool = True,
    max_named: int = 8,
    top: int = 10,
) -> AccountTrace:
    """Name the candidate accounts whose outputs the suspect learned from (primary key).

    Args:
        scheme: a payload-mode KGW or Gumbel with our key.
        answers: the suspect's answers as token ids.
        candidates: account names (str) or ids (int) that were ever served.
        alpha: family-wise error level for naming any account.
        max_named: stop naming after this many accounts.
        top: how many candidates' evidence to report.

    Raises:
        ConfigError: the scheme has no payload, or bad ``alpha``.
        InputError: no candidates or malformed answers.
    """
    check_alpha(alpha)
    key = scheme.keyring.primary  # type: ignore[attr-defined]
    ev = _Evidence(scheme, key, answers, dedup)
    ids = candidate_ids(key, ev.codec, candidates)
    msgs = _encode_many(ev.codec, ids)
    n_cand = len(ids)
    log_p = ev.log_p(msgs)
    holm = _holm_log(log_p)
    ln_alpha = math.log(alpha)
    named: list[int] = []
    exclusive: dict[int, float] = {}
    tied: set[int] = set()
    order = np.argsort(log_p, kind="stable")
    if holm[order[0]] <= ln_alpha:
        named = [int(order[0])]
        exclusive[named[0]] = float(log_p[named[0]])
        while len(named) < max_named:
            rest = np.array([i for i in range(n_cand) if i not in named])
            if rest.size == 0:
                break
            differ = np.all(msgs[rest][:, None, :] != msgs[named][None, :, :], axis=1)
            cond = ev.log_p(msgs[rest], differ)
            j = int(np.argmin(cond))
            if _holm_log(cond)[j] > ln_alpha:
                break
            named.append(int(rest[j]))
            exclusive[int(rest[j])] = float(cond[j])
        tied = _ties(ev, msgs, named, [int(i) for i in order[: max_named + len(named)]], holm, ln_alpha)
    kept = [i for i in named if i not in tied]
    verdict = "inseparable" if tied else "none" if not named else "single" if len(named) == 1 else "several"
    shown = [int(i) for i in order[: min(top, n_cand)]]
    for i in named:
        if i not in shown:
            shown.append(i)
    evidence = tuple(
        AccountEvidence(
            account=candidates[i],
            log10_p_value=float(log_p[i]) / stats.LN10,
            log10_p_holm=float(holm[i]) / stats.LN10,
            log10_p_exclusive=exclusive[i] / stats.LN10 if i in exclusive else None,
            named=i in kept,
        )
        for i in shown
    )
    return AccountTrace(
        verdict=verdict,
        named=tuple(candidates[i] for i in kept),
        inseparable=tuple(candidates[i] for i in sorted(tied, key=lambda i: log_p[i])),
        key_id=key.key_id,
        n_candidates=n_cand,
        n_scored=ev.tuples.n,
        alpha=alpha,
        assumption=ASSUMPTION,
        top=evidence,
        details={"correction": "holm over candidates; step-down conditional tests for further accounts"},
    )


def decode_accounts(
    scheme: WatermarkScheme,
    answers: Sequence[Sequence[int] | np.ndarray],
    *,
    alpha: float = 1e-6,
    dedup: bool = True,
) -> PayloadEstimate:
    """Decode the account id from all answers pooled, with no candidate list.

    The id is named only if the pooled answers are radioactive at ``alpha``, every chunk is
    decided and the keyed checksum verifies; ``p_value`` bounds the chance that answers
    independent of our key name any account (see :mod:`distillguard.watermark.payload`).

    Raises:
        ConfigError: the scheme has no payload, or bad ``alpha``.
    """
    check_alpha(alpha)
    key = scheme.keyring.primary  # type: ignore[attr-defined]
    ev = _Evidence(scheme, key, answers, dedup)
    if ev.tuples.n == 0:
        raise InputError("No scored tuples: the answers are too short to decode a payload.")
    _, _, log_p, _ = tuple_statistic(scheme, key, ev.tuples)
    est, _ = decode_groups(ev.codec, ev.mat, log_p, log_p <= math.log(alpha))
    return est

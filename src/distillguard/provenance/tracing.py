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
unconditional test), and on the chunks where it differs from all other plausible sources at once
(with colluders, an innocent whose value on each chunk equals *some* colluder's value — among a
million candidates there are such "hybrids" — beats every colluder alone and every pairwise
check); when it does not, the result says the evidence cannot separate those accounts instead of
naming one. Last, the **residual test**: on each chunk, the colours no named account holds must
look exchangeable (exact; :meth:`_Evidence.residual_log_p`). If they do not (p ≤ 0.05), the
suspect learned from sources beyond the named ones: with many weak colluders none counts as a
rival on its own, and an innocent whose values match theirs on most chunks can be the strongest
candidate, so nobody is named and the verdict is ``"inseparable"``.

:func:`decode_accounts` needs no candidate list: per chunk, the colour with the most evidence,
checked by the keyed checksum (as for single texts), now pooled over every answer.
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np

from distillguard import stats
from distillguard.errors import ConfigError, InputError
from distillguard.provenance._collect import check_alpha, collect_tuples
from distillguard.provenance.radioactivity import tuple_statistic
from distillguard.watermark._tuples import ScoredTuples
from distillguard.watermark.base import PayloadEstimate, WatermarkScheme
from distillguard.watermark.gumbel import Gumbel
from distillguard.watermark.keys import SecretKey
from distillguard.watermark.kgw import KGW
from distillguard.watermark.maxstat import max_count_log_pmf, sum_log_sf
from distillguard.watermark.payload import PayloadCodec, decode_groups
from distillguard.watermark.prf import top_bits

__all__ = [
    "MIN_COUNT_LADDER",
    "AccountEvidence",
    "AccountTrace",
    "MinCount",
    "decode_accounts",
    "trace_accounts",
]

# min_count="auto": every rung is tried, each at alpha / len(ladder) (Bonferroni), so the choice
# is fixed before any answer is seen and the family-wise error stays at alpha.
MIN_COUNT_LADDER = (1, 2, 3, 5)
MinCount = int | Literal["auto"]

_EXACT_TOP = 256
_POOL = 64  # strongest candidates considered as other sources in the joint check
_SOURCE_LEVEL = 0.05  # family-wise level (over the pool) for counting an unnamed candidate as a source
_RESIDUAL_BLOCK = 1024  # tuples per block of the residual test (bounds its exact null's cost)

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

    ``verdict`` is ``"none"`` (no candidate significant, and no payload-free evidence either),
    ``"single"`` (one account named), ``"several"`` (collusion: each named account carries
    significant evidence of its own), ``"inseparable"`` (something was learned, but the best
    candidates cannot be told apart; ``inseparable`` lists them) or ``"unattributed"`` (the
    payload-free test on the same tuples, ``marked_log10_p``, says the suspect learned from our
    outputs, but no candidate carries evidence of its own: typically a harvest spread over many
    accounts whose payloads cancel, or an account that is not among the candidates).
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
    marked_log10_p: float = 0.0  # payload-free test on the same tuples (anchors included), corrected
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def _frequent(raw: ScoredTuples, min_count: int) -> ScoredTuples:
    """The distinct tuples that occur at least ``min_count`` times in ``raw``, at their first
    occurrence (which tuples qualify depends only on the answers, never on the key)."""
    _, first, counts = np.unique(raw.values, return_index=True, return_counts=True)
    keep = np.sort(first[counts >= min_count])
    return ScoredTuples(
        raw.n_tokens, np.arange(keep.size, dtype=np.int64), raw.ctx[keep], raw.tokens[keep], raw.values[keep]
    )


class _Evidence:
    """Per-(chunk, colour) evidence and per-chunk tuple counts for one key."""

    def __init__(
        self,
        scheme: WatermarkScheme,
        key: SecretKey,
        answers: Sequence[Any],
        dedup: bool,
        min_count: int = 1,
        raw: ScoredTuples | None = None,
    ) -> None:
        if not isinstance(scheme, (KGW, Gumbel)) or not scheme.payload_mode:
            raise ConfigError(
                "Account tracing needs a payload-mode 'kgw' or 'gumbel' scheme (payload_bits ≥ 32)."
            )
        if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
            raise ConfigError(f"The 'min_count' parameter must be an int ≥ 1. Got {min_count!r} instead.")
        if min_count > 1 and not dedup:
            raise ConfigError("The 'min_count' parameter needs dedup=True (it keeps distinct tuples).")
        self.scheme, self.key = scheme, key
        self.codec = scheme.codec(key)
        if min_count == 1:
            self.tuples = collect_tuples(scheme, key, answers, dedup=dedup).tuples
        else:
            if raw is None:  # every tuple, repeats kept (the min_count ladder passes it in once)
                raw = collect_tuples(scheme, key, answers, dedup=False).tuples
            self.tuples = _frequent(raw, min_count)
        r, L = self.codec.n_colors, self.codec.n_chunks
        # Anchor slots favour the same colour for every account: they name nobody, so only the
        # tuples of payload chunks are evidence here.
        self.all_tuples = self.tuples
        slot = self.codec.slots(self.tuples.ctx)
        payload = slot < L
        if not payload.all():
            t = self.tuples
            self.tuples = ScoredTuples(t.n_tokens, t.positions[payload], t.ctx[payload], t.tokens[payload],
                                       t.values[payload])
        chunk = slot[payload]
        self.n_chunk = np.bincount(chunk, minlength=L).astype(np.int64)
        self.kgw = isinstance(scheme, KGW)
        if self.kgw:
            color = top_bits(self.tuples.values, scheme.config.chunk_bits)
            self.mat = np.bincount(chunk * r + color, minlength=L * r).reshape(L, r).astype(np.float64)
            self.u, self.color = None, color
        else:
            if not isinstance(scheme, Gumbel):
                raise ConfigError(
                    f"Tracing supports the kgw and gumbel schemes. Got {type(scheme).__name__} instead."
                )
            uu = scheme._uniforms(key, self.tuples, r) if self.tuples.n else np.zeros((0, r))
            e = -np.log1p(-uu)
            self.mat = np.stack([np.bincount(chunk, weights=e[:, c], minlength=L) for c in range(r)], axis=1)
            self.u = uu
        self.chunk_of = chunk

    def residual_log_p(self, named: np.ndarray) -> float:
        """ln p that the colours no named account holds are still uneven (exact; ``named`` are the
        named accounts' chunk values, one row each).

        Under the naming assumption (the suspect learned from the named accounts only, neutral
        elsewhere) a chunk's other colours are exchangeable: KGW counts among them are
        multinomial (the sum of the largest count per (block, chunk) group has an exact null);
        Gumbel's largest uniform among the r' others, to the power r', is uniform. A small value
        means sources beyond the named accounts, so an innocent "hybrid" of them may be named.
        """
        L, r = self.mat.shape
        other = np.ones((L, r), dtype=bool)
        for row in np.atleast_2d(named):
            other[np.arange(L), row] = False
        n_other = other.sum(axis=1)
        if self.kgw:
            keep = np.flatnonzero(other[self.chunk_of, self.color] & (n_other[self.chunk_of] >= 2))
            if keep.size == 0:
                return 0.0
            block = np.arange(keep.size) // _RESIDUAL_BLOCK
            cell = (block * L + self.chunk_of[keep]) * r + self.color[keep]
            counts = np.bincount(cell, minlength=(int(block[-1]) + 1) * L * r).reshape(-1, r)
            sizes = counts.sum(axis=1)
            rs = np.tile(n_other, int(block[-1]) + 1)
            groups = [max_count_log_pmf(int(m), int(k)) for m, k in zip(sizes, rs, strict=True) if m]
            return sum_log_sf(groups, int(counts.max(axis=1).sum()))
        uu = self.u if self.u is not None else np.zeros((0, r))
        rows = np.flatnonzero(n_other[self.chunk_of] >= 1)
        if rows.size == 0:
            return 0.0
        mask = other[self.chunk_of[rows]]
        u_max = np.where(mask, uu[rows], 0.0).max(axis=1)
        w = -np.log(-np.expm1(n_other[self.chunk_of[rows]] * np.log(u_max)))
        return stats.gamma_log_sf(float(w.sum()), rows.size)

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


def _candidate_ids(key: SecretKey, codec: PayloadCodec, candidates: Sequence[int | str]) -> np.ndarray:
    """Ids of a candidate list, uint64: entry i equals ``candidate_ids(key, codec, candidates)[i]``.

    Same mapping as :func:`~distillguard.watermark.payload.account_id`, with the sub-key derived
    once and the one-shot ``hmac.digest`` (a million account names take about a second).

    Raises:
        InputError: no candidates, an empty name or an id out of range.
    """
    if len(candidates) == 0:
        raise InputError("trace() needs at least one candidate account. Got none.")
    sub = key.derive("payload/account")
    shift = 64 - codec.id_bits
    out = np.empty(len(candidates), dtype=np.uint64)
    for i, c in enumerate(candidates):
        if isinstance(c, str):
            if not c:
                raise InputError(f"An account name must be a non-empty string. Got {c!r} instead.")
            out[i] = (int.from_bytes(hmac.digest(sub, c.encode("utf-8"), "sha256")[:8], "big") >> shift) or 1
        else:
            out[i] = codec.check_id(c)
    return out


def _encode_many(codec: PayloadCodec, ids: Sequence[int] | np.ndarray) -> np.ndarray:
    """Chunk values of many ids, (n, L) int16: row i equals ``codec.encode(ids[i])``."""
    if codec.total_bits > 64:  # the message does not fit a uint64: encode one by one
        return np.stack([codec.encode(int(v)) for v in ids]).astype(np.int16)
    if isinstance(ids, np.ndarray) and ids.dtype == np.uint64:  # from _candidate_ids: validated
        vals = ids
    else:
        vals = np.array([codec.check_id(int(v)) for v in ids], dtype=np.uint64)
    if codec.checksum_bits:
        shift = 64 - codec.checksum_bits
        checks = np.array(
            [
                int.from_bytes(hmac.digest(codec.check_key, v.to_bytes(8, "big"), "sha256")[:8], "big")
                >> shift
                for v in vals.tolist()
            ],
            dtype=np.uint64,
        )
    else:
        checks = np.zeros(vals.size, dtype=np.uint64)
    msg = (vals << np.uint64(codec.checksum_bits)) | checks
    mask = np.uint64(codec.n_colors - 1)
    shifts = (np.arange(codec.n_chunks) * codec.chunk_bits).astype(np.uint64)
    return ((msg[:, None] >> shifts[None, :]) & mask).astype(np.int16)


def _ties(
    ev: _Evidence,
    msgs: np.ndarray,
    named: list[int],
    ranked: list[int],
    holm: np.ndarray,
    ln_alpha: float,
    n_rivals: int,
) -> set[int]:
    """Named accounts whose evidence cannot be told apart from other plausible accounts'.

    Two checks, both must pass for a named account x:

    - *pairwise*: x is separated from a rival y when x's own chunk values, on the chunks where
      x and y differ, are still significant: if only y had been learned, x's values there would
      be no more frequent than chance. Rivals are the other named accounts and the unnamed
      candidates among the ``n_rivals`` strongest that pass the unconditional test; Bonferroni
      over all pairs checked.
    - *joint*: with several guilty accounts, an innocent "hybrid" whose value on each chunk
      happens to equal *some* guilty account's value beats every guilty account alone, and each
      pairwise check (differing chunks carry another guilty account's value). So x must also be
      significant on the chunks where it differs from every other source at once: the other
      named accounts, and those of the ``_POOL`` strongest unnamed candidates that carry evidence
      of their own on the chunks where they differ from every named account (the step-down test,
      at the lenient level ``_SOURCE_LEVEL`` over the pool: a guilty account too weak to be named
      still counts). Bonferroni over the named accounts. A tie lists x and those sources.
    """
    tied: set[int] = set()
    rivals = [i for i in ranked[: n_rivals + len(named)] if i not in named and holm[i] <= ln_alpha]
    pairs = [(x, y) for x in named for y in named + rivals if y != x]
    for x, y in pairs:
        mask = (msgs[x] != msgs[y])[None, :]
        lp = float(ev.log_p(msgs[x : x + 1], mask)[0])
        if stats.bonferroni(lp, len(pairs)) > ln_alpha:
            tied.update((x, y))
    pool = [i for i in ranked[:_POOL] if i not in named]
    ln_source = math.log(_SOURCE_LEVEL / max(1, len(pool)))
    # unnamed accounts with evidence of their own where they differ from every named account
    beyond = np.all(msgs[pool][:, None, :] != msgs[named][None, :, :], axis=1)
    cond = ev.log_p(msgs[pool], beyond) if pool else np.zeros(0)
    unexplained = [y for y, lp in zip(pool, cond.tolist(), strict=True) if lp <= ln_source]
    for x in named:
        sources = [y for y in named if y != x] + unexplained
        if not sources:
            continue
        mask = np.all(msgs[sources] != msgs[x][None, :], axis=0)[None, :]
        lp = float(ev.log_p(msgs[x : x + 1], mask)[0]) if mask.any() else 0.0
        if stats.bonferroni(lp, len(named)) > ln_alpha:
            tied.update((x, *sources))
    return tied


def trace_accounts(
    scheme: WatermarkScheme,
    answers: Sequence[Sequence[int] | np.ndarray],
    candidates: Sequence[int | str],
    *,
    alpha: float = 1e-6,
    dedup: bool = True,
    min_count: MinCount = "auto",
    max_named: int = 8,
    top: int = 10,
) -> AccountTrace:
    """Name the candidate accounts whose outputs the suspect learned from (primary key).

    Args:
        scheme: a payload-mode KGW or Gumbel with our key.
        answers: the suspect's answers as token ids.
        candidates: account names (str) or ids (int) that were ever served.
        alpha: family-wise error level for naming any account.
        min_count: score only the distinct tuples the suspect produced at least this often over
            all answers. The selection depends on the answers alone, so the tests stay exact; it
            keeps the contexts a student learned well (where the watermark's bias lives) and
            drops the one-off tuples that only dilute it (docs/benchmarks.md, lab-tracing).
            ``"auto"`` (default) traces with every rung of :data:`MIN_COUNT_LADDER`, each at
            ``alpha / 4``, and names the union of the accounts named: a rule fixed in advance,
            family-wise error ≤ alpha; reported p-values carry the factor 4.
        max_named: stop naming after this many accounts.
        top: how many candidates' evidence to report.

    Raises:
        ConfigError: the scheme has no payload, or bad ``alpha``.
        InputError: no candidates or malformed answers.
    """
    check_alpha(alpha)
    if min_count == "auto":
        return _trace_ladder(scheme, answers, candidates, alpha=alpha, dedup=dedup, max_named=max_named,
                             top=top)
    key = scheme.keyring.primary  # type: ignore[attr-defined]
    ev = _Evidence(scheme, key, answers, dedup, min_count)
    msgs = _encode_many(ev.codec, _candidate_ids(key, ev.codec, candidates))
    return _trace(ev, msgs, candidates, alpha=alpha, max_named=max_named, top=top, min_count=min_count)


def _verdict(n_named: int, tied: bool, marked: bool) -> str:
    if tied:
        return "inseparable"
    if n_named:
        return "single" if n_named == 1 else "several"
    return "unattributed" if marked else "none"


def _trace(ev: _Evidence, msgs: np.ndarray, candidates: Sequence[int | str], *, alpha: float,
           max_named: int, top: int, min_count: int) -> AccountTrace:
    """The step-down naming of :func:`trace_accounts` on evidence and candidate messages."""
    n_cand = len(candidates)
    log_p = ev.log_p(msgs)
    holm = stats.holm_log(log_p)
    ln_alpha = math.log(alpha)
    named: list[int] = []
    exclusive: dict[int, float] = {}
    tied: set[int] = set()
    order = np.argsort(log_p, kind="stable")
    if holm[order[0]] <= ln_alpha:
        named = [int(order[0])]
        exclusive[named[0]] = float(log_p[named[0]])
        unnamed = np.ones(n_cand, dtype=bool)
        unnamed[named] = False
        while len(named) < max_named:
            rest = np.flatnonzero(unnamed)
            if rest.size == 0:
                break
            differ = np.all(msgs[rest][:, None, :] != msgs[named][None, :, :], axis=1)
            cond = ev.log_p(msgs[rest], differ)
            j = int(np.argmin(cond))
            if stats.holm_log(cond)[j] > ln_alpha:
                break
            named.append(int(rest[j]))
            unnamed[rest[j]] = False
            exclusive[int(rest[j])] = float(cond[j])
        ranked = [int(i) for i in order[: max(_POOL, max_named) + len(named)]]
        tied = _ties(ev, msgs, named, ranked, holm, ln_alpha, max_named)
    kept = [i for i in named if i not in tied]
    residual = ev.residual_log_p(msgs[kept]) if kept else 0.0
    if kept and residual <= math.log(_SOURCE_LEVEL):
        # Evidence beyond the named accounts: among many candidates an innocent whose values
        # match those other sources' could stand in for them, so nobody is named.
        tied = set(named) | {int(i) for i in order[: max_named]}
        kept = []
    marked = tuple_statistic(ev.scheme, ev.key, ev.all_tuples).mixed_log_p
    verdict = _verdict(len(kept), bool(tied), marked <= ln_alpha)
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
        key_id=ev.key.key_id,
        n_candidates=n_cand,
        n_scored=ev.tuples.n,
        alpha=alpha,
        assumption=ASSUMPTION,
        top=evidence,
        marked_log10_p=marked / stats.LN10,
        details={"correction": "holm over candidates; step-down conditional tests for further accounts",
                 "residual_log10_p": residual / stats.LN10,
                 "min_count": min_count},
    )


def _trace_ladder(
    scheme: WatermarkScheme,
    answers: Sequence[Sequence[int] | np.ndarray],
    candidates: Sequence[int | str],
    *,
    alpha: float,
    dedup: bool,
    max_named: int,
    top: int,
) -> AccountTrace:
    """``min_count="auto"``: one trace per rung of the ladder at alpha / rungs; named = union.

    Each rung's trace controls its family-wise error at alpha / rungs, so an innocent account is
    named by any rung with probability ≤ alpha. Inseparable sets are reported only when no rung
    names anyone (a rung that names an account alone outweighs one that could not separate).
    """
    rungs = len(MIN_COUNT_LADDER)
    key = scheme.keyring.primary  # type: ignore[attr-defined]
    # tuples and candidate messages depend on the key and the answers, not on the rung: made once
    raw = collect_tuples(scheme, key, answers, dedup=False).tuples if dedup else None
    evidence = {m: _Evidence(scheme, key, answers, dedup, m, raw=raw) for m in MIN_COUNT_LADDER}
    codec = evidence[MIN_COUNT_LADDER[0]].codec
    msgs = _encode_many(codec, _candidate_ids(key, codec, candidates))
    runs = {m: _trace(ev, msgs, candidates, alpha=alpha / rungs, max_named=max_named, top=top, min_count=m)
            for m, ev in evidence.items()}
    named = tuple(dict.fromkeys(a for t in runs.values() for a in t.named))
    inseparable = () if named else tuple(dict.fromkeys(a for t in runs.values() for a in t.inseparable))
    shift = math.log10(rungs)
    marked = min(0.0, min(t.marked_log10_p for t in runs.values()) + shift)
    verdict = _verdict(len(named), bool(inseparable), marked <= math.log10(alpha))
    # the rung with the strongest best candidate provides the evidence table
    best = min(runs.values(), key=lambda t: t.top[0].log10_p_holm if t.top else 0.0)
    shown = tuple(replace(e, log10_p_holm=min(0.0, e.log10_p_holm + shift), named=e.account in named)
                  for e in best.top)
    return AccountTrace(
        verdict=verdict, named=named, inseparable=inseparable, key_id=best.key_id,
        n_candidates=best.n_candidates, n_scored=best.n_scored, alpha=alpha, assumption=ASSUMPTION,
        top=shown, marked_log10_p=marked,
        details={
            "correction": (f"min_count ladder {list(MIN_COUNT_LADDER)}, each rung at alpha/{rungs} "
                           "(Bonferroni); within a rung holm over candidates and step-down tests"),
            "min_count": "auto",
            "evidence_from_min_count": best.details["min_count"],
            "rungs": {str(m): {"verdict": t.verdict, "named": list(t.named), "n_scored": t.n_scored,
                               "best_log10_p_holm": t.top[0].log10_p_holm + shift if t.top else 0.0}
                      for m, t in runs.items()},
        },
    )


def decode_accounts(
    scheme: WatermarkScheme,
    answers: Sequence[Sequence[int] | np.ndarray],
    *,
    alpha: float = 1e-6,
    dedup: bool = True,
    min_count: MinCount = "auto",
) -> PayloadEstimate:
    """Decode the account id from all answers pooled, with no candidate list.

    The id is named only if the pooled answers are radioactive at ``alpha``, every chunk is
    decided and the keyed checksum verifies; ``p_value`` bounds the chance that answers
    independent of our key name any account (see :mod:`distillguard.watermark.payload`).
    ``min_count`` as for :func:`trace_accounts`; with ``"auto"`` the first rung of the ladder
    that decodes an account (each tried at ``alpha / 4``) gives the estimate, its p-value times 4.

    Raises:
        ConfigError: the scheme has no payload, or bad ``alpha``.
    """
    check_alpha(alpha)
    if min_count == "auto":
        rungs = len(MIN_COUNT_LADDER)
        tried = [decode_accounts(scheme, answers, alpha=alpha / rungs, dedup=dedup, min_count=m)
                 for m in MIN_COUNT_LADDER]
        est = next((e for e in tried if e.value is not None), tried[0])
        return replace(est, p_value=min(1.0, est.p_value * rungs))
    key = scheme.keyring.primary  # type: ignore[attr-defined]
    ev = _Evidence(scheme, key, answers, dedup, min_count)
    if ev.tuples.n == 0:
        raise InputError("No scored tuples: the answers are too short to decode a payload.")
    log_p = tuple_statistic(scheme, key, ev.all_tuples).log_p
    est, _ = decode_groups(ev.codec, ev.mat, log_p, log_p <= math.log(alpha))
    return est

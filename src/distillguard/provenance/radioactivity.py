"""Black-box radioactivity test: did the suspect model learn our watermark from our outputs?

We send prompts to the suspect and score its *answers* (token ids, in our tokenizer) with our
key, exactly as if they were text we had generated. A student fine-tuned on our watermarked
outputs reproduces the bias of the (context, token) pairs it saw often, so its answers hold more
green tuples (KGW) or larger keyed uniforms (Gumbel) than chance.

**Null hypothesis.** "The suspect's answers do not depend on our key" — true for any model that
was not trained on text we watermarked (including our own model with the watermark off). Under it
every *distinct* (context, token) tuple is green independently with probability γ (KGW), or has an
exactly Exp(1) score (Gumbel), because the keyed PRF of distinct inputs is independent of
everything the suspect could know. So, after **global de-duplication** of tuples across all
answers (:mod:`._collect`), the p-value is exact: binomial tail (KGW), Gamma tail (Gumbel), the
exact max-count statistic (KGW with payload) or the Exp(1) max-colour statistic (Gumbel with
payload). Without dedup, a clean model asked repeated prompts looks radioactive; the calibration
tests show it.

**Context filter.** Optionally only tuples whose context appeared in our served outputs are
scored (Sander et al., 2024): the student can only have learned contexts it saw. This removes
noise but *changes the null*: the set of served contexts depends on the key (a served window
that ends in token x tells that x followed the previous window, and x was picked with the
watermark's bias), so a clean model that writes like ours can score above γ on filtered tuples.
The filtered p-value is exact only when the filter set is independent of the key (e.g. contexts
of prompts or of unwatermarked traffic); with a filter from watermarked outputs, read it next to
the controls (a clean model through the same filter) — the report says so. See
``docs/provenance.md`` for the measured size of this effect.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from distillguard import stats
from distillguard.errors import InputError
from distillguard.provenance._collect import ContextFilter, TupleSet, check_alpha, collect_tuples
from distillguard.watermark._tuples import ScoredTuples
from distillguard.watermark.base import WatermarkScheme
from distillguard.watermark.gumbel import Gumbel
from distillguard.watermark.keys import SecretKey
from distillguard.watermark.kgw import KGW
from distillguard.watermark.payload import PayloadFreeTest

__all__ = ["CurvePoint", "RadioactivityResult", "radioactivity_test", "tuple_statistic"]


@dataclass(frozen=True)
class CurvePoint:
    """The audit's p-value after the first ``n_queries`` answers.

    ``log10_p_value`` is exact for a query count fixed before any result was seen.
    ``log10_p_any_look`` stays valid when the auditor decides when to stop by watching the curve
    (or extends a finished audit): the smallest spent p-value (:func:`~distillguard.stats.spent_log_p`)
    over the looks at 1, 2, 4, 8, … answers up to ``n_queries``.
    """

    n_queries: int
    n_tokens: int
    n_scored: int
    log10_p_value: float
    log10_p_any_look: float = 0.0


@dataclass(frozen=True)
class RadioactivityResult:
    """Outcome of :func:`radioactivity_test`.

    ``p_value`` is exact under the null stated in ``null`` (corrected over keys by
    ``correction``); ``log10_p_value`` keeps it when the float underflows. ``radioactive`` is
    ``p_value <= alpha`` with at least ``min_scored`` scored tuples: valid when the number of
    queries was fixed in advance. ``any_look_log10_p_value`` (None without a curve) is the
    p-value to read instead when it was not (see :class:`CurvePoint`).
    """

    scheme: str
    key_id: str
    test: str
    null: str
    n_answers: int
    n_tokens: int
    n_raw: int
    n_after_dedup: int
    n_scored: int
    score: float
    expected: float
    p_value: float
    log10_p_value: float
    alpha: float
    radioactive: bool
    dedup: bool
    filtered: bool
    correction: str
    curve: tuple[CurvePoint, ...] = ()
    any_look_log10_p_value: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def tuple_statistic(scheme: WatermarkScheme, key: SecretKey, tup: ScoredTuples) -> PayloadFreeTest:
    """Score scored tuples under the scheme's null (needs no account).

    The tuples must be distinct (de-duplicated); the p-values are then exact. Audits use
    :attr:`~distillguard.watermark.payload.PayloadFreeTest.mixed_log_p`: with anchor slots, the
    smaller of the all-tuples and anchor-only p-values, ×2 — a suspect trained on several
    accounts' outputs carries the anchors' bias even where their payloads cancel.
    """
    n = tup.n
    if isinstance(scheme, KGW) and not scheme.payload_mode:
        k = int((tup.values < np.uint64(scheme.config.green_threshold)).sum())
        g = scheme.config.effective_gamma
        log_p = stats.binomial_log_sf(k, n, g) if n else 0.0
        return PayloadFreeTest(float(k), n * g, log_p, "binomial green count")
    if isinstance(scheme, (KGW, Gumbel)):
        if n == 0:
            return PayloadFreeTest(0.0, 0.0, 0.0, "none")
        return scheme.payload_free_test(key, tup)
    raise InputError(f"Unsupported scheme {type(scheme).__name__}.")  # pragma: no cover


def _prefix(ts: TupleSet, m: int) -> ScoredTuples:
    j = int(np.searchsorted(ts.answer, m, side="left"))
    t = ts.tuples
    return ScoredTuples(t.n_tokens, t.positions[:j], t.ctx[:j], t.tokens[:j], t.values[:j])


def _checkpoints(n_answers: int, n_points: int, also: Sequence[int]) -> list[int]:
    """``n_points`` log-spaced query counts and those of ``also`` (≤ ``n_answers``), plus every
    look of the any-look p-value (powers of two) up to the largest; none when that is empty."""
    pts = {int(q) for q in also if 1 <= int(q) <= n_answers}
    if n_answers > 0 and n_points > 0:
        pts |= {int(p) for p in np.round(np.geomspace(1, n_answers, min(n_points, n_answers)))}
    if not pts:
        return []
    return sorted(pts | {2**j for j in range(max(pts).bit_length())})


def _look(n_queries: int) -> int | None:
    """The 1-based index of ``n_queries`` among the looks 1, 2, 4, 8, …; None between looks."""
    if n_queries < 1 or n_queries & (n_queries - 1):
        return None
    return n_queries.bit_length()


def _curve(
    scheme: WatermarkScheme,
    per_key: Sequence[tuple[SecretKey, TupleSet]],
    at: Sequence[int],
    lengths: np.ndarray,
    min_scored: int,
    correct: Callable[[float], float],
) -> tuple[CurvePoint, ...]:
    """The p-value at each query count in ``at``, the best key *at that count* corrected over
    the ring (the key that wins on all answers is chosen with data a prefix has not seen)."""
    points = []
    any_look = 0.0
    for q in at:
        best, n_scored = 0.0, 0
        for key, ts in per_key:
            pre = _prefix(ts, q)
            lp = tuple_statistic(scheme, key, pre).mixed_log_p if pre.n >= min_scored else 0.0
            if lp <= best:
                best, n_scored = lp, pre.n
        lp = correct(best)
        look = _look(q)
        if look is not None:
            any_look = min(any_look, stats.spent_log_p(lp, look))
        points.append(CurvePoint(q, int(lengths[q - 1]), n_scored, lp / stats.LN10, any_look / stats.LN10))
    return tuple(points)


def radioactivity_test(
    scheme: WatermarkScheme,
    answers: Sequence[Sequence[int] | np.ndarray],
    *,
    alpha: float = 1e-6,
    dedup: bool = True,
    context_filters: Sequence[ContextFilter] | ContextFilter | None = None,
    curve_points: int = 24,
    curve_at: Sequence[int] = (),
) -> RadioactivityResult:
    """Test a suspect's answers (token ids in our tokenizer) for our watermark's bias.

    Every key of the scheme's ring is tried; with several, the best p-value is Šidák-corrected
    (exact: p-values under independent keys are independent under the null).

    Args:
        scheme: a built :class:`~distillguard.watermark.KGW` or
            :class:`~distillguard.watermark.Gumbel` holding our key(s).
        answers: one token-id sequence per suspect answer (answers only, not prompts).
        alpha: significance level of ``radioactive``.
        dedup: score each (context, token) tuple once over all answers (keep True: without it
            the p-value is not valid for a model that repeats itself).
        context_filters: keep only tuples whose context is in our served outputs; one filter per
            key of the ring (see the module docstring for what this does to the null).
        curve_points: how many points of the p-value-vs-queries curve to compute.
        curve_at: query counts the curve must also include (those beyond the answers are dropped).

    Raises:
        ConfigError: bad ``alpha`` or an unsupported scheme.
        InputError: malformed answers, or no filter for one of the ring's keys.

    >>> from distillguard.watermark import KGW, SecretKey
    >>> res = radioactivity_test(KGW(key=SecretKey(bytes(32))), [[1, 2, 3, 4]] * 3)
    >>> res.n_raw, res.n_scored, res.radioactive
    (6, 2, False)
    """
    check_alpha(alpha)
    ring = scheme.keyring  # type: ignore[attr-defined]
    filters: dict[str, ContextFilter] = {}
    if context_filters is not None:
        flist = [context_filters] if isinstance(context_filters, ContextFilter) else list(context_filters)
        filters = {f.key_id: f for f in flist}
        missing = [k.key_id for k in ring if k.key_id not in filters]
        if missing:
            raise InputError(f"No context filter for key(s) {missing}; build one per key of the ring.")
    min_scored = int(scheme.config.min_scored)  # type: ignore[attr-defined]
    results = []
    for key in ring:
        ts = collect_tuples(scheme, key, answers, dedup=dedup, context_filter=filters.get(key.key_id))
        test = tuple_statistic(scheme, key, ts.tuples)
        results.append((test.mixed_log_p, key, ts, test))
    log_p, key, ts, test = min(results, key=lambda r: r[0])
    m = len(results)
    correct = (lambda lp: stats.sidak_min(lp, m)) if m > 1 else (lambda lp: lp)
    final = correct(log_p)
    enough = ts.tuples.n >= min_scored
    if not enough:
        final = 0.0
    lengths = np.cumsum([len(a) for a in answers]) if len(answers) else np.zeros(0, dtype=int)
    at = _checkpoints(ts.n_answers, curve_points, curve_at)
    curve = _curve(scheme, [(r[1], r[2]) for r in results], at, lengths, min_scored, correct)
    null = (
        "answers independent of our key: every distinct (context, token) tuple is an independent "
        "draw of the keyed PRF"
        + ("" if dedup else " (NOT guaranteed: dedup is off, repeated tuples are counted again)")
        + (
            "; tuples restricted to contexts seen in our served outputs, whose set depends on the key: "
            "compare with a clean control through the same filter"
            if filters
            else ""
        )
    )
    p = stats.log_to_p(final)
    return RadioactivityResult(
        scheme=scheme.name,
        key_id=key.key_id,
        test=test.mixed_test,
        null=null,
        n_answers=ts.n_answers,
        n_tokens=ts.n_tokens,
        n_raw=ts.n_raw,
        n_after_dedup=ts.n_after_dedup,
        n_scored=ts.tuples.n,
        score=test.score,
        expected=test.expected,
        p_value=p,
        log10_p_value=final / stats.LN10,
        alpha=alpha,
        radioactive=bool(enough and final <= math.log(alpha)),
        dedup=dedup,
        filtered=bool(filters),
        correction=f"sidak over {m} keys" if m > 1 else "none (one key)",
        curve=curve,
        any_look_log10_p_value=curve[-1].log10_p_any_look if curve else None,
        details={
            "enough_tokens": enough,
            "min_scored": min_scored,
            "filter_contexts": filters[key.key_id].size if filters else None,
            "per_key_log10_p_value": {r[1].key_id: r[0] / stats.LN10 for r in results},
            "all_tuples_log10_p_value": test.log_p / stats.LN10,
            "anchor_tuples": test.n_anchor,
            "anchor_score": test.anchor_score,
            "anchor_log10_p_value": test.anchor_log_p / stats.LN10,
        },
    )

"""Open-model "reading" test: does the suspect *predict* our watermark on our own texts?

When the suspect's weights (or logits) are available, we feed it our watermarked texts and look
at its next-token distribution at every position. A student trained on our outputs has learned
to prefer green tokens (KGW) or tokens with large keyed uniforms (Gumbel) after contexts it saw.

**The null.** "The suspect's predictions do not depend on our key." The text we feed was
generated *with* the key, so care is needed: the suspect's prediction at position j depends on the
prefix, and the prefix depends on the keyed bits of every context that occurred in it. The test
therefore scores each distinct context c only at its **first occurrence** in the fed corpus
(texts in order, generation history included): the keyed bits of (c, ·) were never used to
produce anything the suspect has seen at that point, so given everything before, they are fresh
independent Bernoulli(γ) (KGW) or Exp(1) (Gumbel) draws, whatever the suspect predicts. That
makes the per-context scores a martingale-difference sequence with known conditional law: the
top-1 green count is exactly Binomial(n, γ) (Gamma(n, 1) for Gumbel), and the Chernoff bound of
the mass statistic is valid. Scoring a context again later is *not* valid: by then the token that
followed it (chosen with the watermark's bias) is in the prefix, and a model that copies from its
context — every transformer does — would look radioactive (``dedup=False`` exists only to show
this in the tests). Contexts in the history (the prompt, and the windows that straddle prompt and
answer) count as already seen, so pass the prompt ids as ``history``.

Two statistics:

- ``top1`` — per context, the suspect's most likely candidate: green count, exact binomial
  tail (KGW), or summed Exp(1) scores, exact Gamma tail (Gumbel).
- ``mass`` — per context, the suspect's probability mass on green tokens among its candidates
  (renormalised to 1), summed over contexts; the p-value is the Chernoff bound
  min_λ e^{−λt} Π E e^{λ w X} of the independent-draw law: valid, slightly conservative, and
  meaningful far below 1e-300 (reported as log10).

Power comes from contexts the student saw in training: feed texts like the ones it was trained
on (the harvest itself is ideal — first occurrences there are exactly what it learned).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

from distillguard import stats
from distillguard.errors import ConfigError, InputError
from distillguard.provenance._collect import check_alpha, primary_purpose
from distillguard.watermark._tuples import as_token_array
from distillguard.watermark.base import WatermarkScheme
from distillguard.watermark.gumbel import Gumbel
from distillguard.watermark.kgw import KGW
from distillguard.watermark.prf import context_hashes, pair_prf, to_uniform

__all__ = ["ReadingItem", "ReadingResult", "reading_test"]

_STATISTICS = ("top1", "mass")


@dataclass(frozen=True, eq=False)
class ReadingItem:
    """One watermarked text fed to the suspect, with the suspect's predictions.

    Attributes:
        token_ids: (T,) the text as fed (our tokenizer).
        cand_ids: (T, k) row j = the suspect's k candidate next tokens after ``token_ids[:j+1]``
            (e.g. its top-k); the last row is never scored and may be anything.
        cand_probs: (T, k) the suspect's probabilities of those candidates.
        history: tokens that preceded the text when it was generated (the prompt ids): their
            windows count as already seen; empty if none.
    """

    token_ids: np.ndarray
    cand_ids: np.ndarray
    cand_probs: np.ndarray
    history: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __post_init__(self) -> None:
        ids = as_token_array(self.token_ids)
        c = np.asarray(self.cand_ids)
        p = np.asarray(self.cand_probs, dtype=np.float64)
        if c.ndim != 2 or c.shape[0] != ids.size or p.shape != c.shape:
            raise InputError(
                f"cand_ids and cand_probs must both have shape (len(token_ids), k) = ({ids.size}, k). "
                f"Got {c.shape} and {p.shape}."
            )
        if p.size and (not np.all(np.isfinite(p)) or float(p.min()) < 0.0):
            raise InputError("cand_probs must be finite and non-negative.")
        if c.size and (c.dtype.kind not in "iu" or int(c.min()) < 0):
            raise InputError("cand_ids must hold non-negative integer token ids.")


@dataclass(frozen=True)
class ReadingResult:
    """Outcome of :func:`reading_test` (p-value valid under ``null``; see the module docstring)."""

    scheme: str
    key_id: str
    statistic: str
    exact: bool  # True: exact tail of a dominating law; False: Chernoff bound
    null: str
    n_texts: int
    n_positions: int
    n_contexts: int  # distinct contexts scored
    score: float
    expected: float
    p_value: float
    log10_p_value: float
    alpha: float
    radioactive: bool

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def _chernoff_bernoulli(w: np.ndarray, t: float, g: float) -> float:
    """ln of min_λ e^{−λt} Π (1 − g + g e^{λ w_i}) (a bound on P(Σ w_i B_i ≥ t))."""
    if t <= g * float(w.sum()):
        return 0.0

    def f(lam: float) -> float:
        return float(-lam * t + np.sum(np.logaddexp(math.log1p(-g), math.log(g) + lam * w)))

    res = minimize_scalar(f, bounds=(0.0, 1e4), method="bounded", options={"xatol": 1e-10})
    return min(0.0, float(res.fun))


def _chernoff_exponential(w: np.ndarray, t: float) -> float:
    """ln of min_λ e^{−λt} Π 1/(1 − λ w_i) (a bound on P(Σ w_i E_i ≥ t), E_i ~ Exp(1))."""
    if t <= float(w.sum()):
        return 0.0
    hi = (1.0 - 1e-12) / float(w.max())

    def f(lam: float) -> float:
        return float(-lam * t - np.sum(np.log1p(-lam * w)))

    res = minimize_scalar(f, bounds=(0.0, hi), method="bounded", options={"xatol": 1e-12})
    return min(0.0, float(res.fun))


def reading_test(
    scheme: WatermarkScheme,
    items: Sequence[ReadingItem],
    *,
    statistic: str = "mass",
    alpha: float = 1e-6,
    dedup: bool = True,
) -> ReadingResult:
    """Test the suspect's next-token predictions on our watermarked texts (primary key only).

    Args:
        scheme: a payload-free KGW or Gumbel with our key.
        items: the fed texts in order, with the suspect's candidates and probabilities.
        statistic: ``"mass"`` (more powerful) or ``"top1"`` (exact tail).
        alpha: significance level of ``radioactive``.
        dedup: score each context at its first occurrence only (keep True; see the module
            docstring for why False is invalid).

    Raises:
        ConfigError: bad ``alpha`` or ``statistic``, a payload-mode scheme (the green list then
            depends on the unknown account: use the black-box test and tracing), or an
            unsupported scheme.
        InputError: malformed items.
    """
    check_alpha(alpha)
    if statistic not in _STATISTICS:
        raise ConfigError(
            f"The 'statistic' parameter must be one of {_STATISTICS}. Got {statistic!r} instead."
        )
    if getattr(scheme, "payload_mode", False):
        raise ConfigError("The reading test needs a payload-free scheme (payload_bits=0).")
    purpose = primary_purpose(scheme)
    key = scheme.keyring.primary  # type: ignore[attr-defined]
    width = int(scheme.config.context_width)  # type: ignore[attr-defined]
    sip_ctx, sip_pair = key.sip("context"), key.sip(purpose)
    seen: set[int] = set()
    ctx_rows, cand_rows, prob_rows = [], [], []
    n_positions = 0
    for it in items:
        hist, ids = as_token_array(it.history), as_token_array(it.token_ids)
        full = np.concatenate([hist, ids])
        if full.size < width:
            continue
        ctx = context_hashes(sip_ctx, full, width).tolist()  # ctx[m] hashes full[m : m + width]
        for m, c in enumerate(ctx):
            j = m + width - 1 - hist.size  # the text position the window ends at
            if j < 0 or j > ids.size - 2:  # history window, or no next token to predict
                seen.add(c)
                continue
            n_positions += 1
            if dedup and c in seen:
                continue
            seen.add(c)
            ctx_rows.append(c)
            cand_rows.append(np.asarray(it.cand_ids[j], dtype=np.int64))
            prob_rows.append(np.asarray(it.cand_probs[j], dtype=np.float64))
    n_ctx = len(ctx_rows)
    if n_ctx == 0:
        raise InputError(f"No position to score: every text is shorter than context_width + 1 = {width + 1}.")
    cands = np.stack(cand_rows)
    probs = np.stack(prob_rows)
    ctx_arr = np.array(ctx_rows, dtype=np.uint64)
    # a candidate listed twice in a row counts once
    srt = np.sort(cands, axis=1)
    if bool((srt[:, 1:] == srt[:, :-1]).any()):
        for i in range(n_ctx):
            _, first = np.unique(cands[i], return_index=True)
            dup = np.ones(cands.shape[1], dtype=bool)
            dup[first] = False
            probs[i, dup] = 0.0
    vals = pair_prf(sip_pair, np.repeat(ctx_arr, cands.shape[1]), cands.reshape(-1)).reshape(cands.shape)
    is_kgw = isinstance(scheme, KGW)
    if is_kgw:
        gamma = scheme.config.effective_gamma  # type: ignore[attr-defined]
        bit = (vals < np.uint64(scheme.config.green_threshold)).astype(np.float64)  # type: ignore[attr-defined]
    elif isinstance(scheme, Gumbel):
        bit = -np.log1p(-to_uniform(vals))
    else:  # pragma: no cover - primary_purpose already refused it
        raise ConfigError(f"Unsupported scheme {type(scheme).__name__}.")
    live = probs.sum(axis=1) > 0
    probs, bit = probs[live], bit[live]
    m = int(live.sum())
    if m == 0:
        raise InputError("Every candidate was excluded or had zero probability: nothing to score.")
    if statistic == "top1":
        pick = np.argmax(probs, axis=1)
        x = bit[np.arange(m), pick]
        score = float(x.sum())
        if is_kgw:
            expected, log_p = m * gamma, stats.binomial_log_sf(int(score), m, gamma)
        else:
            expected, log_p = float(m), stats.gamma_log_sf(score, m)
        exact = True
    else:
        w = probs / probs.sum(axis=1, keepdims=True)
        score = float((w * bit).sum())
        flat = w[w > 0]
        if is_kgw:
            expected, log_p = m * gamma, _chernoff_bernoulli(flat, score, gamma)
        else:
            expected, log_p = float(m), _chernoff_exponential(flat, score)
        exact = False
    return ReadingResult(
        scheme=scheme.name,
        key_id=key.key_id,
        statistic=statistic,
        exact=exact,
        null=(
            "suspect predictions independent of our key; each context scored at its first occurrence, "
            "where its keyed draws are fresh given everything the suspect saw"
            + ("" if dedup else " (NOT guaranteed: dedup is off)")
        ),
        n_texts=len(items),
        n_positions=n_positions,
        n_contexts=m,
        score=score,
        expected=expected,
        p_value=stats.log_to_p(log_p),
        log10_p_value=log_p / stats.LN10,
        alpha=alpha,
        radioactive=bool(log_p <= math.log(alpha)),
    )

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
top-1 green count is exactly Binomial(n, γ) (Gamma(n, 1) for Gumbel); the weighted statistics
get a Chernoff-type bound built for martingales (a mixture over a fixed λ grid, below). Scoring
a context again later is *not* valid: by then the token that followed it (chosen with the
watermark's bias) is in the prefix, and a model that copies from its context — every transformer
does — would look radioactive (``dedup=False`` exists only to show this in the tests). Contexts in
the history (the prompt, and the windows that straddle prompt and answer) count as already seen,
so pass the prompt ids as ``history``.

Three statistics:

- ``top1`` — per context, the suspect's most likely candidate: green count, exact binomial
  tail (KGW), or summed Exp(1) scores, exact Gamma tail (Gumbel).
- ``mass`` — per context, the suspect's probability mass on green tokens among its candidates
  (renormalised to 1), summed over contexts; the p-value is 1 / the mean, over a λ grid fixed in
  advance, of e^{λt} / Π E e^{λ w X} (each a supermartingale under the null): valid although the
  weights depend on earlier draws through the text, slightly conservative (≤ 1.8 decades against
  the textbook min over λ, which is valid only for fixed weights), and meaningful far below 1e-300
  (reported as log10).
- ``contrast`` — the suspect's mass on green tokens *minus a reference model's* on the same
  texts: per context the weights p_suspect(t) − p_reference(t) (each renormalised over its own
  candidates, merged per token) times the keyed draws, summed; expected 0 under the null, with
  the same mixture bound (signed weights). The reference is any model whose predictions do not
  depend on our key and that reads the same prefix — the suspect's public base model, or our own
  model without the watermark. Its predictions subtract what the suspect shares with it (the
  language, the teacher's own preferences, which are green or red by chance and make the mass
  statistic noisy), leaving what the suspect changed: for a student fine-tuned on our outputs,
  mass moved onto the tokens our watermark chose, green far more often than γ. The closer the
  reference is to the suspect before its training, the more power; any key-independent
  reference keeps the test valid.

Power comes from contexts the student saw in training: feed texts like the ones it was trained
on (the harvest itself is ideal — first occurrences there are exactly what it learned).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from distillguard import stats
from distillguard.errors import ConfigError, InputError
from distillguard.provenance._collect import check_alpha, primary_purpose
from distillguard.watermark._tuples import as_token_array
from distillguard.watermark.base import WatermarkScheme
from distillguard.watermark.gumbel import Gumbel
from distillguard.watermark.kgw import KGW
from distillguard.watermark.prf import context_hashes, pair_prf, to_uniform

__all__ = ["ReadingItem", "ReadingResult", "reading_test"]

_STATISTICS = ("top1", "mass", "contrast")


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
    exact: bool  # True: exact tail of a dominating law; False: the mixture bound over a fixed λ grid
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


# The weights are the suspect's predictions, which depend on the text, and the text depends on the
# keyed draws of *earlier* contexts: the score is a martingale, not a sum with fixed weights. For
# one λ fixed in advance, e^{λS − Σψ(λ w_i)} is then a nonnegative supermartingale of mean ≤ 1, but
# choosing λ after seeing S (the textbook Chernoff bound) is only valid for fixed weights. So the
# p-value is 1 / (mean over a λ grid fixed before any data of those supermartingales): a mixture of
# them is one too, and Ville's inequality makes the bound valid with predictable weights, and at
# every prefix of the texts at once (a p-value curve may be read as the texts accumulate). Cost:
# at most ln K (1.8 decades for this grid) and ~3 % of the exponent (ratio √2 between grid
# points) against the optimised λ.
_LAMBDA_GRID = 2.0 ** np.arange(-20.0, 14.01, 0.5)


def _mixture_log_p(log_terms: list[float]) -> float:
    """ln of min(1, K / Σ_k e^{term_k}): the p-value of a uniform mixture over the λ grid."""
    terms = np.asarray(log_terms, dtype=np.float64)
    log_mix = float(np.logaddexp.reduce(terms)) - math.log(terms.size)
    return min(0.0, -log_mix)


def _chernoff_bernoulli(w: np.ndarray, t: float, g: float) -> float:
    """ln of the mixture bound on P(Σ w_i B_i ≥ t), B_i ~ Bernoulli(g): ψ(λw) = ln(1 − g + g e^{λw})."""
    if t <= g * float(w.sum()):
        return 0.0
    return _mixture_log_p([
        float(lam * t - np.sum(np.logaddexp(math.log1p(-g), math.log(g) + lam * w)))
        for lam in _LAMBDA_GRID
    ])


def _chernoff_exponential(w: np.ndarray, t: float) -> float:
    """ln of the mixture bound on P(Σ w_i E_i ≥ t), E_i ~ Exp(1): ψ(λw) = −ln(1 − λw), finite for λw < 1.

    A grid point where some λ w_i ≥ 1 has an infinite MGF: its supermartingale is 0, and it adds
    nothing to the mixture (it still counts in K, so the bound stays the one fixed in advance).
    """
    if t <= float(w.sum()):
        return 0.0
    w_max = float(w.max())
    return _mixture_log_p([
        float(lam * t + np.sum(np.log1p(-lam * w))) if lam * w_max < 1.0 else -math.inf
        for lam in _LAMBDA_GRID
    ])


def reading_test(
    scheme: WatermarkScheme,
    items: Sequence[ReadingItem],
    *,
    statistic: str = "mass",
    alpha: float = 1e-6,
    dedup: bool = True,
    reference: Sequence[ReadingItem] | None = None,
) -> ReadingResult:
    """Test the suspect's next-token predictions on our watermarked texts (primary key only).

    Args:
        scheme: a payload-free KGW or Gumbel with our key.
        items: the fed texts in order, with the suspect's candidates and probabilities.
        statistic: ``"mass"`` (more powerful than top1), ``"top1"`` (exact tail), or
            ``"contrast"`` (needs ``reference``; the most powerful when the reference is close to
            the suspect's starting point).
        alpha: significance level of ``radioactive``.
        dedup: score each context at its first occurrence only (keep True; see the module
            docstring for why False is invalid).
        reference: a key-independent model's predictions on the same texts, item for item
            (``contrast`` only).

    Raises:
        ConfigError: bad ``alpha`` or ``statistic``, ``contrast`` without a reference (or a
            reference with another statistic), a payload-mode scheme (the green list then
            depends on the unknown account: use the black-box test and tracing), or an
            unsupported scheme.
        InputError: malformed items, or reference items that are not the same texts.
    """
    check_alpha(alpha)
    if statistic not in _STATISTICS:
        raise ConfigError(
            f"The 'statistic' parameter must be one of {_STATISTICS}. Got {statistic!r} instead."
        )
    if (statistic == "contrast") != (reference is not None):
        raise ConfigError(
            "The 'contrast' statistic needs the reference model's predictions (reference=...), and only "
            f"it uses them. Got statistic {statistic!r} "
            f"with{'' if reference is not None else 'out'} a reference."
        )
    if reference is not None:
        _check_same_texts(items, reference)
    if getattr(scheme, "payload_mode", False):
        raise ConfigError("The reading test needs a payload-free scheme (payload_bits=0).")
    primary_purpose(scheme)  # refuses a scheme the test does not support, before any work
    key = scheme.keyring.primary  # type: ignore[attr-defined]
    width = int(scheme.config.context_width)  # type: ignore[attr-defined]
    sip_ctx = key.sip("context")
    seen: set[int] = set()
    ctx_rows, cand_rows, prob_rows = [], [], []
    ref_rows: list[tuple[np.ndarray, np.ndarray]] = []
    n_positions = 0
    for n_item, it in enumerate(items):
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
            if reference is not None:
                ref = reference[n_item]
                ref_rows.append((np.asarray(ref.cand_ids[j], dtype=np.int64),
                                 np.asarray(ref.cand_probs[j], dtype=np.float64)))
    if not ctx_rows:
        raise InputError(f"No position to score: every text is shorter than context_width + 1 = {width + 1}.")
    # a context with no mass on the suspect's (or the reference's) candidates has nothing to score
    live = [n for n, p in enumerate(prob_rows) if p.sum() > 0 and (not ref_rows or ref_rows[n][1].sum() > 0)]
    if not live:
        raise InputError("Every candidate was excluded or had zero probability: nothing to score.")
    ctx_arr = np.array(ctx_rows, dtype=np.uint64)[live]
    is_kgw = isinstance(scheme, KGW)
    mean = float(scheme.config.effective_gamma) if is_kgw else 1.0  # type: ignore[attr-defined]
    m = len(live)
    if statistic == "top1":
        top = np.array([cand_rows[n][int(np.argmax(prob_rows[n]))] for n in live], dtype=np.int64)
        score = float(_keyed_draws(scheme, ctx_arr, top).sum())
        if is_kgw:
            expected, log_p = m * mean, stats.binomial_log_sf(int(score), m, mean)
        else:
            expected, log_p = float(m), stats.gamma_log_sf(score, m)
        exact = True
    else:
        refs = [ref_rows[n] for n in live] if ref_rows else None
        row, tok, w = _net_weights([cand_rows[n] for n in live], [prob_rows[n] for n in live], refs)
        score = float((w * _keyed_draws(scheme, ctx_arr[row], tok)).sum())
        expected = mean * float(w.sum())
        log_p = _chernoff_bernoulli(w, score, mean) if is_kgw else _chernoff_exponential(w, score)
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
            + ("; the reference's predictions independent of our key too" if ref_rows else "")
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


def _net_weights(
    cands: list[np.ndarray],
    probs: list[np.ndarray],
    reference: list[tuple[np.ndarray, np.ndarray]] | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per context (row), each candidate token's weight: the suspect's probability renormalised
    over its candidates, minus the reference's likewise when there is one. A token listed twice
    (in one list or in both) is one keyed draw, so its weights merge into one net weight —
    counted twice, the Chernoff bound would treat one draw as two independent ones. Returns
    ``(row, token, weight)`` for every non-zero weight."""
    lists = [(cands, probs, 1.0)]
    if reference is not None:
        lists.append(([c for c, _ in reference], [p for _, p in reference], -1.0))
    rows, toks, ws = [], [], []
    for cs, ps, sign in lists:
        sizes = [c.size for c in cs]
        rows.append(np.repeat(np.arange(len(cs), dtype=np.int64), sizes))
        toks.append(np.concatenate(cs).astype(np.int64))
        ws.append(sign * np.concatenate([p / p.sum() for p in ps]))
    row, tok, w = np.concatenate(rows), np.concatenate(toks), np.concatenate(ws)
    width = int(tok.max()) + 1
    cells, inverse = np.unique(row * width + tok, return_inverse=True)
    net = np.bincount(inverse, weights=w, minlength=cells.size)
    keep = net != 0.0
    return cells[keep] // width, cells[keep] % width, net[keep]


def _keyed_draws(scheme: WatermarkScheme, ctx: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The keyed draw of each (context hash, token): the green bit (KGW) or Exp(1) score (Gumbel)."""
    key = scheme.keyring.primary  # type: ignore[attr-defined]
    vals = pair_prf(key.sip(primary_purpose(scheme)), ctx, ids)
    if isinstance(scheme, KGW):
        return (vals < np.uint64(scheme.config.green_threshold)).astype(np.float64)
    if isinstance(scheme, Gumbel):
        return -np.log1p(-to_uniform(vals))
    raise ConfigError(f"Unsupported scheme {type(scheme).__name__}.")  # pragma: no cover - refused before


def _check_same_texts(items: Sequence[ReadingItem], reference: Sequence[ReadingItem]) -> None:
    """The reference must have read exactly the suspect's texts (its rows are matched by position)."""
    if len(reference) != len(items):
        raise InputError(f"The reference holds predictions on {len(reference)} texts, the suspect on "
                         f"{len(items)}: they must read the same texts, in the same order.")
    for n, (a, b) in enumerate(zip(items, reference, strict=True)):
        if not (np.array_equal(as_token_array(a.token_ids), as_token_array(b.token_ids))
                and np.array_equal(as_token_array(a.history), as_token_array(b.history))):
            raise InputError(f"Text {n}: the reference read other tokens (or another history) than the "
                             "suspect; feed both the same texts.")

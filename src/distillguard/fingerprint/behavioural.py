"""Black-box behavioural provenance test: is the suspect closer to our model than chance allows?

We send the same probe prompts to the suspect, to our model and to K independent reference
models, and measure for every probe how similar the suspect's answer is to each of the K + 1
others. Under the null hypothesis "the suspect does not descend from our model", our model is
just one more model among the references, so for every probe the number of references that the
suspect resembles *at least as much* as ours, B_j, is uniform on {0, …, K} (exchangeability).
The statistic T = Σ_j B_j is small when the suspect keeps siding with us; its exact null law is
the n-fold convolution of the discrete uniform, so the p-value P(T ≤ t) is exact (ties are
counted against us, which only makes the test conservative).

The same exact rank test also reads the other way round (:func:`predictability_test`): our
model scores, per probe, how predictable it finds the suspect's answer and each reference's
answer (mean token negative log-likelihood under our model). Under the null hypothesis "the
suspect is one more independent model of the references' kind", the number of references whose
answer our model finds at least as predictable is again uniform on {0, …, K}. A student
distilled from our outputs learned our model's distribution, so our model keeps finding its
answers the most predictable — even when they are too poor to resemble any one of our sampled
answers word for word, which is what the similarity view needs.

Assumptions, stated in every result: probes are answered independently; the references are
exchangeable with our model under the null — i.e. unrelated models of comparable quality. A
reference set much weaker than our model breaks that (the suspect will resemble any competent
model more than a weak one); controls (independent students) check it empirically.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np

from distillguard.errors import ConfigError, InputError

__all__ = [
    "BehaviouralResult",
    "behavioural_test",
    "char_ngram_jaccard",
    "embedding_similarity",
    "predictability_test",
    "similarity_table",
]

ASSUMPTIONS = (
    "probes answered independently; reference models exchangeable with ours under the null "
    "(unrelated models of comparable quality); ties counted against the hypothesis of descent"
)

PREDICTABILITY_ASSUMPTIONS = (
    "probes answered independently; reference models exchangeable with the suspect under the null "
    "(independent models of the suspect's kind, asked the same probes with the same decoding settings "
    "and answer budget); an empty answer and ties counted against the hypothesis of descent"
)


@dataclass(frozen=True)
class BehaviouralResult:
    """The verdict of the behavioural test."""

    n_probes: int
    n_references: int
    statistic: int                 # Σ_j B_j, references at least as close as ours
    expected_under_null: float     # n·K/2
    p_value: float
    log10_p_value: float
    alpha: float
    descends: bool
    top_probes: tuple[int, ...]    # probe indices that carried the signal (largest margins)
    assumptions: str = ASSUMPTIONS

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _ngrams(text: str, n: int) -> set[str]:
    norm = re.sub(r"\s+", " ", text.lower()).strip()
    return {norm[i: i + n] for i in range(max(1, len(norm) - n + 1))} if norm else set()


def char_ngram_jaccard(a: str, b: str, n: int = 4) -> float:
    """Jaccard similarity of the character n-gram sets of two texts (1.0 for two empty texts)."""
    x, y = _ngrams(a, n), _ngrams(b, n)
    if not x and not y:
        return 1.0
    return len(x & y) / len(x | y)


def embedding_similarity(
    encode: Callable[[list[str]], np.ndarray], texts: Iterable[str]
) -> Callable[[str, str], float]:
    """Cosine similarity of sentence embeddings, for :func:`similarity_table`.

    Every distinct text of ``texts`` (all answers of the suspect, ours and the references) is
    encoded once, in one call of ``encode`` (a batch encoder such as
    :class:`distillguard.analytics.embed.MiniLM`, injected so this module stays numpy-only).
    Where character n-grams see shared wording, embeddings see shared *content*: a student that
    paraphrases what our model says, in its own words, still lands near our answer.

    Raises:
        InputError: the encoder returned the wrong number of rows, or the returned function is
            asked about a text that was not encoded.
    """
    distinct = list(dict.fromkeys(texts))
    emb = np.asarray(encode(distinct), dtype=np.float64) if distinct else np.zeros((0, 1))
    if emb.ndim != 2 or emb.shape[0] != len(distinct):
        raise InputError(f"The encoder returned an array of shape {emb.shape} for {len(distinct)} texts; "
                         "expected one row per text.")
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    emb = np.divide(emb, norms, out=np.zeros_like(emb), where=norms > 0)  # an empty text: similarity 0
    row = {t: i for i, t in enumerate(distinct)}

    def cosine(a: str, b: str) -> float:
        try:
            return float(emb[row[a]] @ emb[row[b]])
        except KeyError as exc:
            raise InputError(f"embedding_similarity was not given the text {str(exc)[:60]}… "
                             "to encode.") from None

    return cosine


def similarity_table(
    suspect: Sequence[str],
    ours: Sequence[str],
    references: Sequence[Sequence[str]],
    similarity: Callable[[str, str], float] = char_ngram_jaccard,
) -> tuple[np.ndarray, np.ndarray]:
    """Return (sim_ours (n,), sim_refs (n, K)): the suspect's similarity per probe to each model.

    Raises:
        InputError: the answer lists do not all have one answer per probe.
    """
    n = len(suspect)
    if len(ours) != n or any(len(r) != n for r in references):
        raise InputError("Every model must answer every probe: got answer lists of lengths "
                         f"{[n, len(ours), *[len(r) for r in references]]}.")
    sim_ours = np.array([similarity(s, o) for s, o in zip(suspect, ours, strict=True)])
    sim_refs = np.array([[similarity(s, ref[j]) for ref in references]
                         for j, s in enumerate(suspect)]).reshape(n, len(references))
    return sim_ours, sim_refs


def _uniform_sum_log_cdf(t: int, n: int, k: int) -> float:
    """ln P(Σ_{j<n} U_j ≤ t) for U_j iid uniform on {0..k}, by exact convolution.

    Probabilities are kept as counts scaled per step so nothing underflows for n up to
    thousands; the result is exact up to floating rounding of positive sums.
    """
    dist = np.array([1.0])
    log_scale = 0.0
    step = np.ones(k + 1) / (k + 1)
    for _ in range(n):
        dist = np.convolve(dist, step)[: t + 1]   # only mass ≤ t matters
        s = dist.sum()
        if s == 0.0:
            return -math.inf
        dist /= s
        log_scale += math.log(s)
    return log_scale  # dist was renormalised each step; its total (≤ t) mass is exp(log_scale)


def behavioural_test(
    sim_ours: np.ndarray,
    sim_refs: np.ndarray,
    *,
    alpha: float = 1e-3,
    top: int = 10,
) -> BehaviouralResult:
    """Run the exact rank test on per-probe similarities (see the module docstring).

    Args:
        sim_ours: (n,) similarity of the suspect's answer to our model's, per probe.
        sim_refs: (n, K) similarity to each reference model's answer.
        alpha: significance level of the verdict.
        top: how many signal-carrying probes to report.

    Raises:
        ConfigError: alpha outside (0, 1).
        InputError: shapes disagree, no references, or no probes.
    """
    if not 0.0 < alpha < 1.0:
        raise ConfigError(f"The 'alpha' parameter must be a float in (0, 1). Got {alpha!r} instead.")
    sim_ours = np.asarray(sim_ours, dtype=float)
    sim_refs = np.asarray(sim_refs, dtype=float)
    if sim_refs.ndim != 2 or sim_ours.ndim != 1 or sim_refs.shape[0] != sim_ours.shape[0]:
        raise InputError(f"Expected sim_ours (n,) and sim_refs (n, K). Got {sim_ours.shape} and "
                         f"{sim_refs.shape}.")
    n, k = sim_refs.shape
    if n == 0 or k == 0:
        raise InputError(f"Need at least one probe and one reference model. Got n={n}, K={k}.")
    beats = (sim_refs >= sim_ours[:, None]).sum(axis=1)
    t = int(beats.sum())
    log_p = _uniform_sum_log_cdf(t, n, k)
    margin = sim_ours - sim_refs.max(axis=1)
    top_idx = tuple(int(i) for i in np.argsort(-margin)[: min(top, n)] if margin[i] > 0)
    log10_p = log_p / math.log(10)
    return BehaviouralResult(
        n_probes=n, n_references=k, statistic=t, expected_under_null=n * k / 2,
        p_value=math.exp(log_p) if log_p > -745 else 0.0, log10_p_value=log10_p, alpha=alpha,
        descends=log10_p <= math.log10(alpha), top_probes=top_idx,
    )


def predictability_test(
    suspect_nll: np.ndarray | Sequence[float],
    reference_nll: np.ndarray | Sequence[Sequence[float]],
    *,
    alpha: float = 1e-3,
    top: int = 10,
) -> BehaviouralResult:
    """Does our model find the suspect's answers more predictable than the references'?

    The exact rank test of :func:`behavioural_test` with the roles turned (module docstring):
    per probe, B_j counts the references whose answer our model finds at least as predictable
    as the suspect's. ``top_probes`` are the probes where the suspect's answer was the most
    predictable by the largest margin.

    Args:
        suspect_nll: (n,) mean per-token negative log-likelihood, under our model, of the
            suspect's answer to each probe; NaN for an empty answer.
        reference_nll: (n, K) the same for each reference model's answer.
        alpha: significance level of the verdict.
        top: how many signal-carrying probes to report.

    Raises:
        ConfigError: alpha outside (0, 1).
        InputError: shapes disagree, no references, or no probes.
    """
    mine = np.asarray(suspect_nll, dtype=float)
    refs = np.asarray(reference_nll, dtype=float)
    # An empty answer gives our model nothing to predict. Counted against descent both ways: the
    # suspect's empty answer is the least predictable, a reference's empty answer the most.
    mine = np.where(np.isnan(mine), np.inf, mine)
    refs = np.where(np.isnan(refs), -np.inf, refs)
    result = behavioural_test(-mine, -refs, alpha=alpha, top=top)
    return replace(result, assumptions=PREDICTABILITY_ASSUMPTIONS)

"""What canary mode costs the user it is served to, measured on the fingerprint lab's answers.

Both kinds of canary are measured on the extraction account's served SmolLM2 answers: how many
answers each touches, how much it changes them, and how much less likely SmolLM2 itself finds
the changed text (perplexity given the prompt) — a wrongly flagged user pays exactly this.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from distillguard.fingerprint.behavioural import char_ngram_jaccard
from distillguard.model.likelihood import token_ids, token_nll

if TYPE_CHECKING:
    from distillguard.fingerprint.canaries import CanarySet
    from distillguard.gateway.canary import CanaryService
    from distillguard.lab.fingerprint_lab import FingerprintLabConfig, LabHarvests

__all__ = ["QualityCost", "answer_nll", "canary_exposures", "quality_cost", "token_ids"]


@dataclass(frozen=True)
class QualityCost:
    """What canary mode costs the user it is served to (measured on served SmolLM2 answers).

    Alias canaries (one sentence appended to answers that touch a canary concept):

    Attributes:
        touched_harvest: share of the extraction account's answers that got a canary sentence.
        touched_traffic: share of ordinary ShareGPT first turns (prompt + ChatGPT answer as a
            stand-in for ours) an enrolled account would see touched, averaged over accounts.
        distinct_served: of the distiller's canaries, how many were served at least once.
        added_tokens: mean tokens added to a touched answer.
        added_fraction: mean added tokens / answer tokens before the sentence, over touched answers.
        similarity: mean character-4-gram Jaccard of served vs unsentenced touched answer.
        nll_original, nll_served: SmolLM2's mean per-token negative log-likelihood of the answer
            without and with the sentence (touched answers scored, given the prompt).
        nll_sentence: the same for the canary sentence's own tokens (how odd it reads).
        n_scored: touched answers scored for likelihood.

    Style canaries (every answer respelled to the account's keyed choices):

    Attributes:
        style_touched: share of the extraction account's answers the style canaries changed.
        style_words: mean words respelled, contracted or expanded per changed answer.
        nll_unstyled, nll_styled: SmolLM2's mean per-token negative log-likelihood of changed
            answers before and after the rewrite.
        n_styled_scored: changed answers scored for likelihood.
    """

    touched_harvest: float
    touched_traffic: float
    distinct_served: int
    added_tokens: float
    added_fraction: float
    similarity: float
    nll_original: float
    nll_served: float
    nll_sentence: float
    n_scored: int
    style_touched: float
    style_words: float
    nll_unstyled: float
    nll_styled: float
    n_styled_scored: int

    @property
    def perplexity_ratio(self) -> float:
        """Perplexity with the canary sentence over that without (1.0 = no cost)."""
        return math.exp(self.nll_served - self.nll_original)

    @property
    def style_perplexity_ratio(self) -> float:
        """Perplexity of the restyled answers over that of the originals (1.0 = no cost)."""
        return math.exp(self.nll_styled - self.nll_unstyled)


def answer_nll(generator: Any, head: list[int], text: str) -> np.ndarray:
    """The generator's per-token negative log-likelihood of ``text`` after the prompt ``head``."""
    return token_nll(generator.model, [(head, token_ids(generator.tokenizer, text))])[0]


def quality_cost(
    generator: Any, harvests: LabHarvests, config: FingerprintLabConfig, service: CanaryService
) -> QualityCost:
    """Measure canary mode's cost on the served answers (see :class:`QualityCost`).

    ``service`` is the canary service that served them (every lab account enrolled).
    """
    import torch

    from distillguard.data.corpora import iter_sharegpt

    cfg, tok, hv = config, generator.tokenizer, harvests
    n = len(hv.records)
    touched = [i for i in range(n) if hv.served[i] != hv.styled[i]]
    restyled = [i for i in range(n) if hv.styled[i] != hv.records[i].text]
    reg = hv.registry
    served_aliases = {a for a, k in canary_exposures(reg, cfg.distiller_id, hv.served).items() if k}
    traffic = []
    for conv in iter_sharegpt(limit=cfg.traffic_conversations):
        pair = next(conv.pairs(), None)
        if pair is not None:
            traffic.append(pair)
    hits = [sum(service.mark(a, p, t) is not None for p, t in traffic) / max(1, len(traffic))
            for a in cfg.account_ids]
    added, frac, sims = [], [], []
    for i in touched:
        orig, new = hv.styled[i], hv.served[i]
        n_orig, n_new = len(token_ids(tok, orig)), len(token_ids(tok, new))
        added.append(n_new - n_orig)
        frac.append((n_new - n_orig) / max(1, n_orig))
        sims.append(char_ngram_jaccard(orig, new))
    words = []
    for i in restyled:
        rw = service.rewriter(cfg.distiller_id)
        if rw is not None:  # always: an answer was restyled, so the account is enrolled
            rw.feed(hv.records[i].text)
            rw.finish()
            words.append(rw.changed)

    def nll(head: list[int], text: str) -> np.ndarray:
        return answer_nll(generator, head, text)

    nll_o, nll_s, nll_c, nll_u, nll_y = [], [], [], [], []
    with torch.inference_mode():
        for i in touched[: cfg.quality_answers]:
            head = list(hv.records[i].prompt_ids)
            before, after = nll(head, hv.styled[i].rstrip()), nll(head, hv.served[i])
            nll_o.append(float(before.mean()))
            nll_s.append(float(after.mean()))
            nll_c.append(float(after[len(token_ids(tok, hv.styled[i].rstrip())):].mean()))
        for i in restyled[: cfg.quality_answers]:
            head = list(hv.records[i].prompt_ids)
            nll_u.append(float(nll(head, hv.records[i].text).mean()))
            nll_y.append(float(nll(head, hv.styled[i]).mean()))

    def mean(xs: Sequence[float], empty: float = 0.0) -> float:
        return float(np.mean(xs)) if len(xs) else empty

    return QualityCost(
        touched_harvest=len(touched) / max(1, n),
        touched_traffic=float(np.mean(hits)),
        distinct_served=len(served_aliases),
        added_tokens=mean(added),
        added_fraction=mean(frac),
        similarity=mean(sims, 1.0),
        nll_original=mean(nll_o),
        nll_served=mean(nll_s),
        nll_sentence=mean(nll_c),
        n_scored=len(nll_o),
        style_touched=len(restyled) / max(1, n),
        style_words=mean(words),
        nll_unstyled=mean(nll_u),
        nll_styled=mean(nll_y),
        n_styled_scored=len(nll_u),
    )


def canary_exposures(registry: CanarySet, account: str, served: Sequence[str]) -> dict[str, int]:
    """The account's alias → how many served answers carried its canary sentence."""
    return {c.alias: sum(c.sentence() in t for t in served) for c in registry.for_account(account)}

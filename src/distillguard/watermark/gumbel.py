"""Exponential-minimum ("Gumbel") watermark (Aaronson, 2022): distortion-free sampling.

**Generation.** For each candidate token t the PRF of (context, t) gives a uniform u_t; the
next token is argmax_t u_t^{1/p_t}, where p is ``softmax(scores)`` (scores arrive after
temperature / top-p, so filtered tokens have p = 0). Over the randomness of the key this picks
t with probability exactly p_t — the text distribution is unchanged — but the chosen token
tends to have a large u. ``process`` returns scores that are −inf everywhere except the chosen
token (0.0), so any downstream sampler emits it. Candidates are the ``top_k`` highest scores
(0 = all); outside them p is treated as 0, i.e. a top-k filter.

**Detection.** S = Σ −ln(1 − u) over scored, deduplicated tuples. Under the null each term is
exactly Exp(1) (up to the 2^-53 resolution of u), so S ~ Gamma(n, 1) and the p-value is the
exact Gamma tail (:func:`distillguard.stats.gamma_log_sf`).

**Payload** (``payload_bits > 0``): each color c ∈ [0, r) has its own sub-key, the context's
chunk i selects color m_i, and generation uses u^{(m_i)}. Detection does not need m: per tuple
W = −ln(1 − U_max^r), U_max the largest of the r colors' uniforms, is exactly Exp(1) under the
null (U_max^r is uniform), so Σ W ~ Gamma(n, 1) again. Decoding takes, per chunk, the color
with the largest summed −ln(1 − u^{(c)}). Detection costs r PRF calls per tuple.

**Trade-offs.**

- *Quality*: none lost on average — each step samples exactly from the model's distribution.
  But generation is *deterministic given the context and key*: the same prompt yields the same
  answer every time, and low-entropy loops repeat. A per-request nonce mixed into the PRF would
  restore diversity but the detector would then need the nonce (it is not in the text), so we
  do not; vary the context (system prompt, sampling of the first tokens) instead.
- *Robustness*: like KGW, an edit breaks ``context_width`` + 1 tuples; the score of each
  surviving tuple is unaffected.
- *Radioactivity*: for one key the sampler is deterministic per context, so a student trained
  on its outputs learns those very token choices, and they carry the high uniforms. In the CPU
  lab (docs/benchmarks.md, lab-distillation-gumbel) this made it *more* radioactive than KGW:
  black-box p 1e-15.1 from 100 suspect queries vs 1e-9.0, reading test 1e-146.9 vs 1e-87.4.
- *Stealing*: there is no fixed green list, but for one key the output is deterministic per
  context and favours tokens with a high uniform, so per-context frequencies do leak: the
  stealing attacker of :mod:`distillguard.watermark.stealing` labels high-u tuples right 65% of
  the time from 3.8k harvested tokens (docs/benchmarks.md, watermark-stealing). Determinism also
  lets an attacker spot watermarked outputs by resampling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from distillguard import stats
from distillguard.watermark._common import KeyedScheme, check_int, check_keyed_fields
from distillguard.watermark._tuples import (
    ScoredTuples,
    as_token_matrix,
    generation_contexts,
    score_tuples,
)
from distillguard.watermark.base import Detection, schemes
from distillguard.watermark.keys import SecretKey
from distillguard.watermark.localize import find_spans
from distillguard.watermark.payload import (
    PayloadFreeTest,
    TraceEvidence,
    best_two,
    candidate_ids,
    decode_groups,
)
from distillguard.watermark.prf import pair_prf, to_uniform

__all__ = ["Gumbel", "GumbelConfig"]


@dataclass(frozen=True)
class GumbelConfig:
    """Parameters of :class:`Gumbel` (validated when built).

    Attributes:
        context_width: tokens of context hashed with the candidate, ≥ 1.
        top_k: sample among the k highest-scoring candidates (0 = all).
        min_scored: fewer scored tuples than this → ``enough_tokens=False``, p = 1.
        payload_bits: account-id bits to embed (0 = no payload, else 32–64).
        checksum_bits: keyed checksum bits appended to the id (0–32).
        chunk_bits: bits per chunk b; r = 2^b colors (detection cost grows with r).
        anchor_chunks: payload-free anchor slots next to the L payload chunks (payload mode
            only; see :mod:`~distillguard.watermark.payload`). Off by default here: Gumbel
            students of colluding accounts kept a payload-free signal without them
            (docs/benchmarks.md, lab-tracing).
    """

    context_width: int = 2
    top_k: int = 2048
    min_scored: int = 16
    payload_bits: int = 0
    checksum_bits: int = 16
    chunk_bits: int = 2
    anchor_chunks: int = 0

    def __post_init__(self) -> None:
        name = type(self).__name__
        check_int(name, "top_k", self.top_k, 0)
        check_keyed_fields(name, self, max_chunk_bits=6)  # detection costs 2^chunk_bits PRF calls


def _purpose(color: int | None) -> str:
    return "gumbel/u" if color is None else f"gumbel/u{color}"


@schemes.register("gumbel")
class Gumbel(KeyedScheme):
    """Exponential-minimum sampling watermark; see the module docstring."""

    name = "gumbel"
    config_class = GumbelConfig
    config: GumbelConfig

    @property
    def scored_purpose(self) -> str:
        """The PRF purpose of the values the detector scores (what provenance audits collect)."""
        return _purpose(0 if self.payload_mode else None)

    def keyed_uniforms(self, contexts: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """The keyed uniform u of each (context, token) pair (needs the key; no payload).

        ``contexts`` is (n, context_width) token ids, ``tokens`` (n,): ground truth for
        experiments such as the watermark-stealing bench (a token with large u is "green").

        Raises:
            ConfigError: a payload-mode config.
            InputError: shapes that do not match the context width.
        """
        return np.asarray(to_uniform(self._pair_values(_purpose(None), contexts, tokens)))

    def process(
        self, input_ids: np.ndarray, scores: np.ndarray, payloads: Sequence[int | None]
    ) -> np.ndarray:
        """Return scores that are −inf except 0.0 at the keyed choice of each row.

        Rows whose history is shorter than ``context_width``, or whose scores are all −inf, are
        returned unchanged (ordinary sampling).

        Raises:
            InputError: shapes or dtypes do not match the contract.
            ConfigError: a payload is given but ``payload_bits`` is 0.
        """
        arr, plist = self._check_batch(scores, payloads)
        ids = as_token_matrix(input_ids, arr.shape[0])
        cfg = self.config
        if ids.shape[1] < cfg.context_width or arr.shape[0] == 0:
            return arr.copy()
        key = self.keyring.primary
        ctx = generation_contexts(key, ids, cfg.context_width)
        cand = self._candidates(arr, cfg.top_k)
        logits = np.take_along_axis(arr, cand, axis=1).astype(np.float64)
        colors: list[int | None] = [None] * len(plist)
        if self.payload_mode:
            codec = self.codec(key)
            slot = codec.slots(ctx)
            colors = [int(codec.slot_values(p)[slot[b]]) for b, p in enumerate(plist)]
        out = np.full_like(arr, -np.inf)
        for b in range(arr.shape[0]):
            row = logits[b]
            finite = np.isfinite(row)
            if not finite.any():
                out[b] = arr[b]  # nothing to sample from; leave the row to the caller
                continue
            prob = np.zeros_like(row)
            z = row[finite] - row[finite].max()
            prob[finite] = np.exp(z) / np.exp(z).sum()
            u = to_uniform(pair_prf(key.sip(_purpose(colors[b])), ctx[b : b + 1], cand[b]))
            with np.errstate(divide="ignore"):
                key_score = np.where(prob > 0, np.log(u) / np.where(prob > 0, prob, 1.0), -np.inf)
            out[b, cand[b, int(np.argmax(key_score))]] = 0.0
        return out

    def _uniforms(self, key: SecretKey, tup: ScoredTuples, r: int) -> np.ndarray:
        cols = [to_uniform(tup.values)]
        cols += [to_uniform(pair_prf(key.sip(_purpose(c)), tup.ctx, tup.tokens)) for c in range(1, r)]
        return np.stack(cols, axis=1)

    def _marks(self, key: SecretKey, tup: ScoredTuples) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(w, uu, slot)``: each tuple's score w, exactly Exp(1) under the null; its r keyed
        uniforms (payload mode; one column otherwise); its slot (payload mode; zeros otherwise).

        A payload chunk's tuple scores the largest of its r uniforms (U_max^r is uniform under
        the null); an anchor slot's tuple scores the uniform of the key's colour."""
        if not self.payload_mode:
            uu = to_uniform(tup.values)[:, None]
            return -np.log1p(-uu[:, 0]), uu, np.zeros(tup.n, dtype=np.int64)
        codec = self.codec(key)
        r, L = codec.n_colors, codec.n_chunks
        uu = self._uniforms(key, tup, r) if tup.n else np.zeros((0, r))
        slot = codec.slots(tup.ctx)
        w = -np.log(-np.expm1(r * np.log(uu.max(axis=1)))) if tup.n else np.zeros(0)
        at = np.flatnonzero(slot >= L)
        if at.size:
            colour = codec.anchor_colours[slot[at] - L]
            w[at] = -np.log1p(-uu[at, colour])
        return w, uu, slot

    def payload_free_test(self, key: SecretKey, tup: ScoredTuples) -> PayloadFreeTest:
        """S = Σ w over the (distinct) scored tuples, exactly Gamma(n, 1) under the null; the
        anchor slots' part on its own as well (see :meth:`_marks`)."""
        w, _, slot = self._marks(key, tup)
        anchor = w[slot >= self.codec(key).n_chunks] if self.payload_mode else np.zeros(0)
        s, a = float(w.sum()), float(anchor.sum())
        return PayloadFreeTest(
            score=s,
            expected=float(tup.n),
            log_p=stats.gamma_log_sf(s, tup.n) if tup.n else 0.0,
            test="Gamma(n, 1) tail of summed Exp(1) scores",
            n_anchor=int(anchor.size),
            anchor_score=a,
            anchor_log_p=stats.gamma_log_sf(a, anchor.size) if anchor.size else 0.0,
        )

    def _detect_key(
        self,
        key: SecretKey,
        ids: np.ndarray,
        *,
        alpha: float,
        dedup: bool,
        decode_payload: bool,
        localize: bool,
    ) -> Detection:
        cfg = self.config
        tup = score_tuples(key, ids, cfg.context_width, self.scored_purpose, dedup=dedup)
        n = tup.n
        details: dict[str, object] = {"dedup": dedup, "context_width": cfg.context_width, "test": "gamma"}
        if n < cfg.min_scored:
            return self._result(key, tup.n_tokens, n, 0.0, 0.0, alpha, details=details)
        w, uu, slot = self._marks(key, tup)
        s = float(w.sum())
        log_p = stats.gamma_log_sf(s, n)
        spans: tuple = ()
        if localize:
            spans, loc = find_spans(w, tup.positions, kind="gamma", alpha=alpha)
            details.update(loc)
        result = self._result(key, tup.n_tokens, n, s, log_p, alpha, spans=spans, details=details)
        if self.payload_mode and decode_payload and result.enough_tokens:
            codec = self.codec(key)
            evidence = self._group_scores(-np.log1p(-uu), slot, codec.n_slots)[: codec.n_chunks]
            est, more = decode_groups(codec, evidence, log_p, result.watermarked)
            details.update(more)
            result = self._result(
                key, tup.n_tokens, n, s, log_p, alpha, payload=est, spans=spans, details=details
            )
        return result

    @staticmethod
    def _group_scores(e: np.ndarray, chunk: np.ndarray, n_chunks: int) -> np.ndarray:
        return np.stack(
            [np.bincount(chunk, weights=e[:, c], minlength=n_chunks) for c in range(e.shape[1])], axis=1
        )

    def _trace_key(
        self, key: SecretKey, ids: np.ndarray, candidates: Sequence[int | str], dedup: bool
    ) -> TraceEvidence:
        """Candidate a's score Σ −ln(1 − u^{(m_a)}) over the payload chunks' tuples is exactly
        Gamma(n, 1) under the null; ``separated`` is an exact sign test counting the tuples (in
        chunks where best and runner-up differ) whose best-candidate uniform wins."""
        cfg = self.config
        codec = self.codec(key)
        msgs = np.stack([codec.encode(c) for c in candidate_ids(key, codec, candidates)])
        tup = score_tuples(key, ids, cfg.context_width, _purpose(0), dedup=dedup)
        _, uu, slot = self._marks(key, tup)
        L = codec.n_chunks
        keep = np.flatnonzero(slot < L)  # anchors are the same for every account: they name nobody
        uu, chunk = uu[keep], slot[keep]
        g = self._group_scores(-np.log1p(-uu), chunk, L)
        per_cand = g[np.arange(L), msgs].sum(axis=1)
        i, j = best_two(per_cand)
        log_p = stats.gamma_log_sf(float(per_cand[i]), keep.size) if keep.size else 0.0
        sep_log_p = 0.0
        if j is not None:
            a_col, b_col = msgs[i][chunk], msgs[j][chunk]
            rows = np.flatnonzero(a_col != b_col)
            wins = int((uu[rows, a_col[rows]] > uu[rows, b_col[rows]]).sum())
            sep_log_p = stats.binomial_log_sf(wins, rows.size, 0.5) if rows.size else 0.0
        return TraceEvidence(i, j, keep.size, float(per_cand[i]), log_p, sep_log_p)

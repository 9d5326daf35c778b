"""KGW green-list watermark (Kirchenbauer et al., 2023), with an optional account payload.

**Generation.** For each row, the keyed hash of the last ``context_width`` tokens and the
candidate token id feed SipHash-2-4; a token is *green* when the 64-bit output is below
γ·2^64. ``process`` adds ``delta`` to the logits of green tokens among the ``bias_top_k``
highest-scoring candidates (0 = the whole vocabulary). Tokens outside the top-k keep their
score: that costs a little power (rarely sampled tokens are never pushed) but never touches the
null, which depends only on the key and the text.

**Detection.** Count greens among the scored (context, token) tuples (deduplicated by default;
the first ``context_width`` tokens have no context). Under the null (text written without the
key) each distinct tuple is green independently with probability γ, so the p-value is the
exact binomial tail (:func:`distillguard.stats.binomial_log_sf`).

**Payload** (``payload_bits > 0``, see :mod:`distillguard.watermark.payload`): the context
picks a chunk i, each token gets a color in [0, r) from the PRF, and green means "color equals
chunk i's value" — so γ = 1/r in payload mode (``gamma`` is ignored). The test that does not
need to know the payload is T = Σ_groups max_color count, with its exact null
(:mod:`distillguard.watermark.maxstat`); groups are (block of ``payload_block`` scored tuples,
chunk) pairs, which bounds the exact computation's cost on long texts. ``anchor_chunks`` more
slots carry a colour set by the key alone (the same for every account): their matches add one
binomial group per block, and :meth:`KGW.payload_free_test` also reports them on their own, the
part of the signal that survives a student of several accounts' outputs.

**Trade-offs.**

- *Quality*: the bias distorts the distribution (more so at large δ, and on low-entropy steps
  where a green token must be forced); δ≈2 is usually invisible in fluency metrics.
- *Robustness*: an edit or paraphrase changes the scored token and the ``context_width`` tuples
  after it; with small width most tuples survive light editing.
- *Radioactivity*: a student fine-tuned on watermarked text learns the green bias of frequent
  contexts, so the bias shows in the student's outputs (see ``provenance``); this is the
  scheme's main strength for distillation audits.
- *Stealing*: green lists can be estimated by counting (context, token) frequencies across many
  outputs; a wider context multiplies the contexts to learn (harder to steal) but makes each
  edit destroy more tuples (less robust). Default width 2 is a middle ground.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from distillguard import stats
from distillguard.watermark._common import KeyedScheme, check_int, check_keyed_fields, check_real
from distillguard.watermark._tuples import ScoredTuples, as_token_matrix, generation_contexts, score_tuples
from distillguard.watermark.base import Detection, schemes
from distillguard.watermark.keys import SecretKey
from distillguard.watermark.localize import find_spans
from distillguard.watermark.maxstat import binomial_log_pmf, max_count_log_pmf, sum_log_sf
from distillguard.watermark.payload import (
    PayloadCodec,
    PayloadFreeTest,
    TraceEvidence,
    best_two,
    candidate_ids,
    decode_groups,
)
from distillguard.watermark.prf import pair_prf, top_bits

__all__ = ["KGW", "KGWConfig"]

_PURPOSE = "kgw/green"


@dataclass(frozen=True)
class KGWConfig:
    """Parameters of :class:`KGW` (validated when built).

    Attributes:
        gamma: green fraction γ in (0, 1) (no-payload mode).
        delta: logit bias added to green tokens, in (0, 50].
        context_width: tokens of context hashed with the candidate, ≥ 1.
        bias_top_k: bias only the k highest-scoring candidates per step (0 = all).
        min_scored: fewer scored tuples than this → ``enough_tokens=False``, p = 1.
        payload_bits: account-id bits to embed (0 = no payload, else 32–64).
        checksum_bits: keyed checksum bits appended to the id (0–32).
        chunk_bits: bits per chunk b; r = 2^b colors, γ = 1/r in payload mode.
        payload_block: scored tuples per block of the payload statistic.
        anchor_chunks: payload-free anchor slots next to the L payload chunks (payload mode
            only; see :mod:`~distillguard.watermark.payload`). With the default 8 next to
            the 24 chunks of a 32-bit id and 16-bit checksum, a quarter of the tuples carry
            a key-only colour: a student of several colluding accounts' outputs learns those
            even where the accounts' payloads disagree and cancel (docs/benchmarks.md,
            lab-tracing-anchors).
    """

    gamma: float = 0.25
    delta: float = 2.0
    context_width: int = 2
    bias_top_k: int = 2048
    min_scored: int = 16
    payload_bits: int = 0
    checksum_bits: int = 16
    chunk_bits: int = 2
    payload_block: int = 4096
    anchor_chunks: int = 8

    def __post_init__(self) -> None:
        name = type(self).__name__
        check_real(name, "gamma", self.gamma, 0.0, 1.0)
        check_real(name, "delta", self.delta, 0.0, 50.0, open_hi=False)
        check_int(name, "bias_top_k", self.bias_top_k, 0)
        check_keyed_fields(name, self, max_chunk_bits=8)
        check_int(name, "payload_block", self.payload_block, 64, 65536)

    @property
    def effective_gamma(self) -> float:
        """The exact green probability the detector uses (1/r with a payload)."""
        if self.payload_bits:
            return 1.0 / (1 << self.chunk_bits)
        return _threshold(self.gamma) / 2.0**64

    @property
    def green_threshold(self) -> int:
        """Without a payload, a pair is green when its keyed uint64 PRF value is below this."""
        return _threshold(self.gamma)


def _threshold(gamma: float) -> int:
    return min((1 << 64) - 1, round(gamma * 2.0**64))


@schemes.register("kgw")
class KGW(KeyedScheme):
    """Green-list watermark; see the module docstring for the maths and trade-offs."""

    before_top_p = True  # the bias may lift a green token into the nucleus

    name = "kgw"
    config_class = KGWConfig
    config: KGWConfig

    @property
    def scored_purpose(self) -> str:
        """The PRF purpose of the values the detector scores (what provenance audits collect)."""
        return _PURPOSE

    def green_mask(self, contexts: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """Whether each (context, token) pair is on the green list (needs the key; no payload).

        ``contexts`` is (n, context_width) token ids, ``tokens`` (n,): ground truth for
        experiments such as the watermark-stealing bench.

        Raises:
            ConfigError: a payload-mode config.
            InputError: shapes that do not match the context width.
        """
        vals = self._pair_values(_PURPOSE, contexts, tokens)
        return np.asarray(vals < np.uint64(self.config.green_threshold))

    def slot_counts(self, codec: PayloadCodec, tup: ScoredTuples) -> np.ndarray:
        """Tuples per (block of ``payload_block`` tuples, slot, colour): (blocks, L + A, r)."""
        r, n_slots = codec.n_colors, codec.n_slots
        block = np.arange(tup.n) // self.config.payload_block
        n_blocks = int(block[-1]) + 1 if tup.n else 1
        cell = (block * n_slots + codec.slots(tup.ctx)) * r + top_bits(tup.values, self.config.chunk_bits)
        return np.bincount(cell, minlength=n_blocks * n_slots * r).reshape(n_blocks, n_slots, r)

    def payload_free_test(self, key: SecretKey, tup: ScoredTuples) -> PayloadFreeTest:
        """Payload mode: T = Σ over (block, payload chunk) groups of the largest colour count,
        plus the tuples of anchor slots that have the key's colour, with its exact null.

        The tuples must be distinct (de-duplicated) for the p-value to be exact.
        """
        codec = self.codec(key)
        return self._payload_free_test(codec, self.slot_counts(codec, tup))

    @staticmethod
    def _payload_free_test(codec: PayloadCodec, counts: np.ndarray) -> PayloadFreeTest:
        r, L = codec.n_colors, codec.n_chunks
        payload = counts[:, :L, :].reshape(-1, r)
        anchor = counts[:, L:, :]
        hits = anchor[:, np.arange(len(codec.anchors)), codec.anchor_colours].sum(axis=1)
        n_anchor = anchor.sum(axis=(1, 2))
        groups = [max_count_log_pmf(int(m), r) for m in payload.sum(axis=1)]
        groups += [binomial_log_pmf(int(m), 1.0 / r) for m in n_anchor if m]
        t_obs = int(payload.max(axis=1).sum() + hits.sum())
        expected = float(sum(lo + float(np.dot(np.exp(lp), np.arange(lp.size))) for lo, lp in groups))
        k, m = int(hits.sum()), int(n_anchor.sum())
        return PayloadFreeTest(
            score=float(t_obs),
            expected=expected,
            log_p=sum_log_sf(groups, t_obs),
            test="exact sum of max colour counts (payload chunks) and key-colour counts (anchor slots)",
            n_groups=len(groups),
            n_anchor=m,
            anchor_score=float(k),
            anchor_log_p=stats.binomial_log_sf(k, m, 1.0 / r) if m else 0.0,
        )

    def process(
        self, input_ids: np.ndarray, scores: np.ndarray, payloads: Sequence[int | None]
    ) -> np.ndarray:
        """Add ``delta`` to green candidates' scores; returns a new array of the same shape/dtype.

        Rows whose history is shorter than ``context_width`` are returned unchanged.

        Raises:
            InputError: shapes or dtypes do not match the contract.
            ConfigError: a payload is given but ``payload_bits`` is 0.
        """
        arr, plist = self._check_batch(scores, payloads)
        ids = as_token_matrix(input_ids, arr.shape[0])
        out = arr.copy()
        cfg = self.config
        if ids.shape[1] < cfg.context_width or arr.shape[0] == 0:
            return out
        key = self.keyring.primary
        ctx = generation_contexts(key, ids, cfg.context_width)
        cand = self._candidates(arr, cfg.bias_top_k)
        vals = pair_prf(key.sip(_PURPOSE), np.repeat(ctx, cand.shape[1]), cand.reshape(-1)).reshape(
            cand.shape
        )
        if self.payload_mode:
            codec = self.codec(key)
            msgs = np.stack([codec.slot_values(p) for p in plist])
            target = msgs[np.arange(len(plist)), codec.slots(ctx)]
            green = top_bits(vals, cfg.chunk_bits) == target[:, None]
        else:
            green = vals < np.uint64(_threshold(cfg.gamma))
        rows = np.broadcast_to(np.arange(arr.shape[0])[:, None], cand.shape)
        out[rows[green], cand[green]] += out.dtype.type(cfg.delta)
        return out

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
        tup = score_tuples(key, ids, cfg.context_width, _PURPOSE, dedup=dedup)
        n = tup.n
        details: dict[str, object] = {"dedup": dedup, "context_width": cfg.context_width}
        if n < cfg.min_scored:
            return self._result(key, tup.n_tokens, n, 0.0, 0.0, alpha, details=details)
        if not self.payload_mode:
            green = tup.values < np.uint64(_threshold(cfg.gamma))
            k = int(green.sum())
            log_p = stats.binomial_log_sf(k, n, cfg.effective_gamma)
            details.update(test="binomial", gamma=cfg.effective_gamma, green_fraction=k / n)
            spans: tuple = ()
            if localize:
                spans, loc = find_spans(
                    green.astype(np.float64),
                    tup.positions,
                    kind="binomial",
                    alpha=alpha,
                    gamma=cfg.effective_gamma,
                )
                details.update(loc)
            return self._result(key, tup.n_tokens, n, k, log_p, alpha, spans=spans, details=details)

        codec = self.codec(key)
        counts = self.slot_counts(codec, tup)  # binned once: the test and the decoding both read it
        test = self._payload_free_test(codec, counts)
        details.update(test=test.test, n_groups=test.n_groups, colors=codec.n_colors,
                       anchor_tuples=test.n_anchor, anchor_log10_p=test.anchor_log_p / stats.LN10)
        result = self._result(key, tup.n_tokens, n, test.score, test.log_p, alpha, details=details)
        if decode_payload and result.enough_tokens:
            evidence = counts.sum(axis=0)[: codec.n_chunks]
            est, more = decode_groups(codec, evidence, test.log_p, result.watermarked)
            details.update(more)
            result = self._result(
                key, tup.n_tokens, n, test.score, test.log_p, alpha, payload=est, details=details
            )
        if localize:
            details["localize"] = "not available in KGW payload mode (the per-token score needs the payload)"
        return result

    def _trace_key(
        self, key: SecretKey, ids: np.ndarray, candidates: Sequence[int | str], dedup: bool
    ) -> TraceEvidence:
        """Each candidate's own pattern is scored: S_a = tuples whose color equals the
        candidate's chunk value, exactly Binomial(n, 1/r) under the null. ``separated`` is an
        exact sign test (Binomial(·, 1/2)) on the tuples of chunks where best and runner-up differ."""
        cfg = self.config
        codec = self.codec(key)
        msgs = np.stack([codec.encode(c) for c in candidate_ids(key, codec, candidates)])
        tup = score_tuples(key, ids, cfg.context_width, _PURPOSE, dedup=dedup)
        L = codec.n_chunks
        counts = self.slot_counts(codec, tup).sum(axis=0)[:L]  # payload chunks only: anchors name nobody
        n = int(counts.sum())
        per_cand = counts[np.arange(L), msgs].sum(axis=1)
        i, j = best_two(per_cand)
        log_p = stats.binomial_log_sf(int(per_cand[i]), n, 1.0 / codec.n_colors) if n else 0.0
        sep_log_p = 0.0
        if j is not None:
            differ = msgs[i] != msgs[j]
            ka = int(counts[np.flatnonzero(differ), msgs[i][differ]].sum())
            kb = int(counts[np.flatnonzero(differ), msgs[j][differ]].sum())
            sep_log_p = stats.binomial_log_sf(ka, ka + kb, 0.5) if ka + kb else 0.0
        return TraceEvidence(i, j, n, float(per_cand[i]), log_p, sep_log_p)

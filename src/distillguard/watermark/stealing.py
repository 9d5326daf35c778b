"""Watermark stealing: estimate a KGW green list from harvested outputs, as an attacker would.

The attacker of Jovanović, Staab and Vechev, "Watermark Stealing in Large Language Models"
(ICML 2024) sees only our watermarked answers (token ids) and unwatermarked text of the same
model (it can sample the base model, or use public text). The watermark's bias shows as
(context, token) pairs that are more frequent in the harvest than in the reference; counting
them is enough to learn, for contexts it has seen, which next tokens are green — and then to
*spoof* (write text our detector calls watermarked without the key) or *scrub*.

**Estimator.** For a context c (the previous ``context_width`` tokens, the same window our KGW
hashes) and a candidate token t:

- reference: p_r(t | c_k) = (n_r(c_k, t) + β_r p_r(t | c_{k-1})) / (N_r(c_k) + β_r), Dirichlet
  smoothing down the suffixes c_k (the last k tokens of c) to an add-one unigram;
- harvest: n_w(c, t) of the N_w(c) harvested tokens after c. If t is green its count is
  Poisson with mean N_w p_r e^δ / Z, if red N_w p_r / Z (Z = γe^δ + 1 − γ), for the attacker's
  guesses of γ and δ (the literature's defaults; it can tune them on its own harvest);
- score s(t, c) = the posterior log-odds that t is green: the Poisson log-likelihood ratio
  n_w δ − N_w p_r (e^δ − 1)/Z plus the prior ln(γ/(1 − γ)).

The score rewards repeated evidence: a token seen once where the reference is silent is weak
evidence, one seen ten times where the reference expects two is strong (a plain frequency ratio
ranks the first higher and is much noisier). Jovanović et al. use a clipped ratio; the
likelihood ratio is the same idea with the counts kept.

Tokens never seen after c in the harvest are never labelled. The attacker labels green the
``max_candidates`` best tokens with s > ``min_score``. When the full context never occurs in
the harvest it may *back off* to the longest suffix that does (what an attacker who does not
know the hashing does). Our context hash is a PRF of all ``context_width`` tokens together, so
shorter contexts carry no information about its green lists: back-off predictions are expected
at chance, and :class:`StealingPrecision` reports them per order (measured in
docs/benchmarks.md, section *watermark-stealing*).

**Gumbel.** The scheme has no green list, but each (context, token) has a keyed uniform u and
the generator favours large u; :func:`true_green` calls a tuple "green" when u ≥ 1 − γ (its
detector score −ln(1 − u) exceeds ln(1/γ)), so the same precision measures what an attacker
learns there.

Everything here is pure (standard library + numpy); the ground truth needs the key and is for
measurement only.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from distillguard import stats
from distillguard.errors import ConfigError, InputError, NotFittedError
from distillguard.watermark._common import check_int, check_real
from distillguard.watermark._tuples import as_token_array
from distillguard.watermark.base import WatermarkScheme

__all__ = [
    "GreenEstimate",
    "GreenListStealer",
    "OrderPrecision",
    "StealerConfig",
    "StealingPrecision",
    "evaluate_precision",
    "true_green",
]

_Ctx = tuple[int, ...]


@dataclass(frozen=True)
class StealerConfig:
    """Parameters of :class:`GreenListStealer` (validated when built).

    Attributes:
        context_width: tokens of context the attacker conditions on (the scheme's width is
            public or easy to guess; 1–8).
        backoff: use the longest shorter suffix seen in the harvest when the full context
            never was.
        min_count: harvest occurrences a context needs before it is used (≥ 1).
        assumed_gamma: the attacker's guess of the green fraction γ, in (0, 1).
        assumed_delta: the attacker's guess of the bias δ, in (0, 50].
        reference_prior: β_r, pseudo-count of the shorter context in the reference (> 0).
        max_candidates: at most this many tokens labelled green per context (≥ 1).
        min_score: label only tokens whose posterior log-odds s(t, c) exceed this (any real;
            0 = "more likely green than not").
    """

    context_width: int = 2
    backoff: bool = True
    min_count: int = 1
    assumed_gamma: float = 0.25
    assumed_delta: float = 2.0
    reference_prior: float = 1.0
    max_candidates: int = 5
    min_score: float = 0.0

    def __post_init__(self) -> None:
        name = type(self).__name__
        check_int(name, "context_width", self.context_width, 1, 8)
        if not isinstance(self.backoff, bool):
            raise ConfigError(
                f"The 'backoff' parameter of {name} must be a bool. Got {self.backoff!r} instead."
            )
        check_int(name, "min_count", self.min_count, 1)
        check_real(name, "assumed_gamma", self.assumed_gamma, 0.0, 1.0)
        check_real(name, "assumed_delta", self.assumed_delta, 0.0, 50.0, open_hi=False)
        check_real(name, "reference_prior", self.reference_prior, 0.0, 1e6)
        check_int(name, "max_candidates", self.max_candidates, 1)
        check_real(name, "min_score", self.min_score, -1e6, 1e6)


@dataclass(frozen=True)
class GreenEstimate:
    """The attacker's labels for one context.

    ``tokens`` are the labelled token ids (best first) and ``scores`` their log-odds s(t, c);
    ``order`` is the context length used (``context_width``, or shorter after back-off; 0 when
    the attacker has no estimate and labels nothing).
    """

    tokens: np.ndarray
    scores: np.ndarray
    order: int


class _Counts:
    """(context suffix, next token) counts for every order 1..w, plus unigrams."""

    def __init__(self, width: int) -> None:
        self.pairs: list[dict[_Ctx, dict[int, int]]] = [defaultdict(dict) for _ in range(width + 1)]
        self.totals: list[dict[_Ctx, int]] = [defaultdict(int) for _ in range(width + 1)]
        self.n_tokens = 0

    def add(self, ids: np.ndarray, width: int) -> None:
        seq = ids.tolist()
        for i in range(width, len(seq)):
            t = seq[i]
            self.n_tokens += 1
            for k in range(width + 1):
                c = tuple(seq[i - k : i])
                row = self.pairs[k][c]
                row[t] = row.get(t, 0) + 1
                self.totals[k][c] += 1


class GreenListStealer:
    """Frequency-ratio green-list attacker (see the module docstring).

    ``fit(watermarked, reference) -> self``; afterwards :meth:`estimate` labels the green
    candidates of a context and :meth:`bias` turns the labels into a logits bias for spoofing.

    Example::

        stealer = GreenListStealer(StealerConfig(context_width=2)).fit(harvest_ids, reference_ids)
        stealer.estimate([1234, 56]).tokens        # token ids it believes green after (1234, 56)
    """

    def __init__(self, config: StealerConfig | None = None) -> None:
        if config is not None and not isinstance(config, StealerConfig):
            raise ConfigError(f"Expected a StealerConfig. Got {type(config).__name__} instead.")
        self.config = config or StealerConfig()
        self._cache: dict[_Ctx, GreenEstimate] = {}

    def __repr__(self) -> str:
        fitted = f", {self.n_watermarked_tokens_} harvested tokens" if hasattr(self, "_wm") else ""
        return f"GreenListStealer({self.config!r}{fitted})"

    def fit(
        self,
        watermarked: Iterable[Sequence[int] | np.ndarray],
        reference: Iterable[Sequence[int] | np.ndarray],
    ) -> GreenListStealer:
        """Count (context, token) pairs; returns self.

        Each sequence's first ``context_width`` tokens serve only as context (pass the tail of
        the prompt before an answer so its first tokens are counted).

        Raises:
            InputError: a sequence is not 1-D non-negative integer ids, or either corpus has no
                token after its context.
        """
        w = self.config.context_width
        wm, ref = _Counts(w), _Counts(w)
        vocab = 0
        for counts, corpus in ((wm, watermarked), (ref, reference)):
            for seq in corpus:
                ids = as_token_array(seq)
                if ids.size:
                    vocab = max(vocab, int(ids.max()) + 1)
                counts.add(ids, w)
        for label, counts in (("watermarked", wm), ("reference", ref)):
            if counts.n_tokens == 0:
                raise InputError(f"The {label} corpus has no token after a full {w}-token context.")
        self._wm, self._ref, self._vocab = wm, ref, vocab
        self._cache = {}
        self.n_watermarked_tokens_ = wm.n_tokens
        self.n_reference_tokens_ = ref.n_tokens
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "_wm"):
            raise NotFittedError("This GreenListStealer is not fitted yet; call fit(watermarked, reference).")

    def _p_ref(self, ctx: _Ctx, token: int) -> float:
        """p_r(token | ctx), smoothed down the suffixes of ctx to an add-one unigram."""
        ref, beta = self._ref, self.config.reference_prior
        p = (ref.pairs[0][()].get(token, 0) + 1.0) / (ref.n_tokens + max(self._vocab, token + 1))
        for k in range(1, len(ctx) + 1):
            c = ctx[len(ctx) - k :]
            n_c = ref.totals[k].get(c, 0)
            if n_c:
                p = (ref.pairs[k][c].get(token, 0) + beta * p) / (n_c + beta)
        return p

    def estimate(self, context: Sequence[int] | np.ndarray) -> GreenEstimate:
        """The tokens labelled green after ``context`` (its last ``context_width`` tokens).

        Raises:
            NotFittedError: before :meth:`fit`.
            InputError: fewer than ``context_width`` context tokens.
        """
        self._check_fitted()
        cfg = self.config
        ids = as_token_array(context)
        if ids.size < cfg.context_width:
            raise InputError(
                f"A context needs at least context_width={cfg.context_width} tokens. Got {ids.size}."
            )
        ctx: _Ctx = tuple(ids[ids.size - cfg.context_width :].tolist())
        hit = self._cache.get(ctx)
        if hit is None:
            hit = self._cache[ctx] = self._estimate(ctx)
        return hit

    def _estimate(self, ctx: _Ctx) -> GreenEstimate:
        cfg, wm = self.config, self._wm
        gamma, delta = cfg.assumed_gamma, cfg.assumed_delta
        z = gamma * math.exp(delta) + 1.0 - gamma
        prior = math.log(gamma / (1.0 - gamma))
        lowest = 1 if cfg.backoff else cfg.context_width
        for k in range(cfg.context_width, lowest - 1, -1):
            c = ctx[len(ctx) - k :]
            n_c = wm.totals[k].get(c, 0)
            if n_c < cfg.min_count:
                continue
            cand = wm.pairs[k][c]
            toks = np.fromiter(cand.keys(), dtype=np.int64, count=len(cand))
            n_w = np.fromiter(cand.values(), dtype=np.float64, count=len(cand))
            p_r = np.array([self._p_ref(c, t) for t in cand])
            s = n_w * delta - n_c * p_r * (math.exp(delta) - 1.0) / z + prior
            keep = s > cfg.min_score
            toks, s = toks[keep], s[keep]
            order = np.lexsort((toks, -s))[: cfg.max_candidates]  # ties broken by id: deterministic
            return GreenEstimate(toks[order], s[order], k)
        return GreenEstimate(np.zeros(0, np.int64), np.zeros(0), 0)

    def bias(self, input_ids: np.ndarray, scores: np.ndarray, delta: float) -> np.ndarray:
        """Spoofing as a logits processor: add ``delta`` to each row's labelled tokens.

        ``input_ids`` is (batch, seq_len) history, ``scores`` (batch, vocab) logits; returns a
        new array like ``scores``. Rows with a shorter history than ``context_width`` are
        returned unchanged; labelled ids outside the vocabulary are ignored.

        Raises:
            NotFittedError: before :meth:`fit`.
            InputError: shapes that do not match.
            ConfigError: ``delta`` not in (0, 50].
        """
        self._check_fitted()
        check_real("GreenListStealer.bias", "delta", delta, 0.0, 50.0, open_hi=False)
        ids, arr = np.asarray(input_ids), np.asarray(scores)
        if ids.ndim != 2 or arr.ndim != 2 or ids.shape[0] != arr.shape[0]:
            raise InputError(
                f"bias needs input_ids (batch, seq_len) and scores (batch, vocab) with the same batch. "
                f"Got {ids.shape} and {arr.shape}."
            )
        out = arr.copy()
        if ids.shape[1] < self.config.context_width:
            return out
        for b in range(ids.shape[0]):
            toks = self.estimate(ids[b]).tokens
            toks = toks[toks < arr.shape[1]]
            out[b, toks] += out.dtype.type(delta)
        return out


def true_green(
    scheme: WatermarkScheme, contexts: np.ndarray, tokens: np.ndarray, *, gumbel_gamma: float = 0.25
) -> np.ndarray:
    """Ground truth (needs the key): is each (context, token) pair green under ``scheme``?

    ``contexts`` is (n, context_width) token ids, ``tokens`` (n,). KGW: the scheme's own green
    list (no-payload mode). Gumbel: the keyed uniform u ≥ 1 − ``gumbel_gamma``.

    Raises:
        ConfigError: a payload-mode scheme (its green list depends on the account), or another
            scheme than ``kgw`` / ``gumbel``.
        InputError: shapes that do not match the scheme's context width.
    """
    from distillguard.watermark.gumbel import Gumbel
    from distillguard.watermark.kgw import KGW

    check_real("true_green", "gumbel_gamma", gumbel_gamma, 0.0, 1.0)
    if isinstance(scheme, KGW):
        return scheme.green_mask(contexts, tokens)
    if isinstance(scheme, Gumbel):
        return np.asarray(scheme.keyed_uniforms(contexts, tokens) >= 1.0 - gumbel_gamma)
    raise ConfigError(f"true_green supports kgw and gumbel. Got {scheme.name!r}.")


@dataclass(frozen=True)
class OrderPrecision:
    """Labels made with contexts of one length (``order``) and how many were truly green;
    ``coverage`` is the fraction of held-out positions labelled from contexts of this length."""

    order: int
    coverage: float
    n_labelled: int
    n_green: int

    @property
    def precision(self) -> float:
        """n_green / n_labelled (nan when nothing was labelled)."""
        return self.n_green / self.n_labelled if self.n_labelled else math.nan


@dataclass(frozen=True)
class StealingPrecision:
    """How well the attacker's labels match the true green lists on held-out text.

    ``n_positions`` scored positions of the held-out text; ``coverage`` the fraction of them
    where the attacker labelled at least one token. Labels are counted once per distinct
    (context, token) pair: ``precision`` = n_green / n_labelled, ``chance`` = γ, and
    ``log10_p_value`` the exact binomial tail P(X ≥ n_green), X ~ Binomial(n_labelled, γ) — the
    chance of doing that well by guessing.
    """

    n_positions: int
    coverage: float
    n_labelled: int
    n_green: int
    precision: float
    chance: float
    log10_p_value: float
    by_order: tuple[OrderPrecision, ...]

    def __post_init__(self) -> None:
        for name in ("coverage", "chance"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ConfigError(f"StealingPrecision.{name} must lie in [0, 1]. Got {v!r} instead.")


def evaluate_precision(
    stealer: GreenListStealer,
    texts: Iterable[Sequence[int] | np.ndarray],
    scheme: WatermarkScheme,
    *,
    gumbel_gamma: float = 0.25,
) -> StealingPrecision:
    """Score the attacker's labels on every context of ``texts`` against :func:`true_green`.

    Each text's first ``context_width`` tokens are context only, as in :meth:`GreenListStealer.fit`.
    The attacker's and the scheme's context widths must agree.

    Raises:
        NotFittedError: the stealer is not fitted.
        ConfigError: the widths differ, or ``scheme`` is not supported by :func:`true_green`.
    """
    stealer._check_fitted()
    w = stealer.config.context_width
    scheme_w = getattr(getattr(scheme, "config", None), "context_width", None)
    if scheme_w != w:
        raise ConfigError(f"The stealer's context_width ({w}) differs from the scheme's ({scheme_w}).")
    n_pos = 0
    covered: dict[int, int] = defaultdict(int)
    labelled: dict[_Ctx, GreenEstimate] = {}
    for seq in texts:
        ids = as_token_array(seq).tolist()
        for i in range(w, len(ids)):
            ctx = tuple(ids[i - w : i])
            est = labelled.get(ctx)
            if est is None:
                est = labelled[ctx] = stealer.estimate(ctx)
            n_pos += 1
            if est.tokens.size:
                covered[est.order] += 1
    rows = [(c, e) for c, e in labelled.items() if e.tokens.size]
    chance = float(getattr(scheme.config, "effective_gamma", gumbel_gamma))  # type: ignore[attr-defined]
    if not n_pos:
        raise InputError(f"No held-out text has a token after a full {w}-token context.")
    if not rows:
        return StealingPrecision(n_pos, 0.0, 0, 0, math.nan, chance, 0.0, ())
    ctx_mat = np.array([c for c, e in rows for _ in range(e.tokens.size)], dtype=np.int64).reshape(-1, w)
    toks = np.concatenate([e.tokens for _, e in rows])
    orders = np.concatenate([np.full(e.tokens.size, e.order) for _, e in rows])
    green = true_green(scheme, ctx_mat, toks, gumbel_gamma=gumbel_gamma)
    n, k = int(toks.size), int(green.sum())
    by_order = tuple(
        OrderPrecision(
            int(o), covered[int(o)] / n_pos, int((orders == o).sum()), int(green[orders == o].sum())
        )
        for o in sorted(set(orders.tolist()), reverse=True)
    )
    log_p = stats.binomial_log_sf(k, n, chance) / stats.LN10
    return StealingPrecision(n_pos, sum(covered.values()) / n_pos, n, k, k / n, chance, log_p, by_order)

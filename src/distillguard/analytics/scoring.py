"""Account scorers: per-account features in, scores in [0, 1] with checkable reasons out.

The default scorer (``binomial-tail``) treats each behavioural feature as a count ``k`` of
``n`` requests (prompts that reuse a template, ask for step-by-step reasoning, ask for many
diverse examples, request logprobs, request very long outputs). Its null rate is estimated from
the population itself, robustly: the ``null_quantile`` (default 90th) percentile of per-account
rates among accounts with enough requests, so attackers up to 10% of accounts cannot drag the
baseline up, and ordinary heavy-tailed benign behaviour sits under it. Each feature gives an
exact binomial upper-tail p-value; the account's statistic ``s = -log10 p`` uses the
Bonferroni-corrected minimum (valid under any dependence between features). A feature with
fewer than ``min_evidence`` (2) matching requests is no evidence: one request distils nothing.
Benign counts are over-dispersed (one conversation repeats a cue), so ``p`` is not an exact
p-value for benign accounts; the flag line is therefore not ``p <= target_fpr`` by fiat but a
:class:`~distillguard.analytics.calibration.Threshold` calibrated on benign accounts for the
target false-positive rate (see :mod:`.calibration`); without one, the nominal line is used.
Volume and rate are reported but never flag by themselves: heavy legitimate users are exactly
what a volume rule gets wrong.

Score = min(1, s / (2 * s_threshold)), so the flag line is score 0.5 and a score of 1 means
twice the threshold's -log10 p. Pure: numpy and stdlib only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from distillguard.analytics.calibration import Threshold
from distillguard.errors import ConfigError, NotFittedError
from distillguard.registry import Registry
from distillguard.stats import binomial_log_sf

__all__ = ["COUNT_FEATURES", "NULL_FLOORS", "AccountScore", "BinomialTailScorer", "ScorerConfig", "scorers"]

scorers: Registry[Any] = Registry("account scorer")

# feature column -> phrase for reasons
COUNT_FEATURES: dict[str, str] = {
    "n_reused": "reuse a template",
    "n_cot": "ask for step-by-step reasoning",
    "n_diverse": "ask for many diverse examples",
    "n_logprob": "request logprobs",
    "n_long": "ask for >= 2048 output tokens",
    "n_offtemp": "use a temperature other than the account's most used one",
    "n_offhours": "arrive in the 8 hours opposite the account's activity peak",
    "n_regular": "arrive on a metronome (gap within 10% of the mean gap)",
    "n_offtopic": "fall outside the account's 3 main topic clusters",
}
# Evidence of automation, not of extraction: an app backend legitimately runs round the clock
# on a fixed schedule, so for a narrow-template account these count for nothing.
_AUTOMATION = ("n_reused", "n_offhours", "n_regular")
# Null rates no population can go below: arrivals at random (Poisson) put a gap within 10% of
# the mean gap with probability e^-0.9 - e^-1.1 = 7.4%, so only more than that is regularity.
NULL_FLOORS: dict[str, float] = {"n_regular": math.exp(-0.9) - math.exp(-1.1)}
_LN10 = math.log(10.0)


@dataclass(frozen=True)
class ScorerConfig:
    """Scorer parameters (validated)."""

    target_fpr: float = 1e-3
    null_quantile: float = 0.8
    min_requests_for_null: int = 3
    min_null_rate: float = 1e-3
    min_evidence: int = 2

    def __post_init__(self) -> None:
        for name, lo, hi in (
            ("target_fpr", 0.0, 0.5),
            ("null_quantile", 0.5, 1.0),
            ("min_null_rate", 0.0, 0.5),
        ):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not (lo < v < hi):
                raise ConfigError(
                    f"The '{name}' parameter of ScorerConfig must be a float in ({lo}, {hi}). "
                    f"Got {v!r} instead."
                )
        if not isinstance(self.min_evidence, int) or self.min_evidence < 1:
            raise ConfigError(
                "The 'min_evidence' parameter of ScorerConfig must be an int >= 1. "
                f"Got {self.min_evidence!r} instead."
            )
        if not isinstance(self.min_requests_for_null, int) or self.min_requests_for_null < 1:
            raise ConfigError(
                "The 'min_requests_for_null' parameter of ScorerConfig must be an int >= 1. "
                f"Got {self.min_requests_for_null!r} instead."
            )


@dataclass(frozen=True)
class AccountScore:
    """One account's verdict. ``log10_p`` is the corrected p-value's log10 (<= 0)."""

    account_id: str
    score: float
    log10_p: float
    flagged: bool
    reasons: tuple[str, ...]
    feature_log10_p: dict[str, float] = field(default_factory=dict)
    # Evaluation traffic or allowlisted: scored and reported, never flagged.
    exempt: bool = False

    def at(self, threshold: Threshold) -> AccountScore:
        """The same verdict against another flag line (score and flag change; evidence does not)."""
        s = -self.log10_p
        # The constructor, not dataclasses.replace: this runs once per account of a scan.
        return AccountScore(
            self.account_id,
            round(min(1.0, s / (2 * threshold.s_threshold)), 6),
            self.log10_p,
            s >= threshold.s_threshold and not self.exempt,
            self.reasons,
            self.feature_log10_p,
            self.exempt,
        )


def _column(
    rows: list[dict[str, Any]], key: str, missing: float = 0.0, required: bool = True
) -> np.ndarray:
    """One feature of every row as floats, None (or an absent optional key) as ``missing``.

    The one conversion the scorer uses for its feature columns (numpy turns None into NaN).
    """
    vals = [r[key] for r in rows] if required else [r.get(key) for r in rows]
    col = np.array(vals, dtype=np.float64)  # None -> nan
    if not math.isnan(missing):
        col[np.isnan(col)] = missing
    return col


def _fmt_n(x: float) -> str:
    return f"{round(x):,}"


@scorers.register("binomial-tail")
class BinomialTailScorer:
    """Exact binomial tails against robust population null rates; see the module docstring."""

    def __init__(self, config: ScorerConfig | None = None) -> None:
        self.config = config or ScorerConfig()

    def fit(self, population: list[dict[str, Any]]) -> BinomialTailScorer:
        """Estimate null rates and population medians from per-account feature rows.

        Raises:
            ConfigError: the population is empty.
        """
        if not population:
            raise ConfigError("Cannot fit an account scorer on an empty population of accounts.")
        cfg = self.config
        n = _column(population, "n_requests")
        big = n >= cfg.min_requests_for_null
        if big.sum() < 5:  # too few sizeable accounts: use all of them
            big = np.ones_like(big)
        self.null_rates_: dict[str, float] = {}
        for f in COUNT_FEATURES:
            rates = _column(population, f) / np.maximum(n, 1)
            q = float(np.quantile(rates[big], cfg.null_quantile))
            self.null_rates_[f] = min(max(q, cfg.min_null_rate, NULL_FLOORS.get(f, 0.0)), 0.99)
        self.medians_ = {
            k: float(np.median(_column(population, k, required=False)))
            for k in ("n_requests", "peak_hour", "n_templates", "n_topics", "diurnal_strength")
        }
        return self

    def _check(self) -> None:
        if not hasattr(self, "null_rates_"):
            raise NotFittedError("This BinomialTailScorer is not fitted yet; call fit(population) first.")

    def score(
        self,
        rows: list[dict[str, Any]],
        allowlist: frozenset[str] = frozenset(),
        threshold: Threshold | None = None,
    ) -> list[AccountScore]:
        """Score feature rows (accounts, or pooled campaigns) against the fitted population.

        ``threshold`` is the calibrated flag line; ``None`` means the nominal one
        (``p <= target_fpr``). Raises :class:`NotFittedError` before :meth:`fit`.
        """
        self._check()
        cfg = self.config
        s_thr = threshold.s_threshold if threshold is not None else -math.log10(cfg.target_fpr)
        feats = list(COUNT_FEATURES)
        m = len(feats)
        n_arr = np.array([int(r["n_requests"]) for r in rows], dtype=np.int64)
        # Column-wise: one (accounts x features) matrix of log10 tails, then the per-account
        # verdict vectorised; only accounts with something to say get their reasons built.
        tails = np.zeros((len(rows), m))
        for j, f in enumerate(feats):
            k = np.rint(_column(rows, f)).astype(np.int64)
            tails[:, j] = self._log10_tails(k, n_arr, f)
        auto = np.array([f in _AUTOMATION for f in feats])
        # As _narrow reads it (a ratio of 0 counts as 1), so the verdict and its reasons agree.
        ratio = np.array([float(r.get("distinct_ratio") or 1) for r in rows])
        others = tails[:, ~auto].min(axis=1, initial=0.0)
        narrow = (ratio < 0.05) & (n_arr >= 100) & (others > -2)
        tails[np.ix_(narrow, auto)] = 0.0
        best = tails.min(axis=1, initial=0.0)
        bench = _column(rows, "bench_share", required=False) >= 0.5
        allowed = np.array([str(r["account_id"]) in allowlist for r in rows], dtype=bool)
        med_peak = max(self.medians_["peak_hour"], 1.0)
        med_n = max(self.medians_["n_requests"], 1.0)
        peak = _column(rows, "peak_hour")
        burst = _column(rows, "burstiness", missing=np.nan, required=False)
        has_burst = ~np.isnan(burst)
        quiet = ~(
            allowed | bench | narrow | (best <= -2) | (peak >= 10 * med_peak) | (n_arr >= 10 * med_n)
            | (has_burst & (n_arr >= 50) & (burst < -0.6))
        )
        log_m = math.log10(m)
        out = []
        # Plain lists, not numpy indexing, inside the one loop that runs per account.
        per_row = zip(rows, tails.tolist(), bench.tolist(), allowed.tolist(), quiet.tolist(), strict=True)
        for r, row, b, a, q in per_row:
            logs = dict(zip(feats, row, strict=True))
            log10_p = min(0.0, min(row) + log_m)
            score = min(1.0, -log10_p / (2 * s_thr))
            flagged = -log10_p >= s_thr and not b and not a
            reasons = () if q else tuple(self._reasons(r, logs, b, a))
            out.append(
                AccountScore(
                    str(r["account_id"]), round(score, 6), round(log10_p, 4), flagged, reasons, logs, b or a
                )
            )
        return out

    def _log10_tails(self, k: np.ndarray, n: np.ndarray, f: str) -> np.ndarray:
        """log10 P(X >= k), X ~ Binomial(n, null rate of f); 0 below ``min_evidence``."""
        from scipy.stats import binom

        p = self.null_rates_[f]
        # A single matching request distils nothing: below min_evidence, no evidence.
        ev = k >= self.config.min_evidence
        out = np.zeros(len(k))
        if ev.any():
            with np.errstate(divide="ignore"):
                out[ev] = binom.logsf(k[ev] - 1, n[ev], p) / _LN10
            # Far tails underflow in scipy; the exact log-space sum handles them (attackers only).
            for i in np.flatnonzero(ev & ~(out > -250)):
                out[i] = binomial_log_sf(int(k[i]), int(n[i]), p) / _LN10
        return out

    def _context(self, r: dict[str, Any], f: str) -> str:
        # The measurement behind a count, in terms a reviewer can check against the log.
        if f == "n_reused":
            return f" ({_fmt_n(r['n_templates'])} templates)"
        if f == "n_offhours":
            return (
                f" (round-the-clock: diurnal strength {float(r.get('diurnal_strength') or 0):.2f}, "
                f"median account {self.medians_['diurnal_strength']:.2f})"
            )
        if f == "n_regular":
            return f" (inter-arrival CV {float(r.get('gap_cv') or 0):.2f}; Poisson traffic is 1)"
        if f == "n_offtemp":
            return f" ({_fmt_n(r.get('n_temperatures') or 0)} distinct temperatures: a parameter sweep)"
        if f == "n_offtopic":
            med = max(self.medians_["n_topics"], 1.0)
            return (
                f" (topic coverage {_fmt_n(r['n_topics'])} clusters, "
                f"{float(r['n_topics']) / med:.0f}x the median account)"
            )
        return ""

    @staticmethod
    def _narrow(r: dict[str, Any], logs: dict[str, float]) -> bool:
        others = (logs[f] for f in COUNT_FEATURES if f not in _AUTOMATION)
        return float(r.get("distinct_ratio") or 1) < 0.05 and int(r["n_requests"]) >= 100 and min(others) > -2

    def _reasons(self, r: dict[str, Any], logs: dict[str, float], bench: bool, allowed: bool) -> list[str]:
        n = int(r["n_requests"])
        reasons = []
        if allowed:
            reasons.append("allowlisted (research tier / declared evaluation): scored, not flagged")
        if bench:
            reasons.append(
                f"{100 * float(r['bench_share']):.0f}% of prompts are known benchmark prompts "
                "(HumanEval): evaluation, not flagged"
            )
        for f in sorted(logs, key=logs.__getitem__):
            if logs[f] > -2:  # weaker than p = 0.01 is not worth a human's attention
                break
            k = float(r[f] or 0)
            extra = self._context(r, f)
            reasons.append(
                f"{100 * k / n:.0f}% of {_fmt_n(n)} prompts {COUNT_FEATURES[f]}{extra}; "
                f"typical accounts at most {100 * self.null_rates_[f]:.1f}% (p = 1e{logs[f]:.0f})"
            )
        med_peak = max(self.medians_["peak_hour"], 1.0)
        if float(r["peak_hour"]) >= 10 * med_peak:
            reasons.append(
                f"peak {_fmt_n(r['peak_hour'])} requests in one hour, "
                f"{float(r['peak_hour']) / med_peak:.0f}x the median account"
            )
        if n >= 10 * max(self.medians_["n_requests"], 1.0):
            reasons.append(
                f"{_fmt_n(n)} requests, {n / max(self.medians_['n_requests'], 1.0):.0f}x the median account"
            )
        if self._narrow(r, logs):
            reasons.append(
                f"one narrow template with {100 * float(r['distinct_ratio']):.1f}% distinct prompts "
                "(app-backend pattern)"
            )
        if r.get("burstiness") is not None and n >= 50 and float(r["burstiness"]) < -0.6:
            reasons.append(
                f"machine-regular timing (burstiness {float(r['burstiness']):.2f}: -1 is a metronome, "
                "people are bursty, above 0)"
            )
        return reasons

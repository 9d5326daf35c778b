"""Set the flag threshold from a target false-positive rate on benign accounts.

The scorer's per-account statistic is ``s = -log10 p`` (Bonferroni-corrected binomial tail).
If benign accounts behaved like independent requests at the null rates, ``p`` would be a valid
p-value and flagging at ``s >= -log10(target_fpr)`` (the *nominal* threshold) would meet the
target. Real benign traffic is over-dispersed (one conversation repeats a cue across turns),
so ``s`` has a heavier tail than a p-value. Two calibrations correct for that:

* **reference** (:func:`calibrate_reference`): scores of a benign reference population (e.g.
  last month's accounts in good standing). The threshold is the conformal quantile
  ``s_(ceil((n + 1)(1 - a)))``, which bounds the false-positive rate of a new, exchangeable
  benign account by ``a`` in finite samples. Needs ``n >= 1/a - 1`` reference accounts; with
  fewer it falls back to the tail fit below.
* **population** (:func:`calibrate_population`, the default): the scanned population is its own
  reference, but it contains the attackers, so its empirical tail cannot be read off. Instead
  the benign tail is *modelled*: among accounts with any evidence (``s > 0``, share ``pi``),
  ``P(s > t | s > 0) = 10 ** (-t / lam)``, where ``lam >= 1`` is an inflation factor (``lam = 1``
  is an exact p-value) estimated from the lower half of the positive scores, the part
  attackers, who sit far out in the tail, cannot reach unless they are most of the accounts
  with evidence. Then ``P(s > t) = pi * 10 ** (-t / lam)`` and the threshold solving it for
  ``a`` is ``lam * log10(pi / a)``. ``pi`` counts attackers too, which errs on the strict side.

Either way the threshold is never below the nominal one: an account is flagged only if it is
both significant at the target level and beyond the calibrated benign tail. Pure: numpy only.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from distillguard.errors import ConfigError

__all__ = ["MIN_POSITIVE", "Threshold", "calibrate_population", "calibrate_reference"]

# Fewer accounts with any evidence than this cannot support a tail fit.
MIN_POSITIVE = 20
# Conditional quantiles of the positive scores used to estimate the inflation factor.
_FIT_QUANTILES = (0.25, 0.5)


@dataclass(frozen=True)
class Threshold:
    """A calibrated flag line: flag an account when its statistic ``s >= s_threshold``.

    ``method`` is ``nominal``, ``population-tail-fit`` or ``reference-conformal``;
    ``inflation`` (``lam``) and ``positive_share`` (``pi``) describe the fitted benign tail
    (``None`` when not fitted); ``n_reference`` is the number of accounts calibrated on.
    """

    target_fpr: float
    s_threshold: float
    method: str
    n_reference: int
    inflation: float | None = None
    positive_share: float | None = None

    @property
    def log10_p(self) -> float:
        """The threshold as a log10 p-value (flag when ``log10_p`` is at most this)."""
        return -self.s_threshold

    def at(self, target_fpr: float) -> Threshold:
        """Return the same calibration at another rate (used for the campaign-level budget)."""
        _check_fpr(target_fpr)
        nominal = -math.log10(target_fpr)
        s = nominal
        if self.inflation is not None and self.positive_share is not None:
            s = max(nominal, self.inflation * math.log10(max(self.positive_share, 1e-300) / target_fpr))
        elif self.method == "reference-conformal":
            s = max(nominal, self.s_threshold)
        return Threshold(target_fpr, s, self.method, self.n_reference, self.inflation, self.positive_share)

    def describe(self) -> str:
        """One sentence for report.json's summary: the line and how it was set."""
        base = (
            f"flag when -log10 p >= {self.s_threshold:.2f} (score >= 0.5), for a target benign "
            f"false-positive rate of {self.target_fpr:g}"
        )
        if self.method == "reference-conformal":
            return f"{base}: conformal quantile of {self.n_reference:,} benign reference accounts"
        if self.method == "population-tail-fit":
            return (
                f"{base}: benign tail fitted on the {self.n_reference:,} scanned accounts "
                f"({100 * (self.positive_share or 0):.1f}% have any evidence; inflation "
                f"{self.inflation:.2f} over an exact p-value); never below the nominal "
                f"{-math.log10(self.target_fpr):.2f}"
            )
        return f"{base}: nominal p-value threshold (too few accounts with evidence to fit a tail)"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, with :meth:`describe` as ``how``."""
        d = asdict(self)
        d["log10_p"] = self.log10_p
        d["how"] = self.describe()
        return d


def _check_fpr(target_fpr: float) -> None:
    ok = isinstance(target_fpr, (int, float)) and not isinstance(target_fpr, bool)
    if not ok or not (0 < target_fpr < 0.5):
        raise ConfigError(
            f"The 'target_fpr' parameter must be a float in (0, 0.5). Got {target_fpr!r} instead."
        )


def _stats(s: Any) -> np.ndarray:
    arr = np.asarray(s, dtype=float)
    if arr.ndim != 1 or not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ConfigError("The account statistics must be a 1-d array of finite values >= 0 (-log10 p).")
    return arr


def calibrate_population(s: Any, target_fpr: float) -> Threshold:
    """Fit the benign tail on the scanned population's statistics ``s`` (see module docstring).

    Returns a :class:`Threshold` (``nominal`` when fewer than :data:`MIN_POSITIVE` accounts
    have any evidence). Raises :class:`ConfigError` for a bad rate or bad statistics.
    """
    _check_fpr(target_fpr)
    arr = _stats(s)
    nominal = -math.log10(target_fpr)
    pos = arr[arr > 0]
    if len(pos) < MIN_POSITIVE:
        return Threshold(target_fpr, nominal, "nominal", len(arr))
    pi = len(pos) / len(arr)
    lam = max(
        1.0,
        float(np.median([np.quantile(pos, q) / math.log10(1 / (1 - q)) for q in _FIT_QUANTILES])),
    )
    return Threshold(target_fpr, 0.0, "population-tail-fit", len(arr), lam, pi).at(target_fpr)


def calibrate_reference(s: Any, target_fpr: float) -> Threshold:
    """Calibrate on statistics ``s`` of a benign reference population.

    Uses the conformal quantile when there are at least ``1/target_fpr - 1`` reference accounts,
    else the tail fit of :func:`calibrate_population` on the reference. Raises
    :class:`ConfigError` for a bad rate, bad statistics or an empty reference.
    """
    _check_fpr(target_fpr)
    arr = np.sort(_stats(s))
    n = len(arr)
    if n == 0:
        raise ConfigError("The benign reference population is empty: no account to calibrate on.")
    k = math.ceil((n + 1) * (1 - target_fpr))
    if k > n:
        return calibrate_population(arr, target_fpr)
    # Strictly above the k-th order statistic: ties at s_(k) are not flagged.
    s_k = float(arr[k - 1]) + 1e-9
    return Threshold(target_fpr, max(-math.log10(target_fpr), s_k), "reference-conformal", n)

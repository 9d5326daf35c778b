"""Find the watermarked stretches of a long text (a generated paragraph pasted into human text).

Per-token scores come from a scheme's detector (green indicators for KGW — Bernoulli(γ)
under the null; Exp(1) scores for Gumbel). We scan windows of sizes 32, 64, 128, … (up to the
number of scored tokens) with a stride of a quarter window, compute each window's exact tail
(binomial or Gamma, as the whole-text test), and keep windows whose p-value, multiplied by the
total number of windows tried (Bonferroni), is ≤ α. Overlapping or touching significant windows
form one cluster; its :class:`~distillguard.watermark.base.Span` is the union of the cluster's
windows no larger than its most significant window (large windows that merely contain the
stretch are significant too and would blur the boundaries), with that window's corrected
p-value. Under the null the chance of reporting any span is ≤ α, whatever the
text length (Bonferroni needs no independence between overlapping windows).

A fast vectorised scipy tail is used only as a pre-filter (windows whose approximate tail is
far above the threshold cannot be significant); every reported p-value is the exact one from
:mod:`distillguard.stats`.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from scipy import special
from scipy import stats as sps

from distillguard import stats
from distillguard.watermark.base import Span

__all__ = ["MIN_WINDOW", "find_spans"]

MIN_WINDOW = 32
_PREFILTER_SLACK = 10.0  # nats: generous margin for the approximate tail


def _windows(n: int, min_window: int) -> list[tuple[int, np.ndarray]]:
    out = []
    size = min_window
    while size <= n:
        stride = max(1, size // 4)
        starts = np.arange(0, n - size + 1, stride)
        if starts[-1] != n - size:
            starts = np.append(starts, n - size)
        out.append((size, starts))
        size *= 2
    return out


def find_spans(
    scores: np.ndarray,
    positions: np.ndarray,
    *,
    kind: Literal["binomial", "gamma"],
    alpha: float,
    gamma: float = 0.5,
    min_window: int = MIN_WINDOW,
) -> tuple[tuple[Span, ...], dict[str, Any]]:
    """Return significant spans (token offsets) and details of the scan.

    Args:
        scores: per scored tuple, 0/1 green indicators (``kind="binomial"``, null
            Bernoulli(``gamma``)) or Exp(1) scores (``kind="gamma"``).
        positions: the token offset of each scored tuple.
        alpha: family-wise error level over all windows.
    """
    n = int(scores.size)
    plan = _windows(n, min_window)
    n_windows = int(sum(s.size for _, s in plan))
    details: dict[str, Any] = {
        "localize_windows": n_windows,
        "localize_correction": f"bonferroni over {n_windows} windows",
    }
    if n_windows == 0:
        return (), details
    threshold = math.log(alpha) - math.log(n_windows)
    csum = np.concatenate([[0.0], np.cumsum(scores, dtype=np.float64)])
    hits: list[tuple[int, int, float]] = []
    for size, starts in plan:
        sums = csum[starts + size] - csum[starts]
        if kind == "binomial":
            k = np.rint(sums)
            approx = sps.binom.logsf(k - 1, size, gamma)
        else:
            with np.errstate(divide="ignore"):
                approx = np.log(special.gammaincc(size, sums))
        for i in np.flatnonzero(approx <= threshold + _PREFILTER_SLACK):
            s = float(sums[i])
            exact = (
                stats.binomial_log_sf(round(s), size, gamma)
                if kind == "binomial"
                else stats.gamma_log_sf(s, size)
            )
            if exact <= threshold:
                hits.append((int(starts[i]), int(starts[i]) + size, stats.bonferroni(exact, n_windows)))
    hits.sort()
    clusters: list[list[tuple[int, int, float]]] = []
    for hit in hits:
        if clusters and hit[0] <= max(h[1] for h in clusters[-1]):
            clusters[-1].append(hit)
        else:
            clusters.append([hit])
    # Large windows that merely contain a watermarked stretch are significant too; the span is
    # the union of the cluster's windows no larger than its most significant one.
    merged: list[tuple[int, int, float]] = []
    for cl in clusters:
        best = min(cl, key=lambda h: (h[2], h[1] - h[0]))
        size = best[1] - best[0]
        inner = [h for h in cl if h[1] - h[0] <= size]
        merged.append((min(h[0] for h in inner), max(h[1] for h in inner), best[2]))
    spans = tuple(
        Span(
            start_token=int(positions[lo]),
            end_token=int(positions[hi - 1]) + 1,
            p_value=stats.log_to_p(lp),
        )
        for lo, hi, lp in merged
    )
    details["localize_log10_p_values"] = [lp / stats.LN10 for _, _, lp in merged]
    return spans, details

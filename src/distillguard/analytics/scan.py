"""The scan pipeline: ingest → engine features → account scores → campaigns → report dict."""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from distillguard.analytics.calibration import Threshold, calibrate_population, calibrate_reference
from distillguard.analytics.campaigns import LinkConfig, find_candidates
from distillguard.analytics.ingest import IngestResult, ingest
from distillguard.analytics.scoring import ScorerConfig, scorers
from distillguard.errors import ConfigError, InputError

__all__ = ["EMBEDDINGS", "ScanOptions", "read_allowlist", "scan"]

EMBEDDINGS = ("none", "minilm")


@dataclass(frozen=True)
class ScanOptions:
    """What to run and how."""

    engine: str = "duckdb"
    scorer: str = "binomial-tail"
    target_fpr: float = 1e-3
    allowlist: frozenset[str] = frozenset()
    recognise_benchmarks: bool = True
    progress: bool = False
    quarantine: Path | None = None
    # Logs of known-benign accounts to calibrate the flag line on; empty: the scanned population.
    reference: tuple[str, ...] = ()
    # "minilm": topic clusters from MiniLM sentence embeddings (slow; see docs/analytics.md).
    embeddings: str = "none"

    def __post_init__(self) -> None:
        if self.embeddings not in EMBEDDINGS:
            raise ConfigError(
                f"The 'embeddings' parameter of ScanOptions must be one of {EMBEDDINGS}. "
                f"Got {self.embeddings!r} instead."
            )


def read_allowlist(path: Path) -> frozenset[str]:
    """Read account ids, one a line (``#`` comments allowed)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"Cannot read the allowlist {str(path)!r}: {exc.strerror}.") from None
    return frozenset(s for line in lines if (s := line.split("#", 1)[0].strip()))


def _plain(v: Any) -> Any:
    # Engines return ints, floats or Decimals; the report holds plain JSON numbers.
    if v is None or isinstance(v, (int, str)):
        return v
    x = float(v)
    return round(x, 6) if math.isfinite(x) else None


def _plain_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``{feature: _plain(value)}`` for each row (account_id left out), column by column: the
    common types inline, anything else through :func:`_plain`."""
    if not rows:
        return []
    names = [k for k in rows[0] if k != "account_id"]
    cols = []
    for k in names:
        col = [r[k] for r in rows]
        if all(v is None or type(v) is int for v in col):
            cols.append(col)
        elif all(type(v) is float for v in col):
            # Vectorised: one scan rounds ~20 columns of every account (14M values at 10M events).
            arr = np.round(np.asarray(col, dtype=np.float64), 6)
            fin = np.isfinite(arr)
            vals = arr.tolist()
            if not fin.all():
                for i in np.flatnonzero(~fin).tolist():
                    vals[i] = None
            cols.append(vals)
        else:
            cols.append([_plain(v) for v in col])
    return [dict(zip(names, vals, strict=True)) for vals in zip(*cols, strict=True)]


def _bench_prompts(enabled: bool) -> list[str]:
    if not enabled:
        return []
    from distillguard.data.corpora import human_eval_prompts

    return [p["prompt"] for p in human_eval_prompts()]


def _reference_features(opts: ScanOptions, engine_cls: Any, wd: Path) -> list[dict[str, Any]] | None:
    if not opts.reference:
        return None
    ing = ingest(list(opts.reference), wd / "reference", progress=opts.progress)
    _embed(opts, ing)
    eng = engine_cls(ing.staged_path, _bench_prompts(opts.recognise_benchmarks))
    try:
        return list(eng.accounts())
    finally:
        eng.close()


def _embed(opts: ScanOptions, ing: IngestResult) -> None:
    if opts.embeddings == "minilm" and ing.staged_path is not None:
        from distillguard.analytics.embed import add_topics

        add_topics(ing.staged_path)


def _calibrate(
    scorer: Any, base: list[Any], ref: list[dict[str, Any]] | None, target_fpr: float
) -> Threshold:
    # The statistic is scored against the scanned population's null rates in both cases, so
    # the reference calibrates exactly the quantity that is thresholded.
    if ref is not None:
        return calibrate_reference([-s.log10_p for s in scorer.score(ref)], target_fpr)
    return calibrate_population([-s.log10_p for s in base], target_fpr)


def scan(
    sources: list[str], options: ScanOptions | None = None, workdir: Path | None = None
) -> dict[str, Any]:
    """Scan request logs; return the report as a JSON-ready dict (see docs/analytics.md)."""
    from distillguard.analytics.engines import _load, engines

    opts = options or ScanOptions()
    _load()
    engine_cls = engines.get(opts.engine)
    scorer_cls = scorers.get(opts.scorer)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dg-scan-") as tmp:
        wd = workdir or Path(tmp)
        ing: IngestResult = ingest(sources, wd, quarantine=opts.quarantine, progress=opts.progress)
        t_ingest = time.perf_counter()
        _embed(opts, ing)
        t_embed = time.perf_counter()
        eng = engine_cls(ing.staged_path, _bench_prompts(opts.recognise_benchmarks))
        try:
            feats = eng.accounts()
            links = eng.links()
            n_of = {str(f["account_id"]): int(f["n_requests"]) for f in feats}
            cands = find_candidates(links, len(feats), LinkConfig(), requests_of=n_of)
            pooled = eng.pooled({a: c.campaign_id for c in cands for a in c.accounts}) if cands else []
        finally:
            eng.close()
        ref_feats = _reference_features(opts, engine_cls, wd)
    t_feat = time.perf_counter()
    scorer = scorer_cls(ScorerConfig(target_fpr=opts.target_fpr)).fit(feats)
    base = scorer.score(feats, opts.allowlist)
    threshold = _calibrate(scorer, base, ref_feats, opts.target_fpr)
    scores = {s.account_id: s.at(threshold) for s in base}
    # Each candidate is one more test: split the campaign-level FPR budget among them.
    camp_fpr = opts.target_fpr / max(len(cands), 1)
    # The same fitted population (null rates do not depend on the FPR), at the campaign line.
    camp_scores = (
        {s.account_id: s for s in scorer.score(pooled, threshold=threshold.at(camp_fpr))} if pooled else {}
    )
    campaigns, member_of = [], {}
    for c in cands:
        s = camp_scores[c.campaign_id]
        flagged = s.flagged and not all(a in opts.allowlist for a in c.accounts)
        # The features that make the pooled traffic significant on their own (Bonferroni line).
        c_thr = threshold.at(camp_fpr).s_threshold - math.log10(max(len(s.feature_log10_p), 1))
        drivers = frozenset(f for f, v in s.feature_log10_p.items() if v <= -c_thr)
        campaigns.append(
            {
                "campaign_id": c.campaign_id,
                "accounts": list(c.accounts),
                "score": s.score,
                "flagged": flagged,
                "log10_p": s.log10_p,
                "reasons": [
                    f"{len(c.accounts)} linked accounts",
                    *c.evidence,
                    *(f"pooled: {r}" for r in s.reasons),
                ],
            }
        )
        for a in c.accounts:
            member_of[a] = (c.campaign_id, flagged, drivers, len(c.accounts))
    fmap = {r["account_id"]: p for r, p in zip(feats, _plain_rows(feats), strict=True)}
    accounts = []
    for aid, s in scores.items():
        cid, cflag, drivers, size = member_of.get(aid, (None, False, frozenset(), 1))
        # A member of a flagged campaign is flagged when it shows, on its own, the behaviour
        # that makes the campaign significant (p <= 0.05 / members on a driving feature): a
        # stranger who shares one template with a ring is listed but not flagged.
        own = min((s.feature_log10_p[f] for f in drivers), default=0.0) <= math.log10(0.05 / size)
        flagged = s.flagged or (cflag and own and aid not in opts.allowlist)
        reasons = list(s.reasons)
        if flagged and not s.flagged:
            reasons.insert(0, f"member of flagged campaign {cid}")
        accounts.append(
            {
                "account_id": aid,
                "score": s.score,
                "flagged": flagged,
                "campaign_id": cid,
                "reasons": reasons,
                "log10_p": s.log10_p,
                "allowlisted": aid in opts.allowlist,
                "features": fmap[aid],
            }
        )
    accounts.sort(key=lambda a: (-a["score"], a["account_id"]))
    t_end = time.perf_counter()
    return {
        "accounts": accounts,
        "campaigns": campaigns,
        "skipped": ing.skipped_summary(),
        "summary": {
            "events": ing.accepted,
            "accounts": len(accounts),
            "flagged_accounts": sum(a["flagged"] for a in accounts),
            "campaigns": len(campaigns),
            "flagged_campaigns": sum(c["flagged"] for c in campaigns),
            "engine": opts.engine,
            "scorer": opts.scorer,
            "embeddings": opts.embeddings,
            "target_fpr": opts.target_fpr,
            "threshold": threshold.as_dict(),
            "null_rates": scorer.null_rates_,
            "seconds": {
                "ingest": round(t_ingest - t0, 3),
                "embeddings": round(t_embed - t_ingest, 3),
                "features": round(t_feat - t_embed, 3),
                "scoring": round(t_end - t_feat, 3),
                "total": round(t_end - t0, 3),
            },
        },
    }

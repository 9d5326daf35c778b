"""From a ``scan`` report and our logs to shareable findings: pseudonymised, thresholded, typed.

A :class:`Finding` is one flagged campaign (or one flagged account acting alone) with the
indicators we are willing to share about it, every identifier already a keyed pseudonym:

* ``account`` — each flagged member;
* ``ip-prefix`` — /24 or /64 networks the group used for at least ``min_prefix_share`` of its
  requests, unless more than ``max_share`` of all our accounts also use them (a mobile carrier's
  NAT is not evidence);
* ``email-domain`` and ``payment`` — from billing attributes, with the same population rule;
* ``template`` — recurring prompt framings that carry at least ``min_template_share`` of the
  group's prompts, as keyed MinHash signatures, unless common among our accounts at large;
* a numeric behaviour ``profile`` (medians over members of a few scan features, rounded).

Free text from the report (its reasons name raw prefixes and template hashes) is never copied.
Pure: time comes in as ``now`` (epoch seconds).
"""

from __future__ import annotations

import hashlib
import math
import statistics
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from distillguard.errors import ConfigError, InputError
from distillguard.intel.activity import AccountActivity
from distillguard.intel.pseudonym import KeyRing
from distillguard.intel.templates import (
    Template,
    TemplateConfig,
    extract_templates,
    minhash,
    signature_digest,
)

__all__ = ["PROFILE_FEATURES", "ExportConfig", "Finding", "IndicatorSpec", "build_findings"]

DAY = 86400.0
# Scan features that describe *how* an account queries, independent of who it is.
PROFILE_FEATURES: tuple[str, ...] = (
    "distinct_ratio",
    "single_turn_share",
    "gap_cv",
    "cot_share",
    "diverse_share",
    "logprob_share",
    "long_share",
    "offtemp_share",
    "requests_per_active_hour",
)
_SIMILAR_TEMPLATE = 0.8


@dataclass(frozen=True)
class ExportConfig:
    """What to share and for how long."""

    ttl_days_identity: float = 30.0
    ttl_days_network: float = 14.0
    ttl_days_template: float = 90.0
    min_prefix_share: float = 0.1
    max_share: float = 0.2
    max_templates: int = 8
    min_template_share: float = 0.05
    min_confidence: int = 50
    templates: TemplateConfig = field(default_factory=TemplateConfig)

    def __post_init__(self) -> None:
        for name in ("ttl_days_identity", "ttl_days_network", "ttl_days_template"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not (0 < v <= 366):
                raise ConfigError(
                    f"The '{name}' parameter of ExportConfig must be in (0, 366]. Got {v!r} instead."
                )
        for name in ("min_prefix_share", "max_share", "min_template_share"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not (0 < v <= 1):
                raise ConfigError(
                    f"The '{name}' parameter of ExportConfig must be in (0, 1]. Got {v!r} instead."
                )
        if not isinstance(self.min_confidence, int) or not (0 <= self.min_confidence <= 100):
            raise ConfigError(
                "The 'min_confidence' parameter of ExportConfig must be an int in [0, 100]. "
                f"Got {self.min_confidence!r} instead."
            )


@dataclass(frozen=True)
class IndicatorSpec:
    """One pseudonymous indicator (``value``: HMAC hex, or a template signature's digest)."""

    kind: str
    value: str
    epoch: int
    count: int
    first_seen: float
    last_seen: float
    valid_until: float
    minhash: tuple[int, ...] = ()


@dataclass(frozen=True)
class Finding:
    """A flagged group and what may be shared about it."""

    ref: str
    n_accounts: int
    n_requests: int
    first_seen: float
    last_seen: float
    confidence: int
    profile: dict[str, float]
    indicators: tuple[IndicatorSpec, ...]


def _groups(report: Mapping[str, Any]) -> list[tuple[list[dict[str, Any]], float]]:
    if not isinstance(report, Mapping):
        raise InputError("a scan report must be a JSON object with 'accounts' and 'campaigns' lists")
    accounts = report.get("accounts")
    campaigns = report.get("campaigns", [])
    if not isinstance(accounts, list) or not isinstance(campaigns, list):
        raise InputError("a scan report must be a JSON object with 'accounts' and 'campaigns' lists")
    flagged_camps = {
        c["campaign_id"]: _score(c)
        for c in campaigns
        if isinstance(c, dict) and c.get("flagged") and isinstance(c.get("campaign_id"), str)
    }
    by_camp: dict[str, list[dict[str, Any]]] = {}
    alone: list[dict[str, Any]] = []
    for a in accounts:
        if not isinstance(a, dict) or not isinstance(a.get("account_id"), str):
            raise InputError("each report account needs a string 'account_id'")
        if not a.get("flagged") or a.get("allowlisted"):
            continue
        cid = a.get("campaign_id")
        if isinstance(cid, str) and cid in flagged_camps:
            by_camp.setdefault(cid, []).append(a)
        else:
            alone.append(a)
    out = [(members, flagged_camps[cid]) for cid, members in sorted(by_camp.items())]
    out += [([a], _score(a)) for a in alone]
    return out


def _score(row: dict[str, Any]) -> float:
    v = row.get("score", 0.0)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (0.0 <= v <= 1.0):
        raise InputError(f"a report 'score' must be a number in [0, 1]; got {str(v)[:20]!r}")
    return float(v)


_COUNT_OF = {
    "cot_share": "n_cot",
    "diverse_share": "n_diverse",
    "logprob_share": "n_logprob",
    "long_share": "n_long",
    "offtemp_share": "n_offtemp",  # parameter sweeps: requests off the account's usual temperature
}


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        return None
    return float(x)


def _profile(members: list[dict[str, Any]]) -> dict[str, float]:
    rows: dict[str, list[float]] = {k: [] for k in PROFILE_FEATURES}
    for a in members:
        f = a.get("features")
        n = _num(f.get("n_requests")) if isinstance(f, dict) else None
        if not isinstance(f, dict) or n is None or n <= 0:
            continue
        span = _num(f.get("span_hours")) or 0.0
        vals = {
            "distinct_ratio": _num(f.get("distinct_ratio")),
            "single_turn_share": _num(f.get("single_turn_share")),
            "gap_cv": _num(f.get("gap_cv")),
            "requests_per_active_hour": n / max(1.0, span),
            **{k: (c / n if (c := _num(f.get(col))) is not None else None) for k, col in _COUNT_OF.items()},
        }
        for k, v in vals.items():
            if v is not None:
                rows[k].append(v)
    return {k: round(statistics.median(v), 2) for k, v in rows.items() if v}


@dataclass
class _Collector:
    """The indicators of one group, with the group's time span as the default."""

    epoch: int
    now: float
    first: float
    last: float
    specs: list[IndicatorSpec] = field(default_factory=list)

    def add(
        self,
        kind: str,
        value: str,
        count: int,
        ttl_days: float,
        sig: tuple[int, ...] = (),
        first: float | None = None,
        last: float | None = None,
    ) -> None:
        f = self.first if first is None else first
        la = self.last if last is None else last
        self.specs.append(
            IndicatorSpec(kind, value, self.epoch, count, f, la, max(la, self.now) + ttl_days * DAY, sig)
        )


def _population_templates(
    activity: Mapping[str, AccountActivity], cfg: TemplateConfig
) -> dict[str, list[Template]]:
    return {aid: extract_templates(a.prompts, cfg) for aid, a in activity.items()}


def _similar(a: frozenset[str], b: frozenset[str]) -> bool:
    return len(a & b) >= _SIMILAR_TEMPLATE * len(a | b)


def build_findings(
    report: Mapping[str, Any],
    activity: Mapping[str, AccountActivity],
    keys: KeyRing,
    now: float,
    config: ExportConfig | None = None,
) -> list[Finding]:
    """Return one :class:`Finding` per flagged campaign or lone flagged account of ``report``.

    ``activity`` must come from the logs the report was made from. Groups whose confidence
    (``round(100 * score)``) is below ``config.min_confidence`` are left out. Raises
    :class:`InputError` for a malformed report.
    """
    cfg = config or ExportConfig()
    key = keys.current
    n_pop = max(1, len(activity))
    cap = max(1, int(cfg.max_share * n_pop))
    prefix_pop: Counter[str] = Counter(p for a in activity.values() for p in a.prefixes)
    domain_pop: Counter[str] = Counter(d for a in activity.values() for d in a.attributes.email_domains)
    pop_tpl: dict[str, list[Template]] | None = None
    findings: list[Finding] = []
    for members, score in _groups(report):
        confidence = max(0, min(100, round(100 * score)))
        acts = [activity[m["account_id"]] for m in members if m["account_id"] in activity]
        if confidence < cfg.min_confidence or not acts:
            continue
        first = min(a.first_ts for a in acts)
        last = max(a.last_ts for a in acts)
        n_req = sum(a.n_requests for a in acts)
        out = _Collector(key.epoch, now, first, last)
        add = out.add
        for a in acts:
            add(
                "account",
                key.pseudonym("account", a.account_id),
                a.n_requests,
                cfg.ttl_days_identity,
                first=a.first_ts,
                last=a.last_ts,
            )
            for pay in sorted(a.attributes.payments):
                add("payment", key.pseudonym("payment", pay), a.n_requests, cfg.ttl_days_identity)
        group_prefixes: Counter[str] = Counter()
        for a in acts:
            group_prefixes.update(a.prefixes)
        for p, c in sorted(group_prefixes.items()):
            if c >= cfg.min_prefix_share * n_req and prefix_pop[p] <= cap:
                add("ip-prefix", key.pseudonym("ip-prefix", p), c, cfg.ttl_days_network)
        domains: Counter[str] = Counter(d for a in acts for d in a.attributes.email_domains)
        for d, c in sorted(domains.items()):
            if (c >= 2 or len(acts) == 1) and domain_pop[d] <= cap:
                add("email-domain", key.pseudonym("email-domain", d), c, cfg.ttl_days_identity)
        sample = [p for a in acts for p in a.prompts]
        # A framing must carry a real share of the group's traffic: a hydra mixes in benign
        # conversations, whose incidental framings ("please write in English") are not its own.
        tpls = [
            t
            for t in extract_templates(sample, cfg.templates)
            if t.uses >= cfg.min_template_share * len(sample)
        ]
        if tpls:
            pop_tpl = pop_tpl if pop_tpl is not None else _population_templates(activity, cfg.templates)
            kept = 0
            for t in tpls:
                users = sum(any(_similar(t.shingles, u.shingles) for u in ts) for ts in pop_tpl.values())
                if users > cap:
                    continue  # a framing many of our accounts use says nothing about a campaign
                sig = tuple(minhash(t.shingles, key))
                add("template", signature_digest(sig), t.uses, cfg.ttl_days_template, sig)
                kept += 1
                if kept >= cfg.max_templates:
                    break
        # The campaign's local id (C001) is stable only within one scan; its reference is keyed
        # so partners can follow it across our exports without learning anything.
        group_ref = hashlib.sha256(
            key.subkey("campaign-ref") + "\x00".join(sorted(a.account_id for a in acts)).encode()
        ).hexdigest()[:32]
        findings.append(
            Finding(group_ref, len(acts), n_req, first, last, confidence, _profile(members), tuple(out.specs))
        )
    return findings

"""Match our own accounts against partner indicators: alerts with reasons, and a risk input.

For every account in our logs we compute, under each key epoch we hold, the pseudonyms a
partner could have shared (account id, /24 or /64 prefixes, e-mail domains, payment
fingerprints) and the keyed MinHash signatures of its recurring templates, then look them up
among the partner indicators that are live at ``now`` (not revoked, inside their validity
window, same coalition, an epoch we hold). Evidence is grouped per partner campaign and
combined as a noisy-OR of per-kind strengths scaled by the partner's confidence::

    risk = 1 - prod(1 - strength(kind) * confidence / 100)

An account is alerted when ``risk >= alert_threshold``. An IP prefix or e-mail domain alone
never reaches the default threshold: shared infrastructure is corroboration, not proof. Pure.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from distillguard.errors import ConfigError
from distillguard.intel.activity import AccountActivity
from distillguard.intel.importer import PartnerIndicator
from distillguard.intel.pseudonym import KeyRing
from distillguard.intel.templates import TemplateConfig, extract_templates, jaccard, minhash

__all__ = ["Alert", "Evidence", "MatchConfig", "is_live", "match", "risk_input"]

_LABEL = {
    "account": "account id",
    "ip-prefix": "IP prefix",
    "email-domain": "e-mail domain",
    "payment": "payment fingerprint",
    "template": "template signature",
}


@dataclass(frozen=True)
class MatchConfig:
    """Strength of each kind of evidence (in [0, 1]) and the thresholds."""

    strengths: Mapping[str, float] = field(
        default_factory=lambda: {
            "account": 0.95,
            "payment": 0.9,
            "template": 0.85,
            "ip-prefix": 0.45,
            "email-domain": 0.3,
        }
    )
    min_jaccard: float = 0.6
    alert_threshold: float = 0.5
    templates: TemplateConfig = field(default_factory=TemplateConfig)

    def __post_init__(self) -> None:
        for k, v in self.strengths.items():
            if not isinstance(v, (int, float)) or not (0 <= v <= 1):
                raise ConfigError(
                    f"The strength of {k!r} in MatchConfig must be in [0, 1]. Got {v!r} instead."
                )
        for name in ("min_jaccard", "alert_threshold"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not (0 < v <= 1):
                raise ConfigError(
                    f"The '{name}' parameter of MatchConfig must be in (0, 1]. Got {v!r} instead."
                )


@dataclass(frozen=True)
class Evidence:
    """One matched indicator (``similarity`` is the template Jaccard estimate, else 1)."""

    kind: str
    indicator_id: str
    similarity: float
    confidence: int


@dataclass(frozen=True)
class Alert:
    """An account of ours that matches a partner's campaign."""

    account_id: str
    risk: float
    source: str
    source_name: str
    campaign_id: str | None
    campaign_name: str | None
    evidence: tuple[Evidence, ...]

    @property
    def reason(self) -> str:
        """One line: which partner campaign, and on what evidence."""
        parts: list[str] = []
        for kind in ("account", "payment", "template", "ip-prefix", "email-domain"):
            ev = [e for e in self.evidence if e.kind == kind]
            if not ev:
                continue
            if kind == "template":
                parts.append(f"same {_LABEL[kind]} (J={max(e.similarity for e in ev):.2f})")
            else:
                parts.append(f"same {_LABEL[kind]}" if len(ev) == 1 else f"{len(ev)} same {_LABEL[kind]}s")
        what = f"campaign {self.campaign_name!r}" if self.campaign_name else "indicators"
        return (
            f"account {self.account_id} matches {what} reported by {self.source_name or self.source}: "
            + " and ".join(parts)
            + f" (risk {self.risk:.2f})"
        )


def is_live(ind: PartnerIndicator, now: float) -> bool:
    """Whether an indicator may match at ``now``: not revoked and inside [valid_from, valid_until)."""
    if ind.revoked or now < ind.valid_from:
        return False
    return ind.valid_until is None or now < ind.valid_until


def _latest(indicators: Iterable[PartnerIndicator]) -> list[PartnerIndicator]:
    best: dict[str, PartnerIndicator] = {}
    for i in indicators:
        if i.id not in best or i.modified > best[i.id].modified:
            best[i.id] = i
    return list(best.values())


def match(
    indicators: Iterable[PartnerIndicator],
    activity: Mapping[str, AccountActivity],
    keys: KeyRing,
    now: float,
    config: MatchConfig | None = None,
) -> list[Alert]:
    """Return alerts (highest risk first) for our accounts that match live partner indicators.

    Only the newest version of each indicator id counts, so a revocation published as a new
    version stops matching even when the old version is still stored.
    """
    cfg = config or MatchConfig()
    live = [
        i
        for i in _latest(indicators)
        if is_live(i, now) and i.coalition == keys.coalition and keys.get(i.epoch) is not None
    ]
    exact: dict[tuple[int, str, str], list[PartnerIndicator]] = defaultdict(list)
    tpl: dict[int, list[PartnerIndicator]] = defaultdict(list)
    for i in live:
        if i.kind == "template":
            tpl[i.epoch].append(i)
        else:
            exact[(i.epoch, i.kind, i.value)].append(i)
    epochs = sorted({i.epoch for i in live})
    alerts: list[Alert] = []
    for aid in sorted(activity):
        a = activity[aid]
        hits: dict[tuple[str, str | None], dict[str, Evidence]] = defaultdict(dict)

        def hit(ind: PartnerIndicator, sim: float, hits: Any = hits) -> None:
            group = hits[(ind.source, ind.campaign_id)]
            old = group.get(ind.id)
            if old is None or sim > old.similarity:
                group[ind.id] = Evidence(ind.kind, ind.id, sim, ind.confidence)

        frames = None
        for epoch in epochs:
            key = keys.get(epoch)
            if key is None:  # pragma: no cover - filtered above
                continue
            ids = [
                ("account", aid),
                *(("ip-prefix", p) for p in a.prefixes),
                *(("email-domain", d) for d in a.attributes.email_domains),
                *(("payment", p) for p in a.attributes.payments),
            ]
            for kind, value in ids:
                for ind in exact.get((epoch, kind, key.pseudonym(kind, value)), ()):
                    hit(ind, 1.0)
            if tpl.get(epoch):
                frames = frames if frames is not None else extract_templates(a.prompts, cfg.templates)
                for t in frames:
                    sig = minhash(t.shingles, key)
                    for ind in tpl[epoch]:
                        if (
                            len(ind.minhash) == len(sig)
                            and (j := jaccard(sig, ind.minhash)) >= cfg.min_jaccard
                        ):
                            hit(ind, j)
        for (source, cid), group in hits.items():
            keep = 1.0
            for e in group.values():
                s = cfg.strengths.get(e.kind, 0.0) * (e.similarity if e.kind == "template" else 1.0)
                keep *= 1.0 - s * max(0, min(100, e.confidence)) / 100
            risk = round(1.0 - keep, 4)
            if risk >= cfg.alert_threshold:
                some = next(i for i in live if i.id in group)
                alerts.append(
                    Alert(
                        aid,
                        risk,
                        source,
                        some.source_name,
                        cid,
                        some.campaign_name,
                        tuple(sorted(group.values(), key=lambda e: (e.kind, e.indicator_id))),
                    )
                )
    alerts.sort(key=lambda al: (-al.risk, al.account_id))
    return alerts


def risk_input(alerts: Iterable[Alert], restrict_at: float = 0.75) -> dict[str, Any]:
    """Return ``{"accounts": [{account_id, score, flagged, reasons}]}`` for the gateway.

    The shape is that of a ``scan`` report, so ``distillguard gateway import-risk`` (and
    ``Store.import_risk``) apply it unchanged: one row per account, its highest risk, all
    reasons; ``flagged`` when the risk reaches ``restrict_at``.
    """
    rows: dict[str, dict[str, Any]] = {}
    for al in alerts:
        r = rows.setdefault(
            al.account_id, {"account_id": al.account_id, "score": 0.0, "flagged": False, "reasons": []}
        )
        r["score"] = max(r["score"], al.risk)
        r["flagged"] = r["score"] >= restrict_at
        r["reasons"].append(al.reason)
    return {"accounts": sorted(rows.values(), key=lambda r: (-r["score"], r["account_id"]))}

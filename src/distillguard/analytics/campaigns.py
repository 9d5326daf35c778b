"""Group accounts that act as one: a graph of linking evidence, then connected components.

Two accounts are linked when they each reuse (at least twice) the same template signature, or
when they share a /24 client prefix together with a user agent. Templates and user agents
used by a large share of all accounts (``max_share``, default 20%) link nothing: "Summarize this:" framing or
a browser's user agent is shared by strangers. A template also links an account only where it
is at least ``min_template_share`` (default 5%) of that account's requests: a campaign's
members run the template (the sybils of the simulator 9–59% each, a hydra member about half),
while people share common openings ("I want you to act as") now and then, and an account that
replays many people's prompts, or mixes them in, shares a little of everyone's openings; kept,
those links chain strangers into one component (a 61-account "campaign" of 8 hydra members and
53 benign accounts in the development simulation). A component of at least ``min_size`` accounts is
a candidate campaign; it is scored by pooling its members' traffic into one pseudo-account, so
members that each look clean are caught together. Pure: stdlib only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from distillguard.errors import ConfigError

__all__ = ["CampaignCandidate", "LinkConfig", "find_candidates"]


@dataclass(frozen=True)
class LinkConfig:
    """Linking parameters."""

    min_size: int = 3
    max_share: float = 0.2
    min_template_share: float = 0.05

    def __post_init__(self) -> None:
        if not isinstance(self.min_size, int) or self.min_size < 2:
            raise ConfigError(
                f"The 'min_size' parameter of LinkConfig must be an int >= 2. Got {self.min_size!r} instead."
            )
        if not (0 < self.max_share <= 1):
            raise ConfigError(
                f"The 'max_share' parameter of LinkConfig must be in (0, 1]. Got {self.max_share!r} instead."
            )
        if not (0 <= self.min_template_share < 1):
            raise ConfigError(
                "The 'min_template_share' parameter of LinkConfig must be in [0, 1). "
                f"Got {self.min_template_share!r} instead."
            )


@dataclass(frozen=True)
class CampaignCandidate:
    """A connected group of accounts and the evidence on its edges."""

    campaign_id: str
    accounts: tuple[str, ...]
    evidence: tuple[str, ...]


class _DSU:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def find_candidates(
    links: list[dict[str, Any]],
    n_accounts: int,
    config: LinkConfig | None = None,
    requests_of: Mapping[str, int] | None = None,
) -> list[CampaignCandidate]:
    """Return candidate campaigns from link rows ``{account_id, kind, value, c}``.

    ``requests_of`` (account → its requests) applies ``min_template_share``; without it every
    template row links. Deterministic: campaign ids are ``C001``... in order of each group's
    smallest account id.
    """
    cfg = config or LinkConfig()
    cap = max(cfg.min_size, int(cfg.max_share * n_accounts))
    by_value: dict[tuple[str, str], set[str]] = defaultdict(set)
    ua_of: dict[str, set[str]] = defaultdict(set)
    for r in links:
        kind, value, acct = str(r["kind"]), str(r["value"]), str(r["account_id"])
        n = requests_of.get(acct) if requests_of is not None else None
        if kind == "tpl" and n is not None and float(r["c"]) < cfg.min_template_share * n:
            continue
        by_value[(kind, value)].add(acct)
        if kind == "ua":
            ua_of[acct].add(value)
    # Each account's user agents that are not too common to link (decided once per account,
    # not once per shared /24 it appears in).
    rare_ua_of = {
        a: [ua for ua in uas if len(by_value[("ua", ua)]) <= cap] for a, uas in ua_of.items()
    }
    dsu = _DSU()
    for (kind, _value), accts in sorted(by_value.items()):
        if len(accts) < 2 or len(accts) > cap:
            continue
        members = sorted(accts)
        if kind == "tpl":
            for a in members[1:]:
                dsu.union(members[0], a)
        elif kind == "ip24":
            # A /24 alone is weak (carrier NAT, one office); require a rare user agent in common.
            groups: dict[str, list[str]] = defaultdict(list)
            for a in members:
                for ua in rare_ua_of.get(a, ()):
                    groups[ua].append(a)
            for g in groups.values():
                if len(g) >= 2:
                    for a in g[1:]:
                        dsu.union(g[0], a)
    comps: dict[str, list[str]] = defaultdict(list)
    for a in list(dsu.parent):
        comps[dsu.find(a)].append(a)
    in_campaign = {a for m in comps.values() if len(m) >= cfg.min_size for a in m}
    out: list[CampaignCandidate] = []
    evidence_by_acct: dict[str, set[str]] = defaultdict(set)
    for (kind, value), accts in by_value.items():
        if 2 <= len(accts) <= cap and kind in ("tpl", "ip24"):
            ev = f"{kind}:{value}"
            for a in accts & in_campaign:
                evidence_by_acct[a].add(ev)
    for root in sorted(comps, key=lambda k: min(comps[k])):
        members = sorted(comps[root])
        if len(members) < cfg.min_size:
            continue
        shared: dict[str, int] = defaultdict(int)
        for a in members:
            for ev in evidence_by_acct[a]:
                shared[ev] += 1
        top = sorted(shared.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
        ev_text = tuple(
            (
                f"{c} members reuse template {v.split(':', 1)[1][:10]}"
                if v.startswith("tpl:")
                else f"{c} members connect from {v.split(':', 1)[1]}.x"
            )
            for v, c in top
            if c >= 2
        )
        out.append(CampaignCandidate(f"C{len(out) + 1:03d}", tuple(members), ev_text))
    return out

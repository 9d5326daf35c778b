"""What our own logs say about each account, reduced to what intel export and matching need.

:func:`collect_activity` folds validated :class:`~distillguard.analytics.log_record.LogRecord`
rows (and optional billing attributes: e-mail, payment fingerprint) into one
:class:`AccountActivity` per account: request counts and times, the /24 or /64 prefixes it came
from, and a bounded sample of its prompts for template recovery. It is the only place raw
identifiers are held; nothing here leaves the process. Pure: stdlib only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from distillguard.analytics.log_record import LogRecord
from distillguard.errors import InputError
from distillguard.intel.pseudonym import email_domain, ip_prefix

__all__ = ["AccountActivity", "AccountAttributes", "collect_activity", "parse_attributes"]

# Enough prompts to recover every template an account uses more than a handful of times, few
# enough that a 10M-request account does not hold its whole history in memory.
MAX_PROMPTS_PER_ACCOUNT = 400


@dataclass(frozen=True)
class AccountAttributes:
    """Billing-side identifiers of an account (from the account database, not the request log)."""

    email_domains: frozenset[str] = frozenset()
    payments: frozenset[str] = frozenset()


@dataclass
class AccountActivity:
    """One account's traffic, aggregated."""

    account_id: str
    n_requests: int = 0
    first_ts: float = float("inf")
    last_ts: float = float("-inf")
    prefixes: Counter[str] = field(default_factory=Counter)
    prompts: list[str] = field(default_factory=list)
    attributes: AccountAttributes = field(default_factory=AccountAttributes)


def collect_activity(
    records: Iterable[LogRecord],
    attributes: Mapping[str, AccountAttributes] | None = None,
    max_prompts: int = MAX_PROMPTS_PER_ACCOUNT,
) -> dict[str, AccountActivity]:
    """Return ``{account_id: AccountActivity}`` for the records (unparseable IPs are ignored).

    Accounts that appear only in ``attributes`` are not included: with no traffic there is
    nothing to report or to match.
    """
    out: dict[str, AccountActivity] = {}
    attrs = attributes or {}
    prefix_cache: dict[str, str | None] = {}
    for r in records:
        a = out.get(r.account_id)
        if a is None:
            a = out[r.account_id] = AccountActivity(
                r.account_id, attributes=attrs.get(r.account_id, AccountAttributes())
            )
        a.n_requests += 1
        a.first_ts = min(a.first_ts, r.ts)
        a.last_ts = max(a.last_ts, r.ts)
        if r.ip:
            if r.ip not in prefix_cache:
                try:
                    prefix_cache[r.ip] = ip_prefix(r.ip)
                except InputError:
                    prefix_cache[r.ip] = None
            p = prefix_cache[r.ip]
            if p is not None:
                a.prefixes[p] += 1
        if len(a.prompts) < max_prompts:
            a.prompts.append(r.prompt)
    return out


def parse_attributes(rows: Iterable[Mapping[str, object]]) -> dict[str, AccountAttributes]:
    """Build attributes from rows ``{account_id, email?, payment_fingerprint?}`` (CSV or JSONL rows).

    Raises :class:`InputError` for a row without an ``account_id`` or with an unusable e-mail.
    """
    emails: dict[str, set[str]] = {}
    pays: dict[str, set[str]] = {}
    for i, row in enumerate(rows, 1):
        aid = row.get("account_id")
        if not isinstance(aid, str) or not aid:
            raise InputError(f"attribute row {i} has no 'account_id'")
        email = row.get("email")
        if isinstance(email, str) and email.strip():
            emails.setdefault(aid, set()).add(email_domain(email))
        pay = row.get("payment_fingerprint")
        if isinstance(pay, str) and pay.strip():
            pays.setdefault(aid, set()).add(pay.strip())
    return {
        a: AccountAttributes(frozenset(emails.get(a, ())), frozenset(pays.get(a, ())))
        for a in set(emails) | set(pays)
    }

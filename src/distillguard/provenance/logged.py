"""Suspect queries from our own request log: the prompts an extraction account actually sent.

A student trained on our answers to some prompts tends to reproduce those answers when asked the
same prompts again, so the prompts the suspected account sent (our request log holds them) make
the strongest black-box queries. The radioactivity test stays exact with them: the account chose
its prompts without our key, and a model that never trained on our watermarked text answers them
independently of the key (the lab's clean-control student, trained on our *unwatermarked*
answers to the very same prompts, measures exactly this). Tuples stay globally de-duplicated.

Records are read with the same validation as ``distillguard scan``
(:func:`distillguard.analytics.validate_record`): ``prompt`` or the last user turn of
``messages``. Failed requests (``status`` ≥ 400) are skipped: they served no answer.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distillguard.analytics.log_record import LogRecord, validate_record
from distillguard.errors import InputError

__all__ = ["LoggedPrompts", "logged_prompts", "read_logged_prompts"]


@dataclass(frozen=True)
class LoggedPrompts:
    """The distinct prompts one account sent, oldest first, and what was left out."""

    account: str
    prompts: tuple[str, ...]
    n_requests: int  # the account's valid, successful requests
    n_rejected: int  # log lines that failed validation (any account)
    n_failed: int  # the account's requests with status >= 400


def logged_prompts(records: Iterable[Mapping[str, Any]], account: str) -> LoggedPrompts:
    """The distinct prompts ``account`` sent, in time order (ties keep log order).

    Args:
        records: decoded request-log objects (see ``docs/log-format.md``).
        account: the ``account_id`` to keep.

    Raises:
        InputError: the account sent no successful request with a prompt (the message names
            the most frequent accounts of the log, to catch a typo).

    >>> logged_prompts([{"ts": 1.7e9, "account_id": "a", "prompt": "hi"},
    ...                 {"ts": 1.7e9, "account_id": "a", "prompt": "hi"}], "a").prompts
    ('hi',)
    """
    mine: list[LogRecord] = []
    seen_accounts: Counter[str] = Counter()
    rejected = failed = 0
    for raw in records:
        rec = validate_record(raw)
        if not isinstance(rec, LogRecord):
            rejected += 1
            continue
        seen_accounts[rec.account_id] += 1
        if rec.account_id != account:
            continue
        if rec.status is not None and rec.status >= 400:
            failed += 1
            continue
        mine.append(rec)
    if not mine:
        top = ", ".join(repr(a) for a, _ in seen_accounts.most_common(5)) or "none"
        raise InputError(
            f"The request log has no successful request from account {account!r} "
            f"({rejected} invalid line(s); most frequent accounts: {top})."
        )
    mine.sort(key=lambda r: r.ts)
    prompts = tuple(dict.fromkeys(r.prompt for r in mine if r.prompt.strip()))
    return LoggedPrompts(account, prompts, len(mine), rejected, failed)


def _lines(path: Path) -> Iterable[dict[str, Any]]:
    opener: Any = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    obj = None
                # a non-object line is an invalid record (counted), not the end of the audit
                yield obj if isinstance(obj, dict) else {"_line": n}
    except OSError as exc:
        raise InputError(f"Cannot read request log {str(path)!r}: {exc.strerror or exc}.") from None
    except UnicodeDecodeError:
        raise InputError(f"Request log {str(path)!r} is not UTF-8 text.") from None


def read_logged_prompts(path: str | Path, account: str) -> LoggedPrompts:
    """:func:`logged_prompts` over a request-log JSONL file (``.jsonl`` or ``.jsonl.gz``).

    Raises:
        InputError: unreadable file, or no successful request from ``account``.
    """
    return logged_prompts(_lines(Path(path)), account)

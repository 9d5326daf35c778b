"""Edge: read request logs (JSONL, Parquet, SQLite, PostgreSQL) and billing attributes from disk.

Logs are read by :func:`distillguard.analytics.ingest.iter_records`, the same reader and
validation a ``scan`` uses, so the activity we export from and match on is what a scan accepts;
rejected rows are skipped here (``scan`` is where they are quarantined and counted).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from distillguard.analytics.ingest import iter_records
from distillguard.errors import InputError
from distillguard.intel.activity import AccountActivity, AccountAttributes, collect_activity, parse_attributes

__all__ = ["iter_records", "read_activity", "read_attributes"]


def read_attributes(path: Path) -> dict[str, AccountAttributes]:
    """Read ``account_id,email,payment_fingerprint`` rows from a CSV or JSONL file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"Cannot read the attributes file {str(path)!r}: {exc}.") from None
    if path.suffix in (".jsonl", ".json"):
        rows = []
        for i, line in enumerate(text.split("\n"), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise InputError(f"{path}:{i}: not valid JSON ({exc.msg})") from None
        return parse_attributes(r for r in rows if isinstance(r, dict))
    return parse_attributes(csv.DictReader(text.splitlines()))


def read_activity(sources: list[str], attributes: Path | None = None) -> dict[str, AccountActivity]:
    """Return per-account activity from log sources (raises :class:`InputError` if none is valid)."""
    attrs = read_attributes(attributes) if attributes else None
    act = collect_activity(iter_records(sources), attrs)
    if not act:
        raise InputError(f"No valid request in {', '.join(sources)}.")
    return act

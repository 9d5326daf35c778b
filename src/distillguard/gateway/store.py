"""The gateway's store: accounts, hashed API keys, the request log and the actions table.

SQLite (WAL) by default, PostgreSQL (psycopg 3) by URL. The ``request_log`` columns are the
canonical log record of :mod:`distillguard.analytics.log_record`, so ``distillguard scan``
reads this database directly. Every statement goes through one lock-protected connection:
the gateway writes from a single log-writer thread and reads little, so this is not a
bottleneck, and it keeps SQLite's one-writer rule trivially true.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distillguard.analytics.log_record import FIELDS
from distillguard.errors import ConfigError, InputError

__all__ = ["Account", "ApiKey", "Store", "hash_key", "open_store"]

KEY_PREFIX = "dg-"
_JSON_COLS = ("params", "messages")
_INT_COLS = ("prompt_tokens", "completion_tokens", "status")
_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS accounts (account_id TEXT PRIMARY KEY, name TEXT NOT NULL, "
    "tier TEXT NOT NULL DEFAULT 'standard', status TEXT NOT NULL DEFAULT 'active', "
    "risk DOUBLE PRECISION NOT NULL DEFAULT 0, created_at DOUBLE PRECISION NOT NULL)",
    "CREATE TABLE IF NOT EXISTS api_keys (key_id TEXT PRIMARY KEY, account_id TEXT NOT NULL, "
    "key_hash TEXT NOT NULL UNIQUE, created_at DOUBLE PRECISION NOT NULL, "
    "revoked_at DOUBLE PRECISION)",
    "CREATE TABLE IF NOT EXISTS actions (id {serial}, ts DOUBLE PRECISION NOT NULL, "
    "account_id TEXT NOT NULL, action TEXT NOT NULL, reason TEXT NOT NULL, actor TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS request_log ("
    + ", ".join(f"{c} {'INTEGER' if c in _INT_COLS else 'DOUBLE PRECISION' if c == 'latency_ms' else 'TEXT'}"
                for c in FIELDS)
    + ", watermarked INTEGER, prompt_sha256 TEXT)",
    "CREATE INDEX IF NOT EXISTS request_log_account ON request_log (account_id, ts)",
    "CREATE TABLE IF NOT EXISTS campaigns (campaign_id TEXT PRIMARY KEY, score DOUBLE PRECISION NOT NULL, "
    "accounts TEXT NOT NULL, reasons TEXT NOT NULL, source TEXT NOT NULL, "
    "imported_at DOUBLE PRECISION NOT NULL)",
]
# Actions that an operator should look at: entering a restrictive band, canary enrolment,
# and risk raised by a scan or a partner's intel.
ALERT_ACTIONS = ("band:throttle", "band:restrict", "band:block", "canary:on")
LOG_COLUMNS: tuple[str, ...] = (*FIELDS, "watermarked", "prompt_sha256")


def hash_key(key: str) -> str:
    """Return the SHA-256 hex digest under which an API key is stored (keys are 256-bit random)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Account:
    """An account row."""

    account_id: str
    name: str
    tier: str
    status: str
    risk: float
    created_at: float


@dataclass(frozen=True)
class ApiKey:
    """A key row (never holds the key itself)."""

    key_id: str
    account_id: str
    created_at: float
    revoked_at: float | None


class Store:
    """Thread-safe access to the gateway tables; create with :func:`open_store`."""

    def __init__(self, conn: Any, dialect: str, reconnect: Callable[[], Any] | None = None) -> None:
        self._conn = conn
        self._reconnect = reconnect
        self._dialect = dialect
        self._lock = threading.Lock()
        serial = "INTEGER PRIMARY KEY AUTOINCREMENT" if dialect == "sqlite" else "BIGSERIAL PRIMARY KEY"
        for stmt in _SCHEMA:
            self._exec(stmt.format(serial=serial))

    def _sql(self, sql: str) -> str:
        return sql if self._dialect == "sqlite" else sql.replace("?", "%s")

    def _exec(self, sql: str, args: tuple[Any, ...] = (), many: list[tuple[Any, ...]] | None = None
              ) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._exec_locked(sql, args, many)
            except Exception:
                broken = getattr(self._conn, "broken", False) or getattr(self._conn, "closed", False)
                if self._reconnect is None or not broken:
                    raise
            # A dropped PostgreSQL connection (server restart): reconnect once and retry.
            # the old connection is already broken; closing is best effort
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = self._reconnect()
            return self._exec_locked(sql, args, many)

    def _exec_locked(self, sql: str, args: tuple[Any, ...], many: list[tuple[Any, ...]] | None
                     ) -> list[tuple[Any, ...]]:
        cur = self._conn.cursor()
        try:
            if many is not None:
                cur.executemany(self._sql(sql), many)
            else:
                cur.execute(self._sql(sql), args)
            rows = cur.fetchall() if cur.description else []
            self._conn.commit()
        except Exception:
            # a broken connection cannot roll back; the caller sees the first error
            with contextlib.suppress(Exception):
                self._conn.rollback()
            raise
        finally:
            # closing a cursor of a dead connection: nothing to release
            with contextlib.suppress(Exception):
                cur.close()
        return list(rows)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    # accounts and keys -------------------------------------------------------------------
    def create_account(self, name: str, tier: str = "standard", account_id: str | None = None) -> Account:
        """Create an account (tier ``standard`` or ``research``); returns it."""
        if tier not in ("standard", "research"):
            raise InputError(f"tier must be 'standard' or 'research'. Got {tier!r} instead.")
        if not name or len(name) > 200:
            raise InputError("account name must be 1-200 characters")
        acc = Account(account_id or "acct_" + secrets.token_hex(8), name, tier, "active", 0.0, time.time())
        self._exec("INSERT INTO accounts VALUES (?, ?, ?, ?, ?, ?)",
                   (acc.account_id, acc.name, acc.tier, acc.status, acc.risk, acc.created_at))
        return acc

    def get_account(self, account_id: str) -> Account | None:
        """Return the account or ``None``."""
        rows = self._exec("SELECT account_id, name, tier, status, risk, created_at FROM accounts "
                          "WHERE account_id = ?", (account_id,))
        return Account(*rows[0]) if rows else None

    def list_accounts(self) -> list[Account]:
        """Return every account, oldest first."""
        rows = self._exec("SELECT account_id, name, tier, status, risk, created_at FROM accounts "
                          "ORDER BY created_at")
        return [Account(*r) for r in rows]

    def update_account(self, account_id: str, *, status: str | None = None, tier: str | None = None,
                       risk: float | None = None) -> Account:
        """Change status / tier / risk; raises :class:`InputError` for an unknown account."""
        if self.get_account(account_id) is None:
            raise InputError(f"no account {account_id!r}")
        for col, val in (("status", status), ("tier", tier), ("risk", risk)):
            if val is not None:
                self._exec(f"UPDATE accounts SET {col} = ? WHERE account_id = ?", (val, account_id))
        acc = self.get_account(account_id)
        if acc is None:
            raise InputError(f"no account {account_id!r}")
        return acc

    def import_risk(self, report: dict[str, Any], actor: str = "import") -> int:
        """Set account risk from a ``scan`` report.json (``{"accounts": [{account_id, score,
        flagged, reasons}]}``); returns how many known accounts were updated.

        ``risk = clip(score, 0, 1)``, raised to 0.75 (the restrict band) for flagged accounts.
        Unknown accounts are skipped; raises :class:`InputError` for a malformed report.
        """
        rows = report.get("accounts") if isinstance(report, dict) else None
        if not isinstance(rows, list):
            raise InputError("a scan report must be a JSON object with an 'accounts' list")
        n = 0
        for a in rows:
            if not isinstance(a, dict) or not isinstance(a.get("account_id"), str):
                raise InputError("each report account needs a string 'account_id'")
            score = a.get("score", 0.0)
            if not isinstance(score, (int, float)) or isinstance(score, bool) or score != score:
                raise InputError(f"account {a['account_id']!r}: 'score' must be a number")
            risk = min(1.0, max(0.0, float(score)))
            if a.get("flagged"):
                risk = max(risk, 0.75)
            if self.get_account(a["account_id"]) is None:
                continue
            self.update_account(a["account_id"], risk=risk)
            why = "; ".join(str(r) for r in a.get("reasons") or [])[:500]
            self.record_action(a["account_id"], "set_risk", f"risk {risk:.2f} from scan: {why}", actor)
            n += 1
        self._import_campaigns(report.get("campaigns") or [], actor)
        return n

    def _import_campaigns(self, campaigns: Any, source: str) -> None:
        if not isinstance(campaigns, list):
            raise InputError("a scan report's 'campaigns' must be a list")
        now = time.time()
        for c in campaigns:
            if not (isinstance(c, dict) and isinstance(c.get("campaign_id"), str)
                    and isinstance(c.get("accounts"), list)):
                raise InputError("each report campaign needs a string 'campaign_id' and an 'accounts' list")
            score = c.get("score", 0.0)
            if not isinstance(score, (int, float)) or isinstance(score, bool) or score != score:
                raise InputError(f"campaign {c['campaign_id']!r}: 'score' must be a number")
            args = (float(score), json.dumps([str(a) for a in c["accounts"]]),
                    json.dumps([str(r) for r in c.get("reasons") or []]), source, now, c["campaign_id"])
            # Replace in two portable statements: the same SQL on SQLite and PostgreSQL.
            self._exec("DELETE FROM campaigns WHERE campaign_id = ?", (c["campaign_id"],))
            self._exec("INSERT INTO campaigns (score, accounts, reasons, source, imported_at, campaign_id) "
                       "VALUES (?, ?, ?, ?, ?, ?)", args)

    def list_campaigns(self) -> list[dict[str, Any]]:
        """Imported campaigns, highest score first."""
        rows = self._exec("SELECT campaign_id, score, accounts, reasons, source, imported_at FROM campaigns "
                          "ORDER BY score DESC, campaign_id")
        return [{"campaign_id": r[0], "score": r[1], "accounts": json.loads(r[2]),
                 "reasons": json.loads(r[3]), "source": r[4], "imported_at": r[5]} for r in rows]

    def list_alerts(self, limit: int = 200) -> list[dict[str, Any]]:
        """Actions an operator should review (:data:`ALERT_ACTIONS`, scan/intel risk), newest first."""
        marks = ", ".join("?" for _ in ALERT_ACTIONS)
        rows = self._exec("SELECT ts, account_id, action, reason, actor FROM actions "
                          f"WHERE action IN ({marks}) OR (action = 'set_risk' AND actor <> 'admin') "
                          "ORDER BY id DESC LIMIT ?",
                          (*ALERT_ACTIONS, limit))
        return [dict(zip(("ts", "account_id", "action", "reason", "actor"), r, strict=True)) for r in rows]

    def create_key(self, account_id: str) -> tuple[ApiKey, str]:
        """Create a key for an account; returns the row and the secret key (shown once)."""
        if self.get_account(account_id) is None:
            raise InputError(f"no account {account_id!r}")
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        row = ApiKey("key_" + secrets.token_hex(6), account_id, time.time(), None)
        self._exec("INSERT INTO api_keys VALUES (?, ?, ?, ?, ?)",
                   (row.key_id, account_id, hash_key(secret), row.created_at, None))
        return row, secret

    def list_keys(self, account_id: str | None = None) -> list[ApiKey]:
        """Return key rows (optionally for one account)."""
        sql = "SELECT key_id, account_id, created_at, revoked_at FROM api_keys"
        rows = (self._exec(sql + " WHERE account_id = ? ORDER BY created_at", (account_id,))
                if account_id else self._exec(sql + " ORDER BY created_at"))
        return [ApiKey(*r) for r in rows]

    def revoke_key(self, key_id: str, account_id: str | None = None) -> None:
        """Revoke a key (restricted to ``account_id`` when given); unknown key → InputError."""
        rows = self._exec("SELECT account_id FROM api_keys WHERE key_id = ?", (key_id,))
        if not rows or (account_id is not None and rows[0][0] != account_id):
            raise InputError(f"no key {key_id!r}")
        self._exec("UPDATE api_keys SET revoked_at = ? WHERE key_id = ?", (time.time(), key_id))

    def authenticate(self, secret: str) -> tuple[ApiKey, Account] | None:
        """Return the live key and its account for a presented secret, else ``None``."""
        digest = hash_key(secret)
        rows = self._exec(
            "SELECT k.key_id, k.account_id, k.created_at, k.revoked_at, k.key_hash, a.name, a.tier, "
            "a.status, a.risk, a.created_at FROM api_keys k JOIN accounts a "
            "ON a.account_id = k.account_id WHERE k.key_hash = ?", (digest,))
        # The lookup is by hash of a 256-bit secret; compare again in constant time for defence
        # in depth against a store that matches case-insensitively or by prefix.
        if not rows or not hmac.compare_digest(rows[0][4], digest) or rows[0][3] is not None:
            return None
        r = rows[0]
        return ApiKey(*r[:4]), Account(r[1], *r[5:])

    # actions and log ---------------------------------------------------------------------
    def record_action(self, account_id: str, action: str, reason: str, actor: str) -> None:
        """Append an action with its reason to the ``actions`` table."""
        self._exec("INSERT INTO actions (ts, account_id, action, reason, actor) VALUES (?, ?, ?, ?, ?)",
                   (time.time(), account_id, action, reason, actor))

    def list_actions(self, account_id: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """Return recent actions, newest first."""
        sql = "SELECT ts, account_id, action, reason, actor FROM actions"
        rows = (self._exec(sql + " WHERE account_id = ? ORDER BY id DESC LIMIT ?", (account_id, limit))
                if account_id else self._exec(sql + " ORDER BY id DESC LIMIT ?", (limit,)))
        return [dict(zip(("ts", "account_id", "action", "reason", "actor"), r, strict=True)) for r in rows]

    def insert_log(self, records: list[dict[str, Any]]) -> None:
        """Insert request-log rows (dicts keyed by :data:`LOG_COLUMNS`) in one transaction."""
        if not records:
            return
        rows = [tuple(json.dumps(r[c]) if c in _JSON_COLS and r.get(c) is not None else r.get(c)
                      for c in LOG_COLUMNS) for r in records]
        marks = ", ".join("?" for _ in LOG_COLUMNS)
        self._exec(f"INSERT INTO request_log ({', '.join(LOG_COLUMNS)}) VALUES ({marks})", many=rows)

    def count_log(self, account_id: str | None = None) -> int:
        """Return the number of request-log rows (optionally for one account)."""
        rows = (self._exec("SELECT COUNT(*) FROM request_log WHERE account_id = ?", (account_id,))
                if account_id else self._exec("SELECT COUNT(*) FROM request_log"))
        return int(rows[0][0])

    def recent_log(self, account_id: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """Return recent log rows (newest first) with ts, account, endpoint, status, tokens, latency
        and whether the answer was watermarked."""
        cols = ("ts", "account_id", "endpoint", "model", "status", "prompt_tokens",
                "completion_tokens", "latency_ms", "watermarked")
        sql = f"SELECT {', '.join(cols)} FROM request_log"
        rows = (self._exec(sql + " WHERE account_id = ? ORDER BY ts DESC LIMIT ?", (account_id, limit))
                if account_id else self._exec(sql + " ORDER BY ts DESC LIMIT ?", (limit,)))
        return [dict(zip(cols, r, strict=True)) for r in rows]


def open_store(url: str) -> Store:
    """Open (and create the tables of) ``sqlite:///path`` or ``postgresql://...``."""
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///"):])
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return Store(conn, "sqlite")
    if url.startswith(("postgresql://", "postgres://")):
        import psycopg

        def connect() -> Any:
            return psycopg.connect(url, connect_timeout=5)

        try:
            return Store(connect(), "postgres", reconnect=connect)
        except psycopg.Error as exc:
            raise ConfigError(f"cannot connect to PostgreSQL store: {exc}") from exc
    raise ConfigError(f"store URL must start with sqlite:/// or postgresql://. Got {url!r} instead.")

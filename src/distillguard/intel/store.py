"""Edge: where intel lives — TAXII collections, partner credentials, imported partner indicators.

SQLite (default) or PostgreSQL, chosen by URL exactly as the gateway's store is
(``sqlite:///path`` / ``postgresql://...``), so a deployment can keep intel in the gateway's
database; the tables are prefixed ``intel_``. Every write that takes partner content is one
transaction: a bundle is stored whole or not at all. Credentials are stored as SHA-256 digests
of 256-bit random tokens, never the tokens.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distillguard.errors import ConfigError, InputError
from distillguard.intel.importer import BundleRejected, ParsedBundle, PartnerIndicator, parse_time
from distillguard.intel.stix import PSEUDONYM_TYPE

__all__ = ["Grant", "IntelStore", "Partner", "open_intel_store"]

_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS intel_collections (id TEXT PRIMARY KEY, title TEXT NOT NULL, "
    "description TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL)",
    "CREATE TABLE IF NOT EXISTS intel_partners (name TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, "
    "identity_id TEXT, created_at DOUBLE PRECISION NOT NULL)",
    "CREATE TABLE IF NOT EXISTS intel_grants (partner TEXT NOT NULL, collection_id TEXT NOT NULL, "
    "can_read INTEGER NOT NULL, can_write INTEGER NOT NULL, PRIMARY KEY (partner, collection_id))",
    "CREATE TABLE IF NOT EXISTS intel_objects (collection_id TEXT NOT NULL, id TEXT NOT NULL, "
    "version TEXT NOT NULL, type TEXT NOT NULL, owner TEXT NOT NULL, date_added TEXT NOT NULL, "
    "body TEXT NOT NULL, PRIMARY KEY (collection_id, id, version))",
    "CREATE INDEX IF NOT EXISTS intel_objects_added ON intel_objects (collection_id, date_added)",
    "CREATE TABLE IF NOT EXISTS intel_status (id TEXT PRIMARY KEY, owner TEXT NOT NULL, body TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS intel_indicators (id TEXT NOT NULL, modified DOUBLE PRECISION NOT NULL, "
    "body TEXT NOT NULL, imported_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (id, modified))",
]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
IMPORTED = "imported"  # the pseudo-collection partner bundles imported from files land in


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def taxii_time(ts: float) -> str:
    """Return a TAXII timestamp with microseconds (date_added must order uniquely)."""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Grant:
    """A partner's rights on one collection."""

    collection_id: str
    can_read: bool
    can_write: bool


@dataclass(frozen=True)
class Partner:
    """A coalition member with credentials on our TAXII server (``identity_id`` binds its writes)."""

    name: str
    identity_id: str | None
    grants: tuple[Grant, ...]

    def grant(self, collection_id: str) -> Grant:
        """Return the grant on a collection (no rights when none was given)."""
        return next(
            (g for g in self.grants if g.collection_id == collection_id), Grant(collection_id, False, False)
        )


class IntelStore:
    """Thread-safe access to the intel tables; create with :func:`open_intel_store`."""

    def __init__(self, conn: Any, dialect: str) -> None:
        self._conn, self._dialect = conn, dialect
        self._lock = threading.RLock()
        self._last_added = 0.0
        with self._tx() as cur:
            for stmt in _SCHEMA:
                cur.execute(stmt)

    @contextlib.contextmanager
    def _tx(self) -> Iterator[Any]:
        with self._lock:
            cur = self._conn.cursor()
            try:
                yield _Cursor(cur, self._dialect)
                self._conn.commit()
            except BaseException:
                with contextlib.suppress(Exception):
                    self._conn.rollback()
                raise
            finally:
                with contextlib.suppress(Exception):
                    cur.close()

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    # collections and partners --------------------------------------------------------------
    def create_collection(self, title: str, description: str = "", collection_id: str | None = None) -> str:
        """Create a collection; returns its id (a UUID unless given)."""
        cid = collection_id or str(uuid.uuid4())
        if not title or len(title) > 200:
            raise InputError("a collection title must be 1-200 characters")
        with self._tx() as cur:
            if cur.execute("SELECT 1 FROM intel_collections WHERE id = ?", (cid,)):
                raise InputError(f"a collection {cid!r} already exists")
            cur.execute(
                "INSERT INTO intel_collections VALUES (?, ?, ?, ?)", (cid, title, description, time.time())
            )
        return cid

    def collections(self) -> list[dict[str, str]]:
        """Return every collection ``{id, title, description}``."""
        with self._tx() as cur:
            rows = cur.execute("SELECT id, title, description FROM intel_collections ORDER BY created_at")
        return [{"id": r[0], "title": r[1], "description": r[2]} for r in rows]

    def add_partner(self, name: str, identity_id: str | None, grants: list[Grant]) -> str:
        """Register a partner with rights on collections; returns its secret token (shown once)."""
        if not _NAME.match(name or ""):
            raise InputError(
                f"a partner name must be 1-64 characters of letters, digits, '.', '_', '-'. Got {name!r}."
            )
        known = {c["id"] for c in self.collections()}
        for g in grants:
            if g.collection_id not in known:
                raise InputError(f"no collection {g.collection_id!r}")
        token = secrets.token_urlsafe(32)
        with self._tx() as cur:
            if cur.execute("SELECT 1 FROM intel_partners WHERE name = ?", (name,)):
                raise InputError(f"a partner named {name!r} already exists")
            cur.execute(
                "INSERT INTO intel_partners VALUES (?, ?, ?, ?)",
                (name, _hash(token), identity_id, time.time()),
            )
            for g in grants:
                cur.execute(
                    "INSERT INTO intel_grants VALUES (?, ?, ?, ?)",
                    (name, g.collection_id, int(g.can_read), int(g.can_write)),
                )
        return token

    def authenticate(self, name: str, token: str) -> Partner | None:
        """Return the partner for presented credentials, else ``None`` (constant-time compare)."""
        with self._tx() as cur:
            rows = cur.execute("SELECT token_hash, identity_id FROM intel_partners WHERE name = ?", (name,))
            if not rows or not hmac.compare_digest(rows[0][0], _hash(token)):
                return None
            grants = cur.execute(
                "SELECT collection_id, can_read, can_write FROM intel_grants WHERE partner = ?", (name,)
            )
        return Partner(name, rows[0][1], tuple(Grant(g[0], bool(g[1]), bool(g[2])) for g in grants))

    # objects -------------------------------------------------------------------------------
    def add_objects(
        self, collection_id: str, objects: list[dict[str, Any]], owner: str
    ) -> list[dict[str, str]]:
        """Store validated objects atomically; returns ``[{id, version, date_added}]``.

        Raises :class:`BundleRejected` when any object id is already held by another owner
        (one partner may not overwrite or version another's objects); nothing is stored then.
        Re-sending an identical version is accepted and leaves the stored one unchanged.
        """
        with self._tx() as cur:
            return self._add(cur, collection_id, objects, owner)

    def _add(
        self, cur: _Cursor, collection_id: str, objects: list[dict[str, Any]], owner: str
    ) -> list[dict[str, str]]:
        out: list[dict[str, str]] = []
        # SCOs are content-addressed (the same pseudonym has the same id whoever saw it) and
        # belong to no one; every other object belongs to its producer.
        ids = sorted({o["id"] for o in objects if o["type"] != PSEUDONYM_TYPE})
        clash: list[tuple[Any, ...]] = []
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ", ".join("?" for _ in chunk)
            clash += cur.execute(
                f"SELECT DISTINCT id, owner FROM intel_objects WHERE id IN ({marks}) AND owner <> ?",
                (*chunk, owner),
            )
        shared = [c for c in clash if not _shared_id(c[0])]
        if shared:
            raise BundleRejected([f"{c[0]} belongs to another producer" for c in shared])
        for o in objects:
            version = object_version(o)
            now = max(time.time(), self._last_added + 1e-6)
            self._last_added = now
            added = taxii_time(now)
            exists = cur.execute(
                "SELECT 1 FROM intel_objects WHERE collection_id = ? AND id = ? AND version = ?",
                (collection_id, o["id"], version),
            )
            if not exists:
                cur.execute(
                    "INSERT INTO intel_objects VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (collection_id, o["id"], version, o["type"], owner, added, json.dumps(o, sort_keys=True)),
                )
            out.append({"id": o["id"], "version": version, "date_added": added})
        return out

    def get_objects(
        self,
        collection_id: str,
        *,
        added_after: str | None = None,
        after_id: str | None = None,
        limit: int = 100,
        ids: list[str] | None = None,
        types: list[str] | None = None,
        version: str = "last",
    ) -> tuple[list[dict[str, Any]], list[str], bool]:
        """Return ``(objects, date_added list, more)`` ordered by date_added.

        ``version`` is ``last``, ``first``, ``all`` or a timestamp (TAXII ``match[version]``).
        """
        sql = "SELECT id, version, date_added, body, type FROM intel_objects WHERE collection_id = ?"
        args: list[Any] = [collection_id]
        if added_after and after_id is not None:
            # a `next` token: strictly after (date_added, id), so equal timestamps never skip rows
            sql += " AND (date_added > ? OR (date_added = ? AND id > ?))"
            args += [added_after, added_after, after_id]
        elif added_after:
            sql += " AND date_added > ?"
            args.append(added_after)
        for col, vals in (("id", ids), ("type", types)):
            if vals:
                sql += f" AND {col} IN ({', '.join('?' for _ in vals)})"
                args += vals
        with self._tx() as cur:
            rows = cur.execute(sql + " ORDER BY date_added, id", tuple(args))
        if version in ("last", "first"):
            pick: dict[str, tuple[Any, ...]] = {}
            for r in rows:
                cur_best = pick.get(r[0])
                if cur_best is None or (r[1] > cur_best[1]) == (version == "last"):
                    pick[r[0]] = r
            rows = sorted(pick.values(), key=lambda r: (r[2], r[0]))
        elif version != "all":
            want = taxii_time(parse_time(version))  # InputError for a malformed timestamp
            rows = [r for r in rows if r[1] == want]
        page = rows[:limit]
        return [json.loads(r[3]) for r in page], [r[2] for r in page], len(rows) > limit

    def manifest(
        self,
        collection_id: str,
        *,
        added_after: str | None = None,
        after_id: str | None = None,
        limit: int = 100,
        ids: list[str] | None = None,
        types: list[str] | None = None,
        version: str = "all",
    ) -> tuple[list[dict[str, Any]], bool]:
        """Return ``(manifest records, more)``, ordered by date_added (filters as :meth:`get_objects`)."""
        objs, added, more = self.get_objects(
            collection_id,
            added_after=added_after,
            after_id=after_id,
            limit=limit,
            ids=ids,
            types=types,
            version=version,
        )
        recs = [
            {
                "id": o["id"],
                "date_added": a,
                "version": object_version(o),
                "media_type": "application/stix+json;version=2.1",
            }
            for o, a in zip(objs, added, strict=True)
        ]
        return recs, more

    def save_status(self, status: dict[str, Any], owner: str) -> None:
        """Store a TAXII status resource, readable later by ``owner`` only."""
        with self._tx() as cur:
            cur.execute(
                "INSERT INTO intel_status VALUES (?, ?, ?)", (status["id"], owner, json.dumps(status))
            )

    def get_status(self, status_id: str, owner: str) -> dict[str, Any] | None:
        """Return a status resource ``owner`` created, or ``None``."""
        with self._tx() as cur:
            rows = cur.execute("SELECT body FROM intel_status WHERE id = ? AND owner = ?", (status_id, owner))
        return json.loads(rows[0][0]) if rows else None

    # imported partner content ----------------------------------------------------------------
    def import_bundle(self, parsed: ParsedBundle) -> int:
        """Store a validated partner bundle and its indicators in one transaction; returns how
        many indicator versions are new. Raises :class:`BundleRejected` if it would overwrite
        another producer's objects."""
        n = 0
        with self._tx() as cur:
            self._add(cur, IMPORTED, list(parsed.objects), parsed.source or "unknown")
            for ind in parsed.indicators:
                if not cur.execute(
                    "SELECT 1 FROM intel_indicators WHERE id = ? AND modified = ?", (ind.id, ind.modified)
                ):
                    cur.execute(
                        "INSERT INTO intel_indicators VALUES (?, ?, ?, ?)",
                        (ind.id, ind.modified, json.dumps(_ind_json(ind)), time.time()),
                    )
                    n += 1
        return n

    def indicators(self) -> list[PartnerIndicator]:
        """Return every stored indicator version (matching keeps the newest of each id)."""
        with self._tx() as cur:
            rows = cur.execute("SELECT body FROM intel_indicators")
        out = []
        for r in rows:
            d = json.loads(r[0])
            d["minhash"] = tuple(d["minhash"])
            out.append(PartnerIndicator(**d))
        return out


def _ind_json(ind: PartnerIndicator) -> dict[str, Any]:
    from dataclasses import asdict

    d = asdict(ind)
    d["minhash"] = list(ind.minhash)
    return d


def _shared_id(oid: str) -> bool:
    from distillguard.intel.importer import _SHARED

    return oid in _SHARED


class _Cursor:
    """A cursor that speaks ``?`` placeholders on both dialects and returns lists."""

    def __init__(self, cur: Any, dialect: str) -> None:
        self._cur, self._dialect = cur, dialect

    def execute(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        self._cur.execute(sql if self._dialect == "sqlite" else sql.replace("?", "%s"), args)
        return list(self._cur.fetchall()) if self._cur.description else []


def open_intel_store(url: str) -> IntelStore:
    """Open (and create the tables of) ``sqlite:///path`` or ``postgresql://...``.

    Raises :class:`ConfigError` for another scheme or an unreachable PostgreSQL server.
    """
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///") :])
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
        lite = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
        lite.execute("PRAGMA journal_mode=WAL")
        store = IntelStore(lite, "sqlite")
    elif url.startswith(("postgresql://", "postgres://")):
        import psycopg

        try:
            conn = psycopg.connect(url, connect_timeout=5)
        except psycopg.Error as exc:
            raise ConfigError(f"cannot connect to the PostgreSQL intel store: {exc}") from exc
        store = IntelStore(conn, "postgres")
    else:
        raise ConfigError(f"store URL must start with sqlite:/// or postgresql://. Got {url!r} instead.")
    if not any(c["id"] == IMPORTED for c in store.collections()):
        with contextlib.suppress(Exception):  # a concurrent opener created it first
            store.create_collection("imported partner bundles", "bundles read by `intel import`", IMPORTED)
    return store


def object_version(obj: dict[str, Any]) -> str:
    """Return an object's version as a sortable TAXII timestamp (``modified``, else ``created``).

    Versions are normalised to microseconds so that string order is time order whatever
    precision a producer wrote; SCOs, which have neither property, get the epoch.
    """
    stamp = obj.get("modified") or obj.get("created")
    return taxii_time(parse_time(stamp)) if isinstance(stamp, str) else taxii_time(0.0)


def parse_added_after(value: str) -> str:
    """Normalise a TAXII ``added_after`` value to the stored format; raises :class:`InputError`."""
    return taxii_time(parse_time(value))

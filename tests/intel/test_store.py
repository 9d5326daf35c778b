"""The intel store on SQLite and PostgreSQL: atomic imports, ownership, versions, credentials."""

from __future__ import annotations

import copy
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from distillguard.errors import InputError
from distillguard.intel.importer import BundleRejected, parse_bundle
from distillguard.intel.match import match
from distillguard.intel.stix import Producer, revoke
from distillguard.intel.store import IMPORTED, Grant, open_intel_store

PG = "postgresql://postgres@127.0.0.1:5432/"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    psycopg = pytest.importorskip("psycopg")
    name = "dg_intel_" + secrets.token_hex(4)
    try:
        admin = psycopg.connect(PG + "test", autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL not reachable at 127.0.0.1:5432: {exc}")
    admin.execute(f"CREATE DATABASE {name}")
    try:
        yield PG + name
    finally:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.services)])
def store_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'intel.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(store_url):
    s = open_intel_store(store_url)
    yield s
    s.close()


def _forged(bundle, name="Mallory"):
    """The same objects re-signed by another producer: valid STIX, but not theirs to write."""
    mallory = Producer(name, "fmf-test").identity_id
    out = copy.deepcopy(bundle)
    old = next(o["id"] for o in out["objects"] if o["type"] == "identity" and o["name"] == "Provider A")
    for o in out["objects"]:
        if o["id"] == old:
            o["id"], o["name"] = mallory, name
        if o.get("created_by_ref") == old:
            o["created_by_ref"] = mallory
        if "where_sighted_refs" in o:
            o["where_sighted_refs"] = [mallory]
    return out


def test_import_is_idempotent_and_revocation_wins(store, small_bundle, provider_b, ring):
    from distillguard.intel.logsource import read_activity

    parsed = parse_bundle(json.dumps(small_bundle))
    assert store.import_bundle(parsed) == len(parsed.indicators) > 0
    assert store.import_bundle(parsed) == 0
    act = read_activity([str(provider_b.logs)])
    now = time.time()
    before = match(store.indicators(), act, ring, now)
    assert before
    later = copy.deepcopy(small_bundle)
    later["objects"] = [revoke(o, now + 5) if o["type"] == "indicator" else o for o in later["objects"]]
    store.import_bundle(parse_bundle(json.dumps(later)))
    assert len(store.indicators()) == 2 * len(parsed.indicators)
    assert match(store.indicators(), act, ring, now) == []


def test_other_producer_cannot_overwrite_and_nothing_is_applied(store, small_bundle):
    store.import_bundle(parse_bundle(json.dumps(small_bundle)))
    before = store.get_objects(IMPORTED, version="all", limit=10_000)[0]
    n_ind = len(store.indicators())
    forged = _forged(small_bundle)
    with pytest.raises(BundleRejected, match="belongs to another producer"):
        store.import_bundle(parse_bundle(json.dumps(forged)))
    assert store.get_objects(IMPORTED, version="all", limit=10_000)[0] == before
    assert len(store.indicators()) == n_ind


def test_versions_and_added_after(store, small_bundle):
    cid = store.create_collection("c")
    objs = small_bundle["objects"]
    first = store.add_objects(cid, objs, "a")
    ind = next(o for o in objs if o["type"] == "indicator")
    newer = dict(ind, modified="2099-01-01T00:00:00.000Z", revoked=True)
    store.add_objects(cid, [newer], "a")
    last = store.get_objects(cid, ids=[ind["id"]])[0]
    assert last == [newer]
    assert store.get_objects(cid, ids=[ind["id"]], version="first")[0] == [ind]
    assert len(store.get_objects(cid, ids=[ind["id"]], version="all")[0]) == 2
    got, added, more = store.get_objects(cid, limit=3, version="all")
    assert len(got) == 3 and more and added == sorted(added)
    rest, _, _ = store.get_objects(cid, added_after=added[-1], limit=10_000, version="all")
    assert len(got) + len(rest) == len(objs) + 1
    assert [r["date_added"] for r in first] == sorted(r["date_added"] for r in first)
    assert len({r["date_added"] for r in first}) == len(first)


def test_partners(store, store_url):
    cid = store.create_collection("c")
    tok = store.add_partner("b", None, [Grant(cid, True, False)])
    who = store.authenticate("b", tok)
    assert who is not None and who.grant(cid).can_read and not who.grant(cid).can_write
    assert not who.grant("other").can_read
    assert store.authenticate("b", tok + "x") is None
    assert store.authenticate("nobody", tok) is None
    with pytest.raises(InputError, match="already exists"):
        store.add_partner("b", None, [])
    with pytest.raises(InputError, match="no collection"):
        store.add_partner("c", None, [Grant("missing", True, True)])
    with pytest.raises(InputError):
        store.add_partner("bad name!", None, [])
    if store_url.startswith("sqlite:///"):
        store.close()
        raw = Path(store_url.removeprefix("sqlite:///")).read_bytes()
        assert tok.encode() not in raw


@pytest.mark.services
def test_taxii_server_on_postgres(pg_url, small_bundle, ring):
    from distillguard.intel.exchange import pull, push

    from .taxii_fixtures import COLLECTION, serve_ours

    st = open_intel_store(pg_url)
    st.create_collection("coalition", "", COLLECTION)
    ta = st.add_partner(
        "a", Producer("Provider A", ring.coalition).identity_id, [Grant(COLLECTION, True, True)]
    )
    with serve_ours(st) as url:
        col = f"{url}/api1/collections/{COLLECTION}/"
        assert push(small_bundle, col, "a", ta, send_definitions=True).failure == 0
        got = pull(col, "a", ta, per_request=4)
    assert len(got.bundle["objects"]) == len(small_bundle["objects"])
    st.close()


def test_versions_order_by_time_whatever_the_precision(store):
    cid = store.create_collection("c")
    base = {
        "type": "campaign",
        "spec_version": "2.1",
        "id": "campaign--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
        "created": "2026-01-01T00:00:00Z",
        "name": "x",
    }
    early = dict(base, modified="2026-01-01T00:00:00Z")
    late = dict(base, modified="2026-01-01T00:00:00.5Z")
    store.add_objects(cid, [late, early], "a")
    assert store.get_objects(cid)[0] == [late]
    assert store.get_objects(cid, version="2026-01-01T00:00:00.000Z")[0] == [early]
    with pytest.raises(InputError):
        store.get_objects(cid, version="not-a-time")


def test_next_token_never_skips_equal_timestamps(tmp_path, small_bundle):
    import sqlite3

    path = tmp_path / "i.db"
    st = open_intel_store(f"sqlite:///{path}")
    cid = st.create_collection("c")
    st.add_objects(cid, small_bundle["objects"], "a")
    st.close()
    con = sqlite3.connect(path)  # two replicas can stamp the same microsecond; force it
    con.execute("UPDATE intel_objects SET date_added = '2026-01-01T00:00:00.000000Z'")
    con.commit()
    con.close()
    st = open_intel_store(f"sqlite:///{path}")
    seen, after, after_id = [], None, None
    while True:
        objs, added, more = st.get_objects(cid, added_after=after, after_id=after_id, limit=3)
        seen += [o["id"] for o in objs]
        if not more:
            break
        after, after_id = added[-1], objs[-1]["id"]
    assert sorted(seen) == sorted(o["id"] for o in small_bundle["objects"])
    st.close()

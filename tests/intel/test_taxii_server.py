"""Our TAXII 2.1 server: protocol, permissions, paging, hostile input; taxii2-client and stix2 interop."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from distillguard.intel.stix import Producer
from distillguard.intel.store import Grant, open_intel_store

from .taxii_fixtures import COLLECTION, serve_ours

pytest.importorskip("fastapi")
pytest.importorskip("taxii2client")

MEDIA = "application/taxii+json;version=2.1"
H = {"Accept": MEDIA}


@pytest.fixture
def server(tmp_path, ring):
    store = open_intel_store(f"sqlite:///{tmp_path / 'intel.db'}")
    store.create_collection("coalition", "shared indicators", COLLECTION)
    creds = {
        "provider-a": store.add_partner(
            "provider-a", Producer("Provider A", ring.coalition).identity_id, [Grant(COLLECTION, True, True)]
        ),
        "provider-b": store.add_partner("provider-b", None, [Grant(COLLECTION, True, False)]),
        "outsider": store.add_partner("outsider", None, []),
    }
    with serve_ours(store) as url:
        yield url, creds, store
    store.close()


def _auth(creds, who):
    return (who, creds[who])


def _post(url, creds, who, body, ctype=MEDIA):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return httpx.post(
        f"{url}/api1/collections/{COLLECTION}/objects/",
        content=data,
        auth=_auth(creds, who),
        headers={"Content-Type": ctype, "Accept": MEDIA},
        timeout=30,
    )


def test_discovery_root_and_collections(server):
    url, creds, _ = server
    r = httpx.get(f"{url}/taxii2/", auth=_auth(creds, "provider-b"), headers=H)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/taxii+json")
    assert r.json()["api_roots"] == [f"{url}/api1/"]
    assert httpx.get(f"{url}/api1/", auth=_auth(creds, "provider-b"), headers=H).json()["versions"] == [MEDIA]
    cols = httpx.get(f"{url}/api1/collections/", auth=_auth(creds, "provider-b"), headers=H).json()[
        "collections"
    ]
    assert [(c["id"], c["can_read"], c["can_write"]) for c in cols] == [(COLLECTION, True, False)]
    assert httpx.get(f"{url}/api1/collections/", auth=_auth(creds, "outsider"), headers=H).json() == {}


@pytest.mark.parametrize(
    ("auth", "status"), [(None, 401), (("provider-a", "wrong"), 401), (("nobody", "x"), 401)]
)
def test_authentication(server, auth, status):
    url, _, _ = server
    r = httpx.get(f"{url}/api1/collections/", auth=auth, headers=H)
    assert r.status_code == status and r.json()["http_status"] == str(status)


def test_permissions(server, small_bundle):
    url, creds, _ = server
    assert _post(url, creds, "provider-b", {"objects": small_bundle["objects"]}).status_code == 403
    assert _post(url, creds, "outsider", {"objects": small_bundle["objects"]}).status_code == 404
    r = httpx.get(f"{url}/api1/collections/{COLLECTION}/objects/", auth=_auth(creds, "outsider"), headers=H)
    assert r.status_code == 404


def test_post_then_page_with_added_after(server, small_bundle):
    url, creds, _ = server
    r = _post(url, creds, "provider-a", {"objects": small_bundle["objects"]})
    assert r.status_code == 202, r.text
    status = r.json()
    n = len(small_bundle["objects"])
    assert status["status"] == "complete" and status["success_count"] == n
    assert (
        httpx.get(f"{url}/api1/status/{status['id']}/", auth=_auth(creds, "provider-a"), headers=H).json()
        == status
    )
    assert (
        httpx.get(
            f"{url}/api1/status/{status['id']}/", auth=_auth(creds, "provider-b"), headers=H
        ).status_code
        == 404
    )
    seen, after, pages = [], None, 0
    while True:
        params = {"limit": 4, **({"added_after": after} if after else {})}
        r = httpx.get(
            f"{url}/api1/collections/{COLLECTION}/objects/",
            params=params,
            auth=_auth(creds, "provider-b"),
            headers=H,
        )
        assert r.status_code == 200
        body = r.json()
        pages += 1
        if not body.get("objects"):
            break
        seen += [o["id"] for o in body["objects"]]
        after = r.headers["X-TAXII-Date-Added-Last"]
        if not body["more"]:
            break
    assert pages >= n // 4 and sorted(seen) == sorted(o["id"] for o in small_bundle["objects"])
    man = httpx.get(
        f"{url}/api1/collections/{COLLECTION}/manifest/", auth=_auth(creds, "provider-b"), headers=H
    ).json()
    assert len(man["objects"]) == n and all(m["date_added"] for m in man["objects"])
    ind = next(o for o in small_bundle["objects"] if o["type"] == "indicator")
    one = httpx.get(
        f"{url}/api1/collections/{COLLECTION}/objects/{ind['id']}/",
        auth=_auth(creds, "provider-b"),
        headers=H,
    ).json()
    assert one["objects"] == [ind]
    typed = httpx.get(
        f"{url}/api1/collections/{COLLECTION}/objects/",
        params={"match[type]": "campaign"},
        auth=_auth(creds, "provider-b"),
        headers=H,
    ).json()
    assert {o["type"] for o in typed["objects"]} == {"campaign"}


HOSTILE = [
    ("not json", b"{nope", MEDIA, 400),
    ("wrong media type", b"{}", "text/plain", 415),
    ("not an envelope", b"[1, 2]", MEDIA, 422),
    ("deep nesting", b'{"objects": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", MEDIA, 400),
    ("bad utf-8", b"\xff\xfe", MEDIA, 400),
    ("unknown type", json.dumps({"objects": [{"type": "x-evil", "id": "x-evil--1"}]}).encode(), MEDIA, 422),
]


@pytest.mark.parametrize(("name", "body", "ctype", "status"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_posts_are_4xx(server, name, body, ctype, status):
    url, creds, store = server
    r = _post(url, creds, "provider-a", body, ctype)
    assert r.status_code == status, r.text
    assert "title" in r.json()
    assert store.get_objects(COLLECTION)[0] == []


def test_oversized_and_bad_paging(server):
    url, creds, _ = server
    r = httpx.post(
        f"{url}/api1/collections/{COLLECTION}/objects/",
        content=b" " * (17 * 1024 * 1024),
        auth=_auth(creds, "provider-a"),
        headers={"Content-Type": MEDIA},
        timeout=60,
    )
    assert r.status_code == 413
    for params in ({"added_after": "yesterday"}, {"limit": "-1"}, {"limit": "many"}):
        r = httpx.get(
            f"{url}/api1/collections/{COLLECTION}/objects/",
            params=params,
            auth=_auth(creds, "provider-b"),
            headers=H,
        )
        assert r.status_code == 400, params


def test_no_overwriting_another_partners_objects(server, small_bundle, ring, tmp_path):
    url, creds, store = server
    assert _post(url, creds, "provider-a", {"objects": small_bundle["objects"]}).status_code == 202
    # provider-b may not write at all; give a second writer and let it forge A's objects
    store.create_collection("other", "", "c2")
    tok = store.add_partner("mallory", None, [Grant(COLLECTION, True, True)])
    forged = [
        dict(o, modified="2099-01-01T00:00:00.000Z") if o["type"] == "indicator" else o
        for o in small_bundle["objects"]
    ]
    r = httpx.post(
        f"{url}/api1/collections/{COLLECTION}/objects/",
        content=json.dumps({"objects": forged}),
        auth=("mallory", tok),
        headers={"Content-Type": MEDIA},
    )
    assert r.status_code == 422 and "another producer" in r.json()["description"]
    # nothing of the rejected envelope was applied
    objs, _, _ = store.get_objects(COLLECTION, version="all", limit=10_000)
    assert not any(o.get("modified") == "2099-01-01T00:00:00.000Z" for o in objs)
    # and provider-a itself may not post as someone else
    other = Producer("Provider Z", ring.coalition).identity_id
    spoof = [
        dict(o, created_by_ref=other) if "created_by_ref" in o else o
        for o in small_bundle["objects"]
        if o["type"] != "identity"
    ]
    r = _post(url, creds, "provider-a", {"objects": spoof})
    assert r.status_code == 422


def test_taxii2client_and_stix2_source_interop(server, small_bundle):
    from stix2 import Filter, TAXIICollectionSource
    from taxii2client.v21 import ApiRoot, Collection, Server, as_pages

    url, creds, _ = server
    srv = Server(f"{url}/taxii2/", user="provider-a", password=creds["provider-a"])
    assert srv.api_roots[0].url == f"{url}/api1/"
    root = ApiRoot(f"{url}/api1/", user="provider-a", password=creds["provider-a"])
    assert [c.id for c in root.collections] == [COLLECTION]
    col = Collection(f"{url}/api1/collections/{COLLECTION}/", user="provider-a", password=creds["provider-a"])
    st = col.add_objects(json.dumps({"objects": small_bundle["objects"]}))
    assert st.status == "complete" and st.success_count == len(small_bundle["objects"])
    reader = Collection(
        f"{url}/api1/collections/{COLLECTION}/", user="provider-b", password=creds["provider-b"]
    )
    got = [o for env in as_pages(reader.get_objects, per_request=3) for o in env.get("objects", [])]
    assert len(got) == len(small_bundle["objects"])
    src = TAXIICollectionSource(reader, allow_custom=True)
    ind = next(o for o in small_bundle["objects"] if o["type"] == "indicator")
    assert src.get(ind["id"]).id == ind["id"]
    camps = src.query([Filter("type", "=", "campaign")])
    assert [c.id for c in camps] == [o["id"] for o in small_bundle["objects"] if o["type"] == "campaign"]


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=4),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def inproc(tmp_path_factory, ring):
    from fastapi.testclient import TestClient

    from distillguard.intel.taxii_server import create_app

    store = open_intel_store(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'intel.db'}")
    store.create_collection("coalition", "", COLLECTION)
    tok = store.add_partner(
        "provider-a", Producer("Provider A", ring.coalition).identity_id, [Grant(COLLECTION, True, True)]
    )
    with TestClient(create_app(store), raise_server_exceptions=False) as client:
        yield client, ("provider-a", tok)
    store.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    objects=st.one_of(
        _json,
        st.lists(
            st.fixed_dictionaries(
                {
                    "type": st.sampled_from(["indicator", "campaign", "x-y", "identity"]),
                    "id": st.text(max_size=50),
                },
                optional={
                    "spec_version": st.sampled_from(["2.1", "2.0", 2]),
                    "pattern": st.text(max_size=40),
                },
            ),
            max_size=4,
        ),
    )
)
def test_fuzzed_posts_never_500(inproc, objects):
    client, auth = inproc
    r = client.post(
        f"/api1/collections/{COLLECTION}/objects/",
        content=json.dumps({"objects": objects}),
        auth=auth,
        headers={"Content-Type": MEDIA},
    )
    assert 200 <= r.status_code < 500, r.text


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    path=st.sampled_from(["objects/", "manifest/", "objects/indicator--x/", "objects/x/versions/"]),
    params=st.dictionaries(
        st.sampled_from(["added_after", "limit", "next", "match[id]", "match[type]", "match[version]"]),
        st.text(max_size=30),
        max_size=4,
    ),
)
def test_fuzzed_queries_never_500(inproc, path, params):
    client, auth = inproc
    r = client.get(f"/api1/collections/{COLLECTION}/{path}", params=params, auth=auth, headers=H)
    assert r.status_code < 500, r.text

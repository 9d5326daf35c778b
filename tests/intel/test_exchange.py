"""Push / pull over TAXII 2.1 against a real medallion server and ours; the two-provider story."""

from __future__ import annotations

import json
import time

import pytest

from distillguard.intel.exchange import ExchangeError, pull, push
from distillguard.intel.importer import parse_bundle, split_by_producer
from distillguard.intel.logsource import read_activity
from distillguard.intel.match import match
from distillguard.intel.stix import Producer
from distillguard.intel.store import Grant, open_intel_store

from .taxii_fixtures import COLLECTION, serve_medallion, serve_ours

pytest.importorskip("medallion")
pytest.importorskip("taxii2client")

ATTACK = {"sybil", "hydra", "naive_fast", "low_slow", "cot", "logprob", "paraphrase"}


def _import_pulled(store, bundle):
    n = 0
    for part in split_by_producer(bundle["objects"]):
        n += store.import_bundle(parse_bundle(json.dumps(part)))
    return n


def test_two_providers_via_medallion(tmp_path, bundle_a, provider_a, provider_b, ring):
    users = {"provider-a": "secret-a", "provider-b": "secret-b"}
    with serve_medallion(tmp_path, users) as url:
        col = f"{url}/api1/collections/{COLLECTION}/"
        # A pushes its export
        res = push(bundle_a, col, "provider-a", "secret-a")
        sent = [o for o in bundle_a["objects"] if o["type"] != "extension-definition"]
        assert res.status == "complete" and res.success == len(sent) and res.failure == 0
        # pushing the same export again: every object is already held, nothing is refused
        again = push(bundle_a, col, "provider-a", "secret-a")
        assert again.failure == 0 and again.duplicates + again.success == len(sent) and again.duplicates > 0
        # B pulls it (in pages), imports it into its own store, and matches its own logs
        got = pull(col, "provider-b", "secret-b", per_request=50)
        assert got.pages >= 2 and len(got.bundle["objects"]) == len(sent)
        assert got.last_added is not None
        # a later pull from where we left off brings nothing new
        assert pull(col, "provider-b", "secret-b", added_after=got.last_added).bundle["objects"] == []
        with pytest.raises(ExchangeError, match="401"):
            pull(col, "provider-b", "wrong")
    store_b = open_intel_store(f"sqlite:///{tmp_path / 'b-intel.db'}")
    assert _import_pulled(store_b, got.bundle) > 0
    alerts = match(store_b.indicators(), read_activity([str(provider_b.logs)]), ring, now=time.time())
    roles = provider_b.labels
    hit = {a.account_id for a in alerts}
    sybils = [a for a, r in roles.items() if r == "sybil"]
    assert sum(a in hit for a in sybils) >= 0.9 * len(sybils)
    assert sum(roles[a] not in ATTACK for a in hit) <= 1
    # nothing that crossed the wire names an account, address or prompt of either provider
    wire = json.dumps(got.bundle)
    for acct in ("s000", "h001", "a-fast", "b-s000"):
        assert f'"{acct}"' not in wire and f" {acct} " not in wire
    # importing the same pull again adds nothing
    assert _import_pulled(store_b, got.bundle) == 0
    store_b.close()


def test_push_pull_against_our_server(tmp_path, small_bundle, ring):
    store = open_intel_store(f"sqlite:///{tmp_path / 'srv.db'}")
    store.create_collection("coalition", "", COLLECTION)
    ta = store.add_partner(
        "provider-a", Producer("Provider A", ring.coalition).identity_id, [Grant(COLLECTION, True, True)]
    )
    tb = store.add_partner("provider-b", None, [Grant(COLLECTION, True, False)])
    with serve_ours(store) as url:
        col = f"{url}/api1/collections/{COLLECTION}/"
        assert push(small_bundle, col, "provider-a", ta, send_definitions=True).success == len(
            small_bundle["objects"]
        )
        again = push(small_bundle, col, "provider-a", ta, send_definitions=True)
        # our server accepts an identical re-send as a success and stores nothing twice
        assert again.failure == 0 and again.success + again.duplicates == len(small_bundle["objects"])
        assert len(store.get_objects(COLLECTION, version="all", limit=10_000)[0]) == len(
            small_bundle["objects"]
        )
        got = pull(col, "provider-b", tb, per_request=5)
        assert got.pages >= 2
        assert sorted(o["id"] for o in got.bundle["objects"]) == sorted(
            o["id"] for o in small_bundle["objects"]
        )
        with pytest.raises(ExchangeError, match="does not allow writing"):
            push(small_bundle, col, "provider-b", tb)
    store.close()


def test_unreachable_server_is_a_clear_error():
    from .taxii_fixtures import free_port

    with pytest.raises(ExchangeError, match="pull failed"):
        pull(f"http://127.0.0.1:{free_port()}/api1/collections/{COLLECTION}/", "a", "b")
    with pytest.raises(ExchangeError, match="must start with http"):
        pull("ftp://example/collections/x/")

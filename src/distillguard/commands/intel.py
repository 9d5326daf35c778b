"""``distillguard intel``: share pseudonymised indicators of distillation campaigns (STIX/TAXII).

Sub-commands: ``keygen``, ``export``, ``revoke``, ``push``, ``pull``, ``import``, ``match``,
``collection``, ``partner`` and ``serve``. Thin: parse, call :mod:`distillguard.intel`, print.
Passwords and tokens come from environment variables or files, never from the command line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

__all__ = ["register"]


def _read_json(path: str, what: str) -> Any:
    from distillguard.errors import InputError

    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"Cannot read the {what} {path!r}: {exc.strerror}.") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"The {what} {path!r} is not valid JSON: {exc}.") from None


def _write_json(path: str, doc: Any) -> None:
    Path(path).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")


def _password(args: argparse.Namespace) -> str | None:
    from distillguard.errors import InputError

    if args.password_file:
        try:
            return Path(args.password_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise InputError(f"Cannot read the password file: {exc.strerror}.") from None
    return os.environ.get(args.password_env)


def _keygen(args: argparse.Namespace) -> int:
    from distillguard.intel.keyfile import load_keyring, new_keyring, rotate, write_keyring

    path = Path(args.out)
    if args.rotate:
        ring = rotate(load_keyring(path), keep=args.keep)
        write_keyring(path, ring, force=True)
    else:
        ring = new_keyring(args.coalition)
        write_keyring(path, ring, force=args.force)
    print(f"wrote {path} (mode 0600): coalition {ring.coalition}, epochs {list(ring.epochs)}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from distillguard.intel.findings import ExportConfig, build_findings
    from distillguard.intel.keyfile import load_keyring
    from distillguard.intel.logsource import read_activity
    from distillguard.intel.stix import Producer, build_bundle

    ring = load_keyring(Path(args.key))
    report = _read_json(args.report, "scan report")
    act = read_activity(args.logs, Path(args.attributes) if args.attributes else None)
    now = time.time()
    cfg = ExportConfig(min_confidence=args.min_confidence)
    findings = build_findings(report, act, ring, now, cfg)
    producer = Producer(args.producer, ring.coalition)
    bundle = build_bundle(findings, producer, now, tlp=args.tlp)
    _write_json(args.out, bundle)
    n_ind = sum(len(f.indicators) for f in findings)
    print(
        f"exported {len(findings)} campaigns, {n_ind} indicators ({len(bundle['objects'])} STIX objects, "
        f"key epoch {ring.current.epoch}, TLP:{args.tlp.upper()}) to {args.out}"
    )
    print(f"producer identity {producer.identity_id} (bind it with `intel partner --identity`)")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from distillguard.errors import InputError
    from distillguard.intel.stix import revoke

    bundle = _read_json(args.bundle, "bundle")
    objs = bundle.get("objects", []) if isinstance(bundle, dict) else []
    wanted = set(args.id)
    chosen = [
        o
        for o in objs
        if isinstance(o, dict)
        and (o.get("id") in wanted or (args.all and o.get("type") in ("indicator", "campaign")))
    ]
    if not chosen:
        raise InputError("none of the given ids is in the bundle")
    now = time.time()
    out = {
        "type": "bundle",
        "id": f"bundle--{uuid.uuid4()}",
        "objects": [o for o in objs if o.get("type") == "identity"] + [revoke(o, now) for o in chosen],
    }
    _write_json(args.out, out)
    print(f"wrote {len(chosen)} revocations to {args.out}; push or send it like any export")
    return 0


def _push(args: argparse.Namespace) -> int:
    from distillguard.intel.exchange import push

    res = push(_read_json(args.bundle, "bundle"), args.url, args.user, _password(args))
    print(
        f"push {res.status}: {res.success}/{res.total} accepted, {res.duplicates} already held, "
        f"{res.failure} refused, {res.pending} pending"
    )
    for oid, msg in res.failures:
        print(f"refused {oid}: {msg}", file=sys.stderr)
    return 0 if res.failure == 0 else 2


def _import_bundles(store_url: str, bundles: list[dict[str, Any]]) -> tuple[int, list[str]]:
    from distillguard.intel.importer import BundleRejected, parse_bundle
    from distillguard.intel.store import open_intel_store

    store = open_intel_store(store_url)
    n, problems = 0, []
    try:
        for b in bundles:
            try:
                n += store.import_bundle(parse_bundle(json.dumps(b)))
            except BundleRejected as exc:
                problems.append(str(exc))
    finally:
        store.close()
    return n, problems


def _pull(args: argparse.Namespace) -> int:
    from distillguard.intel.exchange import pull
    from distillguard.intel.importer import split_by_producer

    res = pull(args.url, args.user, _password(args), added_after=args.added_after)
    if args.out:
        _write_json(args.out, res.bundle)
    print(
        f"pulled {len(res.bundle['objects'])} objects in {res.pages} pages; resume with "
        f"--added-after {res.last_added}"
    )
    if args.store:
        n, problems = _import_bundles(args.store, split_by_producer(res.bundle["objects"]))
        for p in problems:
            print(f"rejected: {p}", file=sys.stderr)
        print(f"imported {n} new indicator versions into {args.store}")
        return 2 if problems else 0
    return 0


def _import(args: argparse.Namespace) -> int:
    from distillguard.errors import InputError

    try:
        raw = Path(args.bundle).read_bytes()
    except OSError as exc:
        raise InputError(f"Cannot read the bundle {args.bundle!r}: {exc.strerror}.") from None
    from distillguard.intel.importer import parse_bundle
    from distillguard.intel.store import open_intel_store

    parsed = parse_bundle(raw)  # BundleRejected (an InputError) lists every reason: exit 2
    store = open_intel_store(args.store)
    try:
        n = store.import_bundle(parsed)
    finally:
        store.close()
    print(
        f"imported {n} new indicator versions from {parsed.source_name or parsed.source} "
        f"({len(parsed.indicators)} indicators, {parsed.ignored_indicators} not in our format)"
    )
    return 0


def _match(args: argparse.Namespace) -> int:
    from distillguard.intel.keyfile import load_keyring
    from distillguard.intel.logsource import read_activity
    from distillguard.intel.match import MatchConfig, match, risk_input
    from distillguard.intel.store import open_intel_store

    ring = load_keyring(Path(args.key))
    store = open_intel_store(args.store)
    try:
        indicators = store.indicators()
    finally:
        store.close()
    act = read_activity(args.logs, Path(args.attributes) if args.attributes else None)
    alerts = match(indicators, act, ring, time.time(), MatchConfig(alert_threshold=args.threshold))
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "account_id": a.account_id,
                        "risk": a.risk,
                        "source": a.source,
                        "campaign_id": a.campaign_id,
                        "reason": a.reason,
                        "evidence": [e.__dict__ for e in a.evidence],
                    }
                    for a in alerts
                ],
                indent=1,
            )
        )
    else:
        for a in alerts:
            print(a.reason)
        print(
            f"{len(alerts)} alerts over {len(act)} accounts, {len(indicators)} partner indicator versions",
            file=sys.stderr,
        )
    if args.risk_out:
        _write_json(args.risk_out, risk_input(alerts))
    return 1 if alerts else 0


def _collection(args: argparse.Namespace) -> int:
    from distillguard.intel.store import open_intel_store

    store = open_intel_store(args.store)
    try:
        cid = store.create_collection(args.title, args.description)
    finally:
        store.close()
    print(cid)
    return 0


def _partner(args: argparse.Namespace) -> int:
    from distillguard.intel.store import Grant, open_intel_store

    grants = {c: Grant(c, c in args.read, c in args.write) for c in [*args.read, *args.write]}
    store = open_intel_store(args.store)
    try:
        token = store.add_partner(args.name, args.identity, list(grants.values()))
    finally:
        store.close()
    fd = os.open(args.token_out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (token + "\n").encode())
    finally:
        os.close(fd)
    print(f"partner {args.name}: token written to {args.token_out} (mode 0600); give it to them once")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from distillguard.errors import missing_extra
    from distillguard.intel.store import open_intel_store
    from distillguard.intel.taxii_server import ServerConfig, create_app

    try:
        import uvicorn
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise missing_extra("uvicorn", "intel") from exc
    store = open_intel_store(args.store)
    app = create_app(store, ServerConfig(api_root=args.api_root))
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    store.close()
    return 0


def _auth_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", required=True, help="the TAXII 2.1 collection URL (…/collections/<id>/)")
    p.add_argument("--user", required=True, help="your user name on that server")
    p.add_argument(
        "--password-env", default="DG_TAXII_PASSWORD", help="environment variable with the password"
    )
    p.add_argument("--password-file", help="file holding the password (instead of the variable)")


def register(subparsers: Any) -> None:
    """Add ``intel`` and its sub-commands."""
    intel = subparsers.add_parser(
        "intel",
        help="share indicators of distillation campaigns (STIX 2.1 / TAXII 2.1)",
        description="Share pseudonymised indicators with a coalition; see docs/intel.md.",
    )
    sub = intel.add_subparsers(dest="intel_command", metavar="ACTION", required=True)
    store_default = "sqlite:///intel.db"

    p = sub.add_parser("keygen", help="create a coalition key file, or --rotate to add the next epoch")
    p.add_argument("--out", required=True)
    p.add_argument("--coalition", default="coalition")
    p.add_argument("--rotate", action="store_true", help="add a new epoch to an existing file")
    p.add_argument("--keep", type=int, default=2, help="epochs kept after --rotate (default 2)")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=_keygen)

    p = sub.add_parser("export", help="scan report + logs -> pseudonymised STIX 2.1 bundle")
    p.add_argument("--report", required=True, help="report.json written by `distillguard scan`")
    p.add_argument("--logs", nargs="+", required=True, help="the logs the report was made from")
    p.add_argument("--attributes", help="CSV/JSONL of account_id,email,payment_fingerprint")
    p.add_argument("--key", required=True, help="coalition key file")
    p.add_argument("--producer", required=True, help="your organisation's name in the coalition")
    p.add_argument("--tlp", default="amber", choices=["white", "green", "amber", "red"])
    p.add_argument("--min-confidence", type=int, default=50)
    p.add_argument("--out", required=True)
    p.set_defaults(func=_export)

    p = sub.add_parser("revoke", help="write revoking versions of indicators/campaigns of a bundle")
    p.add_argument("bundle")
    p.add_argument("--id", nargs="*", default=[])
    p.add_argument("--all", action="store_true", help="revoke every indicator and campaign of the bundle")
    p.add_argument("--out", required=True)
    p.set_defaults(func=_revoke)

    p = sub.add_parser("push", help="add a bundle's objects to a TAXII 2.1 collection")
    p.add_argument("bundle")
    _auth_args(p)
    p.set_defaults(func=_push)

    p = sub.add_parser("pull", help="fetch a TAXII 2.1 collection (and import it with --store)")
    _auth_args(p)
    p.add_argument("--added-after", help="only objects added after this TAXII timestamp")
    p.add_argument("--out", help="write the pulled objects as a bundle")
    p.add_argument("--store", help="import into this intel store (sqlite:///… or postgresql://…)")
    p.set_defaults(func=_pull)

    p = sub.add_parser("import", help="validate a partner bundle and store its indicators")
    p.add_argument("bundle")
    p.add_argument("--store", default=store_default)
    p.set_defaults(func=_import)

    p = sub.add_parser("match", help="match our logs against partner indicators (exit 1 on alerts)")
    p.add_argument("--logs", nargs="+", required=True)
    p.add_argument("--attributes")
    p.add_argument("--key", required=True)
    p.add_argument("--store", default=store_default)
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--risk-out", help="write a risk file for `distillguard gateway import-risk`")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_match)

    p = sub.add_parser("collection", help="create a collection on our TAXII server; prints its id")
    p.add_argument("title")
    p.add_argument("--description", default="")
    p.add_argument("--store", default=store_default)
    p.set_defaults(func=_collection)

    p = sub.add_parser("partner", help="give a partner credentials on our TAXII server")
    p.add_argument("name")
    p.add_argument("--identity", help="the STIX identity id their writes must carry")
    p.add_argument("--read", nargs="*", default=[], metavar="COLLECTION")
    p.add_argument("--write", nargs="*", default=[], metavar="COLLECTION")
    p.add_argument("--token-out", required=True, help="file to write the new token to (mode 0600)")
    p.add_argument("--store", default=store_default)
    p.set_defaults(func=_partner)

    p = sub.add_parser("serve", help="run our TAXII 2.1 server")
    p.add_argument("--store", default=store_default)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9443)
    p.add_argument("--api-root", default="api1")
    p.set_defaults(func=_serve)

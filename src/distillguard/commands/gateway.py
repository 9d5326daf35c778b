"""``distillguard serve`` (the gateway) and the ``accounts`` / ``keys`` admin commands."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

__all__ = ["register"]


def _settings(args: argparse.Namespace) -> Any:
    from distillguard.gateway.settings import load_settings

    return load_settings(getattr(args, "config", None), store_url=getattr(args, "store", None))


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from distillguard.gateway.app import create_app
    from distillguard.gateway.settings import default_home, load_settings

    backend = args.backend
    if backend is None and args.config is None and "DISTILLGUARD_BACKEND" not in os.environ:
        # The embedded default serves the local model when its package is present.
        if importlib.util.find_spec("distillguard.model") is not None:
            backend = "local"
        else:
            print("note: distillguard.model (local SmolLM2 backend) is not available; serving the "
                  "deterministic fake backend. Use --backend openai --upstream-url URL for a real model.")
    settings = load_settings(args.config, store_url=args.store, backend=backend,
                             upstream_url=args.upstream_url, redis_url=args.redis_url)
    app = create_app(settings)
    token_file = default_home() / "admin_token"
    where = f"(admin token in {token_file})" if token_file.exists() else "(admin token from config/env)"
    print(f"distillguard gateway: backend={settings.backend} store={settings.store_url.split('@')[-1]}")
    print(f"dashboard: http://{args.host}:{args.port}/dashboard {where}")
    print(f"OpenAI base_url: http://{args.host}:{args.port}/v1")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")  # SIGTERM → lifespan flush
    return 0


def _accounts(args: argparse.Namespace) -> int:
    from distillguard.gateway.store import open_store

    st = open_store(_settings(args).store_url)
    try:
        if args.action == "create":
            acc = st.create_account(args.name, args.tier)
            key, secret = st.create_key(acc.account_id)
            st.record_action(acc.account_id, "create", f"created with tier {args.tier}", "cli")
            print(json.dumps({"account_id": acc.account_id, "key_id": key.key_id, "api_key": secret}))
            print("store the api_key now: it is shown only once")
        elif args.action == "list":
            for a in st.list_accounts():
                print(json.dumps(asdict(a)))
        elif args.action == "import-risk":
            from distillguard.errors import InputError

            try:
                report = json.loads(Path(args.report).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise InputError(f"cannot read scan report {args.report}: {exc}") from exc
            print(f"updated risk of {st.import_risk(report, actor='cli')} accounts")
        else:
            status = "blocked" if args.action == "block" else "active"
            st.update_account(args.account_id, status=status)
            st.record_action(args.account_id, args.action, args.reason, "cli")
            print(f"{args.account_id}: {status}")
    finally:
        st.close()
    return 0


def _keys(args: argparse.Namespace) -> int:
    from distillguard.gateway.store import open_store

    st = open_store(_settings(args).store_url)
    try:
        if args.action == "create":
            key, secret = st.create_key(args.account_id)
            print(json.dumps({"key_id": key.key_id, "api_key": secret}))
        elif args.action == "list":
            for k in st.list_keys(args.account_id):
                print(json.dumps(asdict(k)))
        else:
            st.revoke_key(args.key_id)
            print(f"revoked {args.key_id}")
    finally:
        st.close()
    return 0


def register(subparsers: Any) -> None:
    """Add ``serve``, ``accounts`` and ``keys``."""
    p = subparsers.add_parser("serve", help="run the OpenAI-compatible gateway",
                              description="Run the gateway. With no arguments: SQLite under "
                              "$DISTILLGUARD_HOME (default ./.distillguard), in-process limits.")
    p.add_argument("--config", help="TOML or JSON settings file")
    p.add_argument("--store", help="sqlite:///path.db or postgresql://... (request log, accounts)")
    p.add_argument("--backend", choices=("fake", "local", "openai"), default=None)
    p.add_argument("--upstream-url", help="base URL of an OpenAI-compatible server (backend openai)")
    p.add_argument("--redis-url", help="redis://host:port for limits shared by replicas")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(func=_serve)

    a = subparsers.add_parser("accounts", help="manage gateway accounts")
    a.add_argument("--config")
    a.add_argument("--store")
    asub = a.add_subparsers(dest="action", required=True)
    c = asub.add_parser("create", help="create an account and its first API key")
    c.add_argument("name")
    c.add_argument("--tier", choices=("standard", "research"), default="standard")
    asub.add_parser("list", help="list accounts")
    ir = asub.add_parser("import-risk", help="set account risk from a scan report.json")
    ir.add_argument("report")
    for name in ("block", "unblock"):
        b = asub.add_parser(name, help=f"{name} an account")
        b.add_argument("account_id")
        b.add_argument("--reason", default="operator action")
    a.set_defaults(func=_accounts)

    k = subparsers.add_parser("keys", help="manage gateway API keys")
    k.add_argument("--config")
    k.add_argument("--store")
    ksub = k.add_subparsers(dest="action", required=True)
    kc = ksub.add_parser("create", help="create a key for an account (shown once)")
    kc.add_argument("account_id")
    kl = ksub.add_parser("list", help="list keys (never the secrets)")
    kl.add_argument("account_id", nargs="?")
    kr = ksub.add_parser("revoke", help="revoke a key")
    kr.add_argument("key_id")
    k.set_defaults(func=_keys)

"""The service half of ``distillguard demo``: the gateway serving two accounts through the
OpenAI API (watermarked per account, logged), then a scan of a labelled API log and its risk
fed back into the gateway. In process, on the embedded default (SQLite, in-process limits)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["gateway_stage", "scan_stage"]

_PROMPTS = ("Explain how vaccines train the immune system, with an example.",
            "Write a short guide to growing tomatoes on a balcony.")


def _settings(workdir: Path) -> Any:
    from distillguard.gateway.settings import Settings

    return Settings(admin_token=secrets.token_urlsafe(24), store_url=f"sqlite:///{workdir / 'gateway.db'}",
                    spool_path=str(workdir / "spool.jsonl"), key_file=str(workdir / "demo.key"),
                    canary_registry=str(workdir / "canaries.json"), backend="local")


def gateway_stage(gen: Any, key: Any, workdir: Path, say: Callable[[str], None],
                  max_tokens: int = 200) -> Any:
    """Serve one request per account through the gateway with the ``openai`` client; show the
    request log and trace each served answer back to its account. Returns the app."""
    import httpx
    import openai

    from distillguard.gateway.app import create_app
    from distillguard.gateway.backends import LocalModelBackend
    from distillguard.model.tokenizer import load_text_tokenizer
    from distillguard.watermark.presets import cli_scheme

    backend = LocalModelBackend(key, generator=gen, window_s=0.2)
    app = create_app(_settings(workdir), backend=backend)
    st = app.state.store
    accounts = []
    for name in ("initech", "umbrella-ai"):
        acc = st.create_account(name)
        accounts.append((acc.account_id, st.create_key(acc.account_id)[1]))

    async def ask() -> list[Any]:
        transport = httpx.ASGITransport(app=app)
        clients = [openai.AsyncOpenAI(base_url="http://gateway/v1", api_key=secret,
                                      http_client=httpx.AsyncClient(transport=transport))  # type: ignore[arg-type]
                   for _, secret in accounts]
        return await asyncio.gather(*(c.chat.completions.create(
            model="smollm2-135m-instruct", messages=[{"role": "user", "content": p}], max_tokens=max_tokens,
            temperature=0.8) for c, p in zip(clients, _PROMPTS, strict=True)))

    answers = asyncio.run(ask())
    asyncio.run(backend.aclose())
    app.state.writer.close()  # flush the request log
    say(f"5. gateway  two accounts asked through the OpenAI API (in process; `distillguard serve` runs the "
        f"same app on HTTP); batches run: {backend.batches}")
    tok = load_text_tokenizer()
    scheme = cli_scheme("kgw", key)
    names = [a for a, _ in accounts]
    rows = [["account", "tokens", "logged", "traced to (of the gateway's accounts)", "p-value"]]
    for (acct, _), ans in zip(accounts, answers, strict=True):
        text = ans.choices[0].message.content or ""
        trace = scheme.trace(tok.encode(text), names, alpha=1e-4)
        rows.append([acct, str(ans.usage.completion_tokens if ans.usage else "?"), str(st.count_log(acct)),
                     str(trace.account or "not significant"), f"{trace.p_value:.1e}"])
    _table(rows, say)
    return app


def scan_stage(app: Any, workdir: Path, say: Callable[[str], None]) -> None:
    """Simulate a labelled API log, scan it, show the top accounts with their reasons, and import
    the report into the gateway (risk bands, campaigns)."""
    import csv

    from distillguard.analytics.scan import ScanOptions, scan
    from distillguard.analytics.simulate import SimConfig, simulate

    sim = simulate(workdir / "sim", SimConfig(n_benign=300, days=2, seed=11))
    report = scan([str(sim.log_path)], ScanOptions(progress=False))
    with Path(sim.labels_path).open(encoding="utf-8", newline="") as fh:
        labels = {row["account_id"]: row["role"] for row in csv.DictReader(fh)}
    flagged = [a for a in report["accounts"] if a["flagged"]]
    roles = [labels.get(a["account_id"], "?") for a in flagged]
    benign_flagged = sum(r == "benign" for r in roles)
    s = report["summary"]
    say(f"\n6. scan     a simulated API log ({s['events']:,} requests, {s['accounts']} accounts, attackers "
        f"and legitimate heavy users mixed in): {len(flagged)} flagged, {benign_flagged} of them benign; "
        f"{len(report['campaigns'])} campaigns")
    for a in flagged[:3]:
        say(f"  {a['account_id']} ({labels.get(a['account_id'], '?')}), score {a['score']:.2f}:")
        for reason in a["reasons"][:2]:
            say(f"    - {reason}")
    if report["campaigns"]:
        c = report["campaigns"][0]
        say(f"  campaign {c['campaign_id']}: {len(c['accounts'])} accounts; {'; '.join(c['reasons'][:2])}")
    st = app.state.store
    for a in flagged[:5]:
        st.create_account(a["account_id"], account_id=a["account_id"])
    st.import_risk(report, actor="scan")
    alerted = {x["account_id"] for x in st.list_alerts()}
    say(f"  imported into the gateway: {len(alerted)} accounts now carry a scan risk and "
        f"{len(st.list_campaigns())} campaigns show on the dashboard (`distillguard serve`, then /dashboard)")


def _table(rows: list[list[str]], say: Callable[[str], None]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in [rows[0], ["-" * w for w in widths], *rows[1:]]:
        say("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))

"""Render a scan report as one self-contained HTML page with plots (matplotlib, inline PNG)."""

# ruff: noqa: E501 - SQL / HTML text reads better unwrapped than split across string literals

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

__all__ = ["write_html"]


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _plots(report: dict[str, Any]) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    accts = report["accounts"]
    out = []
    flagged = [a for a in accts if a["flagged"]][:25]
    # Feature distributions: flagged accounts against the whole population.
    feats = [("n_requests", True), ("peak_hour", True), ("n_reused", False), ("n_cot", False)]
    fig, axes = plt.subplots(1, len(feats), figsize=(14, 3))
    for ax, (name, logx) in zip(axes, feats, strict=True):
        allv = np.array([float(a["features"].get(name) or 0) for a in accts])
        fv = np.array([float(a["features"].get(name) or 0) for a in flagged])
        if name in ("n_reused", "n_cot"):
            n_all = np.array([float(a["features"]["n_requests"]) for a in accts])
            n_f = np.array([float(a["features"]["n_requests"]) for a in flagged])
            allv, fv = allv / n_all, (fv / n_f if len(fv) else fv)
            name = name.replace("n_", "") + " share"
        if logx:
            allv, fv = np.log10(allv + 1), np.log10(fv + 1)
            name = f"log10(1 + {name})"
        ax.hist(allv, bins=30, alpha=0.6, label="all accounts")
        if len(fv):
            ax.hist(fv, bins=30, alpha=0.8, label="flagged")
        ax.set_title(name, fontsize=9)
    axes[0].legend(fontsize=7)
    out.append(("Feature distributions: flagged accounts vs the population", _png(fig)))
    plt.close(fig)
    # Campaign graph: members on a circle per campaign, edges to the campaign hub.
    camps = report["campaigns"]
    if camps:
        fig, ax = plt.subplots(figsize=(7, 7))
        for i, c in enumerate(camps):
            cx, cy = np.cos(2 * np.pi * i / len(camps)) * 3, np.sin(2 * np.pi * i / len(camps)) * 3
            k = len(c["accounts"])
            for j in range(k):
                x, y = cx + np.cos(2 * np.pi * j / k), cy + np.sin(2 * np.pi * j / k)
                ax.plot([cx, x], [cy, y], color="grey", lw=0.5)
                ax.scatter([x], [y], s=12, color="red" if c["flagged"] else "steelblue")
            ax.annotate(f"{c['campaign_id']} ({k})", (cx, cy), ha="center", fontsize=8)
        ax.set_axis_off()
        out.append(("Campaign graph (red: flagged campaigns)", _png(fig)))
        plt.close(fig)
    return out


def write_html(report: dict[str, Any], path: Path, timelines: dict[str, list[float]] | None = None) -> Path:
    """Write ``report`` as HTML to ``path`` and return it. ``timelines`` maps account → request times."""
    plots = _plots(report)
    if timelines:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(12, 0.3 * len(timelines) + 1))
        for i, (_acct, ts) in enumerate(sorted(timelines.items())):
            t0 = min(ts)
            ax.scatter([(t - t0) / 3600 for t in ts], [i] * len(ts), s=2)
        ax.set_yticks(range(len(timelines)), sorted(timelines), fontsize=7)
        ax.set_xlabel("hours since the account's first request")
        plots.insert(0, ("Timelines of flagged accounts", _png(fig)))
        plt.close(fig)
    s = report["summary"]
    rows = "".join(
        f"<tr><td>{html.escape(a['account_id'])}</td><td>{a['score']:.3f}</td><td>{'yes' if a['flagged'] else ''}</td>"
        f"<td>{html.escape(a['campaign_id'] or '')}</td><td>{'<br>'.join(html.escape(r) for r in a['reasons'])}</td></tr>"
        for a in report["accounts"]
        if a["flagged"] or a["reasons"]
    )
    camps = "".join(
        f"<tr><td>{html.escape(c['campaign_id'])}</td><td>{c['score']:.3f}</td><td>{'yes' if c['flagged'] else ''}</td>"
        f"<td>{html.escape(', '.join(c['accounts']))}</td><td>{'<br>'.join(html.escape(r) for r in c['reasons'])}</td></tr>"
        for c in report["campaigns"]
    )
    imgs = "".join(f"<h2>{html.escape(t)}</h2><img src='{src}'>" for t, src in plots)
    skipped = report["skipped"]
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>distillguard scan</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{border:1px solid #ccc;padding:3px;vertical-align:top;font-size:13px}}
table{{border-collapse:collapse}}</style></head><body><h1>distillguard scan</h1>
<p>{s["events"]:,} events, {s["accounts"]:,} accounts, {s["flagged_accounts"]} flagged, {s["campaigns"]} candidate
campaigns ({s["flagged_campaigns"]} flagged); target benign FPR {s["target_fpr"]}; engine {html.escape(s["engine"])};
{html.escape(s["threshold"]["how"]) if "threshold" in s else ""};
{skipped["total"]} lines quarantined {html.escape(str(skipped["by_reason"]))}.</p>{imgs}
<h2>Campaigns</h2><table><tr><th>id</th><th>score</th><th>flagged</th><th>accounts</th><th>evidence</th></tr>{camps}</table>
<h2>Accounts with findings</h2><table><tr><th>account</th><th>score</th><th>flagged</th><th>campaign</th><th>reasons</th></tr>{rows}</table>
</body></html>"""
    path.write_text(page, encoding="utf-8")
    return path

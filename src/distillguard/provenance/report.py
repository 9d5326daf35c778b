"""The audit report: one typed object, rendered as JSON for machines and Markdown/HTML for people.

The report carries the verdict, every test with its null hypothesis, the p-value as queries
accumulate (an inline SVG plot, no plotting library), the null controls, the settings and the
commands that reproduce the audit. It names the key only by its public ``key_id``.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from distillguard.fingerprint.combine import Evidence, combine_evidence
from distillguard.provenance.controls import ControlsResult
from distillguard.provenance.radioactivity import CurvePoint, RadioactivityResult
from distillguard.provenance.reading import ReadingResult
from distillguard.provenance.tracing import AccountTrace

__all__ = ["AuditReport", "build_report", "curve_svg"]


@dataclass(frozen=True)
class AuditReport:
    """Everything an audit found, ready to render."""

    suspect: str
    key_id: str
    scheme: str
    alpha: float
    verdict: str  # "radioactive" | "not radioactive" | "inconclusive"
    combined_log10_p_value: float
    combination: str
    radioactivity: RadioactivityResult | None
    reading: ReadingResult | None
    trace: AccountTrace | None
    controls: ControlsResult | None
    settings: dict[str, Any] = field(default_factory=dict)
    commands: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``-inf`` log p-values become the string "-inf")."""
        return _finite(asdict(self))

    def to_json(self) -> str:
        """The report as JSON text."""
        return json.dumps(self.to_dict(), indent=1, default=str)

    def to_markdown(self) -> str:
        """A Markdown report for a person."""
        return _markdown(self)

    def to_html(self) -> str:
        """A self-contained HTML report (inline SVG plot, no external assets)."""
        return _html(self)


def _finite(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, dict):
        return {str(k): _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def build_report(
    *,
    suspect: str,
    scheme: str,
    key_id: str,
    alpha: float,
    radioactivity: RadioactivityResult | None = None,
    reading: ReadingResult | None = None,
    trace: AccountTrace | None = None,
    controls: ControlsResult | None = None,
    settings: dict[str, Any] | None = None,
    commands: tuple[str, ...] = (),
) -> AuditReport:
    """Assemble the report and its verdict.

    The radioactivity and reading tests look at the same watermark, so they are *not*
    independent: they are combined with the Bonferroni-adjusted minimum, valid under any
    dependence. The verdict is "inconclusive" when the null controls failed (the procedure, not
    the suspect, is then in question) or when too few tuples were scored.
    """
    lines = []
    if radioactivity is not None:
        lines.append(Evidence("radioactivity (black-box)", radioactivity.log10_p_value * math.log(10)))
    if reading is not None:
        lines.append(Evidence("reading (open model)", reading.log10_p_value * math.log(10)))
    notes: list[str] = []
    if lines:
        comb = combine_evidence(lines, alpha=alpha, method="bonferroni")
        log10_p, method = comb.log10_p_value, comb.assumption
    else:
        log10_p, method = 0.0, "no test run"
    verdict = "radioactive" if lines and log10_p <= math.log10(alpha) else "not radioactive"
    if controls is not None and not controls.passed:
        verdict = "inconclusive"
        notes.append("Null controls failed: p-values under never-used keys were too often small.")
    if radioactivity is not None and not radioactivity.details.get("enough_tokens", True) and reading is None:
        verdict = "inconclusive"
        notes.append("Too few tuples were scored for a verdict; send more queries.")
    if radioactivity is not None and radioactivity.filtered:
        notes.append(
            "The context filter depends on the key; its p-value is exact only for a key-independent "
            "filter. Compare with a clean control audited through the same filter."
        )
    if radioactivity is not None and not radioactivity.dedup:
        notes.append("Dedup was off: the p-value is not valid for a suspect that repeats itself.")
    return AuditReport(
        suspect=suspect,
        key_id=key_id,
        scheme=scheme,
        alpha=alpha,
        verdict=verdict,
        combined_log10_p_value=log10_p,
        combination=method,
        radioactivity=radioactivity,
        reading=reading,
        trace=trace,
        controls=controls,
        settings=dict(settings or {}),
        commands=commands,
        notes=tuple(notes),
    )


def curve_svg(curve: tuple[CurvePoint, ...], *, alpha: float, width: int = 560, height: int = 260) -> str:
    """An SVG line plot of −log10 p against the number of queries (log-scaled x axis)."""
    if not curve:
        return "<p>(no curve: no answers)</p>"
    ml, mr, mt, mb = 56, 16, 14, 40
    xs = [math.log10(max(1, c.n_queries)) for c in curve]
    ys = [min(-c.log10_p_value, 1e6) for c in curve]
    x_hi = max(xs) if max(xs) > 0 else 1.0
    y_hi = max([*ys, -math.log10(alpha)]) * 1.1 or 1.0

    def px(x: float) -> float:
        return ml + (width - ml - mr) * x / x_hi

    def py(y: float) -> float:
        return height - mb - (height - mt - mb) * y / y_hi

    pts = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(xs, ys, strict=True))
    ya = py(-math.log10(alpha))
    ticks = []
    for d in range(math.floor(x_hi) + 1):
        ticks.append(
            f'<text x="{px(d):.1f}" y="{height - mb + 16}" font-size="11" text-anchor="middle">{10**d}</text>'
        )
    for k in range(5):
        v = y_hi * k / 4
        ticks.append(
            f'<text x="{ml - 6}" y="{py(v) + 4:.1f}" font-size="11" text-anchor="end">{v:.3g}</text>'
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="p-value versus number of queries">'
        f'<rect x="{ml}" y="{mt}" width="{width - ml - mr}" height="{height - mt - mb}" '
        'fill="none" stroke="#999"/>'
        f'<line x1="{ml}" x2="{width - mr}" y1="{ya:.1f}" y2="{ya:.1f}" stroke="#c33" '
        'stroke-dasharray="4 3"/>'
        f'<text x="{width - mr - 4}" y="{ya - 4:.1f}" font-size="11" fill="#c33" '
        f'text-anchor="end">α = {alpha:g}</text>'
        f'<polyline points="{pts}" fill="none" stroke="#1f5fa8" stroke-width="2"/>'
        + "".join(ticks)
        + f'<text x="{(ml + width - mr) / 2}" y="{height - 6}" font-size="12" text-anchor="middle">'
        "suspect queries (log scale)</text>"
        f'<text x="14" y="{(mt + height - mb) / 2}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 14 {(mt + height - mb) / 2})">−log10 p</text></svg>'
    )


def _fmt_p(log10_p: float) -> str:
    if log10_p > -4:
        return f"{10**log10_p:.3g}"
    if not math.isfinite(log10_p):
        return "< 1e-10000"
    mant = 10 ** (log10_p - math.floor(log10_p))
    return f"{mant:.2f}e{math.floor(log10_p)}"


def _rows(r: AuditReport) -> list[tuple[str, str, str, str]]:
    out = []
    if r.radioactivity is not None:
        x = r.radioactivity
        out.append(
            (
                "radioactivity (black-box)",
                _fmt_p(x.log10_p_value),
                f"{x.n_scored:,} tuples from {x.n_answers:,} answers ({x.n_raw:,} before dedup"
                + (", context-filtered" if x.filtered else "")
                + f"); score {x.score:.1f} vs {x.expected:.1f} expected",
                x.test,
            )
        )
    if r.reading is not None:
        y = r.reading
        out.append(
            (
                f"reading ({y.statistic})",
                _fmt_p(y.log10_p_value),
                f"{y.n_contexts:,} distinct contexts from {y.n_texts:,} texts; "
                f"score {y.score:.1f} vs {y.expected:.1f}",
                "exact tail" if y.exact else "Chernoff bound (valid, conservative)",
            )
        )
    return out


def _markdown(r: AuditReport) -> str:
    lines = [
        "# Distillation audit",
        "",
        f"**Verdict: {r.verdict}** — combined p = {_fmt_p(r.combined_log10_p_value)} at α = {r.alpha:g} "
        f"({r.combination}).",
        "",
        f"- Suspect: `{r.suspect}`",
        f"- Scheme: `{r.scheme}`, key id `{r.key_id}` (the key itself is never written)",
        "",
        "| test | p-value | data | method |",
        "|---|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in _rows(r)]
    if r.radioactivity is not None:
        lines += [
            "",
            f"Null hypothesis: {r.radioactivity.null}.",
            "",
            "### p-value as queries accumulate",
            "",
        ]
        lines += ["| queries | answer tokens | scored tuples | p |", "|---|---|---|---|"]
        lines += [
            f"| {c.n_queries} | {c.n_tokens} | {c.n_scored} | {_fmt_p(c.log10_p_value)} |"
            for c in r.radioactivity.curve
        ]
    if r.trace is not None:
        t = r.trace
        lines += ["", "### Account tracing", "", f"Verdict: **{t.verdict}**"]
        if t.named:
            lines.append(f"Named: {', '.join(f'`{a}`' for a in t.named)}")
        if t.inseparable:
            lines.append(f"Cannot be separated: {', '.join(f'`{a}`' for a in t.inseparable)}")
        lines += [
            f"Assumption: {t.assumption}.",
            "",
            "| account | p (Holm) | p (given earlier named) |",
            "|---|---|---|",
        ]
        lines += [
            f"| `{e.account}` | {_fmt_p(e.log10_p_holm)} | "
            f"{_fmt_p(e.log10_p_exclusive) if e.log10_p_exclusive is not None else '–'} |"
            for e in t.top
        ]
    if r.controls is not None:
        c = r.controls
        lines += [
            "",
            "### Null controls",
            "",
            f"{c.n_keys} never-used keys, same procedure: "
            + ", ".join(
                f"{f:.3f} below α={a:g} (bound {b:.3f})"
                for a, f, b in zip(c.alphas, c.fractions_below, c.upper_bounds, strict=True)
            )
            + f"; smallest p = {_fmt_p(c.min_log10_p_value)}. **{'passed' if c.passed else 'FAILED'}**.",
        ]
    if r.notes:
        lines += ["", "### Notes", ""] + [f"- {n}" for n in r.notes]
    lines += ["", "### Settings", "", "```json", json.dumps(r.settings, indent=1, default=str), "```"]
    if r.commands:
        lines += ["", "### Reproduce", "", "```console", *r.commands, "```"]
    return "\n".join(lines) + "\n"


def _html(r: AuditReport) -> str:
    esc = html.escape
    rows = "".join(
        f"<tr><td>{esc(a)}</td><td>{esc(b)}</td><td>{esc(c)}</td><td>{esc(d)}</td></tr>"
        for a, b, c, d in _rows(r)
    )
    plot = curve_svg(r.radioactivity.curve, alpha=r.alpha) if r.radioactivity is not None else ""
    md = esc(r.to_markdown())
    color = {"radioactive": "#a11", "not radioactive": "#161", "inconclusive": "#a60"}[r.verdict]
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>distillguard audit</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:900px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}"
        "pre{background:#f6f6f6;padding:1em;overflow-x:auto}</style></head><body>"
        f"<h1>Distillation audit</h1><p style='font-size:1.4em;color:{color}'><b>{esc(r.verdict)}</b> — "
        f"combined p = {esc(_fmt_p(r.combined_log10_p_value))} at α = {r.alpha:g}</p>"
        f"<p>Suspect <code>{esc(r.suspect)}</code>; scheme <code>{esc(r.scheme)}</code>; key id "
        f"<code>{esc(r.key_id)}</code>.</p>"
        f"<table><tr><th>test</th><th>p-value</th><th>data</th><th>method</th></tr>{rows}</table>"
        f"<h2>p-value as queries accumulate</h2>{plot}"
        f"<h2>Full report</h2><pre>{md}</pre></body></html>\n"
    )

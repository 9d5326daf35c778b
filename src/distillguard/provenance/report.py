"""The audit report: one typed object, rendered as JSON for machines and Markdown/HTML for people.

The report has one section per line of evidence — watermark radioactivity, canaries, behavioural
fingerprint — each with its own p-value, and a combined conclusion that states the assumption it
rests on (:mod:`distillguard.fingerprint.combine`). The watermark section carries every test with
its null hypothesis, the p-value as queries accumulate (an inline SVG plot, no plotting library)
and the null controls; then the settings and the commands that reproduce the audit. Keys are
named only by their public ``key_id``.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from distillguard.errors import InputError
from distillguard.fingerprint.canaries import CanaryResult
from distillguard.fingerprint.combine import CombinedEvidence, Evidence, combine_evidence
from distillguard.fingerprint.style import StyleResult
from distillguard.provenance.controls import ControlsResult
from distillguard.provenance.lines import BehaviourLine, CanaryLine, StyleLine
from distillguard.provenance.radioactivity import CurvePoint, RadioactivityResult
from distillguard.provenance.reading import ReadingResult
from distillguard.provenance.tracing import AccountTrace

__all__ = ["AuditReport", "build_report", "curve_svg"]


@dataclass(frozen=True)
class AuditReport:
    """Everything an audit found, ready to render.

    ``verdict``, ``combined_log10_p_value`` and ``combination`` describe the watermark line
    (black-box and reading tests); ``conclusion`` combines every line that was run and
    ``distilled`` is its decision at ``alpha``.
    """

    suspect: str
    key_id: str | None  # the watermark key's public id (None: no watermark line)
    scheme: str | None
    alpha: float
    verdict: str  # watermark: "radioactive" | "not radioactive" | "inconclusive" | "not run"
    combined_log10_p_value: float
    combination: str
    radioactivity: RadioactivityResult | None
    reading: ReadingResult | None
    trace: AccountTrace | None
    controls: ControlsResult | None
    settings: dict[str, Any] = field(default_factory=dict)
    commands: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    canaries: CanaryLine | None = None
    behaviour: BehaviourLine | None = None
    conclusion: CombinedEvidence | None = None
    style: StyleLine | None = None
    distilled: bool = False

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
    scheme: str | None,
    key_id: str | None,
    alpha: float,
    radioactivity: RadioactivityResult | None = None,
    reading: ReadingResult | None = None,
    trace: AccountTrace | None = None,
    controls: ControlsResult | None = None,
    canaries: CanaryLine | None = None,
    style: StyleLine | None = None,
    behaviour: BehaviourLine | None = None,
    combine: str = "bonferroni",
    sequential: bool = False,
    settings: dict[str, Any] | None = None,
    commands: tuple[str, ...] = (),
) -> AuditReport:
    """Assemble the report, the watermark verdict and the combined conclusion.

    The radioactivity and reading tests look at the same watermark, so they are *not*
    independent: they are combined with the Bonferroni-adjusted minimum, valid under any
    dependence. The watermark verdict is "inconclusive" when the null controls failed (the
    procedure, not the suspect, is then in question) or when too few tuples were scored; an
    inconclusive watermark line enters the conclusion with p = 1.

    The conclusion combines the lines that were run (watermark, canaries, behaviour) with
    ``combine``: "bonferroni" (default; valid under any dependence — a student that copied our
    outputs carries all three for the same reason, so nothing is counted twice) or "fisher"
    (only if the lines are independent; the report says so).

    ``sequential``: the query count was not fixed in advance, so the black-box line enters with
    its any-look p-value (valid for any stopping rule) rather than the fixed-count one.

    Raises:
        InputError: no line of evidence at all.
        ConfigError: unknown ``combine`` method.
    """
    wm_lines = []
    notes: list[str] = []
    if radioactivity is not None:
        black_box = radioactivity.log10_p_value
        if sequential and radioactivity.any_look_log10_p_value is not None:
            black_box = radioactivity.any_look_log10_p_value
            notes.append(
                "Sequential audit (the query count was not fixed in advance, e.g. an earlier audit of "
                "this suspect was extended): the black-box line uses the any-look p-value "
                f"({_fmt_p(black_box)}; at this count alone {_fmt_p(radioactivity.log10_p_value)})."
            )
        wm_lines.append(Evidence("radioactivity (black-box)", black_box * math.log(10)))
    if reading is not None:
        wm_lines.append(Evidence("reading (open model)", reading.log10_p_value * math.log(10)))
    if wm_lines:
        comb = combine_evidence(wm_lines, alpha=alpha, method="bonferroni")
        log10_p, method = comb.log10_p_value, comb.assumption
        verdict = "radioactive" if log10_p <= math.log10(alpha) else "not radioactive"
    else:
        log10_p, method, verdict = 0.0, "no test run", "not run"
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
    lines: list[Evidence] = []
    if wm_lines:
        if verdict == "inconclusive":
            notes.append("The watermark line is inconclusive and enters the conclusion with p = 1.")
        lines.append(Evidence(
            "watermark radioactivity",
            0.0 if verdict == "inconclusive" else log10_p * math.log(10),
            f"key id {key_id}; {verdict}",
        ))
    if canaries is not None:
        c = canaries.result
        lines.append(_account_evidence("canaries", canaries.key_id, c.log10_p_value, c.traced_account,
                                       f"best account {next(iter(_ranked(c)), '–')}"))
    if style is not None:
        y = style.result
        lines.append(_account_evidence("style canaries", style.key_id, y.log10_p_value, y.traced_account,
                                       f"{y.families_used} style families in {style.n_answers} answers"))
    if behaviour is not None:
        b = behaviour.result
        lines.append(Evidence(
            "behavioural fingerprint",
            b.log10_p_value * math.log(10),
            f"{b.n_probes} probes vs {b.n_references} reference model(s)",
        ))
    if not lines:
        raise InputError("An audit report needs at least one line of evidence.")
    conclusion = combine_evidence(lines, alpha=alpha, method=combine)
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
        canaries=canaries,
        style=style,
        behaviour=behaviour,
        conclusion=conclusion,
        distilled=conclusion.conclusion,
    )


def _account_evidence(name: str, key_id: str, log10_p: float, traced: str | None, what: str) -> Evidence:
    """A canary-kind line: its p-value and which account (if any) it names."""
    return Evidence(name, log10_p * math.log(10), f"key id {key_id}; {what}"
                    + (f", traced to {traced}" if traced else ", no account named"))


def _ranked(c: CanaryResult) -> list[str]:
    """Accounts by Holm-corrected p-value, best first."""
    return sorted(c.per_account, key=lambda a: float(c.per_account[a].get("log10_p_holm", 0.0)))


ANY_LOOK_NOTE = (
    "Each p at a query count is exact if that count was fixed before any result was seen. An "
    "auditor who stops when the curve crosses α, or extends a finished audit, must read the "
    "'any look' p instead: it spends α over the looks at 1, 2, 4, 8, … queries (α·6/(π²j²) at "
    "the j-th), so it holds whatever the stopping rule."
)


def curve_svg(curve: tuple[CurvePoint, ...], *, alpha: float, width: int = 560, height: int = 260) -> str:
    """An SVG line plot of −log10 p against the number of queries (log-scaled x axis)."""
    if not curve:
        return "<p>(no curve: no answers)</p>"
    ml, mr, mt, mb = 56, 16, 14, 40
    xs = [math.log10(max(1, c.n_queries)) for c in curve]
    ys = [min(-c.log10_p_value, 1e6) for c in curve]
    ys_any = [min(-c.log10_p_any_look, 1e6) for c in curve]
    x_hi = max(xs) if max(xs) > 0 else 1.0
    y_hi = max([*ys, -math.log10(alpha)]) * 1.1 or 1.0

    def px(x: float) -> float:
        return ml + (width - ml - mr) * x / x_hi

    def py(y: float) -> float:
        return height - mb - (height - mt - mb) * y / y_hi

    pts = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(xs, ys, strict=True))
    pts_any = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(xs, ys_any, strict=True))
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
        f'<polyline points="{pts_any}" fill="none" stroke="#d08a1c" stroke-width="2" stroke-dasharray="6 3"/>'
        f'<text x="{ml + 6}" y="{mt + 14}" font-size="11" fill="#1f5fa8">'
        "— p at this count, fixed in advance</text>"
        f'<text x="{ml + 6}" y="{mt + 28}" font-size="11" fill="#d08a1c">'
        "- - p valid however the audit stopped</text>"
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
                + f"); score {x.score:.1f} vs {x.expected:.1f} expected"
                + (
                    f"; p valid however the audit stopped: {_fmt_p(x.any_look_log10_p_value)}"
                    if x.any_look_log10_p_value is not None
                    else ""
                ),
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
                "exact tail"
                if y.exact
                else "mixture bound over a fixed λ grid (valid at every prefix, conservative)",
            )
        )
    return out


def _conclusion_text(r: AuditReport) -> str:
    return "evidence of distillation" if r.distilled else "no evidence of distillation"


def _summary_rows(r: AuditReport) -> list[tuple[str, str, str]]:
    if r.conclusion is None:
        return []
    return [(e.name, _fmt_p(e.log_p_value / math.log(10)), e.detail) for e in r.conclusion.lines]


def _account_md(title: str, log10_p: float, n_accounts: int, traced: str | None, bullets: list[str],
                column: str, rows: list[tuple[str, str, str]]) -> list[str]:
    """The Markdown section of a canary-kind line: verdict, bullets, then the accounts table."""
    return [
        "", f"## {title}", "",
        f"**p = {_fmt_p(log10_p)}** (best account, Holm-corrected over {n_accounts} account(s)); "
        + (f"traced to account `{traced}`." if traced else "no account named."),
        "", *(f"- {b}" for b in bullets), "",
        f"| account | {column} | p (Holm) |", "|---|---|---|",
        *(f"| `{a}` | {mid} | {p} |" for a, mid, p in rows),
    ]


def _canary_md(c: CanaryLine) -> list[str]:
    x = c.result
    rows = [(a, f"{x.per_account[a]['hits']} of {x.per_account[a]['canaries']}",
             _fmt_p(float(x.per_account[a].get("log10_p_holm", 0.0)))) for a in _ranked(x)[:10]]
    return _account_md("Canaries", x.log10_p_value, len(x.per_account), x.traced_account, [
        f"Registry key id `{c.key_id}`; {c.n_canaries} canaries probed with {c.n_prompts} distinct "
        f"questions; decoys reproduced: {x.decoy_hits} of {x.decoys}.",
        f"Method: {x.method}.",
        "Null hypothesis: the suspect did not learn the account's canaries (its canaries and the "
        "never-served decoys are exchangeable).",
    ], "canaries reproduced", rows)


def _style_rows(x: StyleResult) -> list[tuple[str, str, str]]:
    ranked = sorted(x.per_account, key=lambda a: float(x.per_account[a]["log10_p_holm"]))
    return [(a, f"{x.per_account[a]['agree']} of {x.per_account[a]['families']}",
             _fmt_p(float(x.per_account[a]["log10_p_holm"]))) for a in ranked[:10]]


def _style_md(c: StyleLine) -> list[str]:
    x = c.result
    out = _account_md("Style canaries", x.log10_p_value, len(x.per_account), x.traced_account, [
        f"Registry key id `{c.key_id}`; {c.n_answers} suspect answers; {x.families_used} style "
        f"families used with a preference ({x.tokens_counted} occurrences).",
        f"Method: {x.method}.",
        "Null hypothesis: the suspect did not learn from the account's answers (its spelling and "
        "contraction habits are then independent of the account's random key bits).",
    ], "families agreeing", _style_rows(x))
    if x.evidence:
        out += ["", "Families that carried the signal (best account):", "",
                *(f"- {e}" for e in x.evidence)]
    return out


def _behaviour_md(b: BehaviourLine) -> list[str]:
    x = b.result
    out = [
        "",
        "## Behavioural fingerprint",
        "",
        f"**p = {_fmt_p(x.log10_p_value)}** — "
        + ("descends from our model: the suspect sides with it beyond what the references allow by chance"
           if x.descends else "not shown to side with our model more than the references allow by chance")
        + f" (α = {x.alpha:g}).",
        "",
        f"- {x.n_probes} probe prompts; references: {', '.join(f'`{n}`' for n in b.references)}; "
        f"answers compared by {b.similarity}.",
        f"- Statistic: {x.statistic} ({b.counted}, summed over probes); {x.expected_under_null:g} "
        "expected under the null.",
        f"- Assumptions: {x.assumptions}.",
    ]
    if b.signal_prompts:
        out += ["", "Probes that carried the signal:", ""]
        out += [f"- {p[:120]!r}" for p in b.signal_prompts]
    return out


def _markdown(r: AuditReport) -> str:
    lines = ["# Distillation audit", ""]
    if r.conclusion is not None:
        con = r.conclusion
        lines += [
            f"**Conclusion: {_conclusion_text(r)}** — combined p = {_fmt_p(con.log10_p_value)} at "
            f"α = {r.alpha:g}.",
            "",
            f"Combination: {con.method} — {con.assumption}.",
            "",
            "| line of evidence | p-value | detail |",
            "|---|---|---|",
            *[f"| {a} | {b} | {d} |" for a, b, d in _summary_rows(r)],
            "",
        ]
    lines += [f"- Suspect: `{r.suspect}`", ""]
    if r.verdict == "not run":
        lines += ["## Watermark radioactivity", "", "Not run (no watermark key given)."]
    else:
        lines += [
            "## Watermark radioactivity",
            "",
            f"**Verdict: {r.verdict}** — combined p = {_fmt_p(r.combined_log10_p_value)} at α = {r.alpha:g} "
            f"({r.combination}).",
            "",
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
        lines += [ANY_LOOK_NOTE, ""]
        lines += [
            "| queries | answer tokens | scored tuples | p (count fixed in advance) | p (any look) |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {c.n_queries} | {c.n_tokens} | {c.n_scored} | {_fmt_p(c.log10_p_value)} "
            f"| {_fmt_p(c.log10_p_any_look)} |"
            for c in r.radioactivity.curve
        ]
    if r.trace is not None:
        t = r.trace
        lines += ["", "### Account tracing", "", f"Verdict: **{t.verdict}**"]
        if t.named:
            lines.append(f"Named: {', '.join(f'`{a}`' for a in t.named)}")
        if t.inseparable:
            lines.append(f"Cannot be separated: {', '.join(f'`{a}`' for a in t.inseparable)}")
        if t.verdict == "unattributed":
            lines.append(
                f"Our outputs were learned (payload-free test on the traced tuples, p = "
                f"{_fmt_p(t.marked_log10_p)}), but no account carries evidence of its own: typical of a "
                "harvest spread over many accounts, or of an account missing from the candidates."
            )
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
    if r.canaries is not None:
        lines += _canary_md(r.canaries)
    if r.style is not None:
        lines += _style_md(r.style)
    if r.behaviour is not None:
        lines += _behaviour_md(r.behaviour)
    if r.notes:
        lines += ["", "### Notes", ""] + [f"- {n}" for n in r.notes]
    lines += ["", "### Settings", "", "```json", json.dumps(r.settings, indent=1, default=str), "```"]
    if r.commands:
        lines += ["", "### Reproduce", "", "```console", *r.commands, "```"]
    return "\n".join(lines) + "\n"


def _account_html(title: str, log10_p: float, traced: str | None, detail_html: str, body: str) -> list[str]:
    """The HTML section of a canary-kind line: p-value, named account, detail, then ``body``."""
    named = (f"traced to account <code>{html.escape(traced)}</code>" if traced else "no account named")
    return [f"<h2>{title}</h2>",
            f"<p><b>p = {html.escape(_fmt_p(log10_p))}</b>; {named}; {detail_html}.</p>", body]


def _table(head: tuple[str, ...], rows: Sequence[Sequence[str]]) -> str:
    esc = html.escape
    th = "".join(f"<th>{esc(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def _html(r: AuditReport) -> str:
    esc = html.escape
    parts = ["<h1>Distillation audit</h1>"]
    if r.conclusion is not None:
        color = "#a11" if r.distilled else "#161"
        parts += [
            f"<p style='font-size:1.4em;color:{color}'><b>{esc(_conclusion_text(r))}</b> — combined p = "
            f"{esc(_fmt_p(r.conclusion.log10_p_value))} at α = {r.alpha:g}</p>",
            f"<p>Combination: {esc(r.conclusion.method)} — {esc(r.conclusion.assumption)}.</p>",
            _table(("line of evidence", "p-value", "detail"), list(_summary_rows(r))),
        ]
    parts.append(f"<p>Suspect <code>{esc(r.suspect)}</code>.</p><h2>Watermark radioactivity</h2>")
    if r.verdict == "not run":
        parts.append("<p>Not run (no watermark key given).</p>")
    else:
        color = {"radioactive": "#a11", "not radioactive": "#161", "inconclusive": "#a60"}[r.verdict]
        plot = curve_svg(r.radioactivity.curve, alpha=r.alpha) if r.radioactivity is not None else ""
        parts += [
            f"<p style='color:{color}'><b>{esc(r.verdict)}</b> — p = "
            f"{esc(_fmt_p(r.combined_log10_p_value))}; scheme <code>{esc(str(r.scheme))}</code>; key id "
            f"<code>{esc(str(r.key_id))}</code>.</p>",
            _table(("test", "p-value", "data", "method"), list(_rows(r))),
            f"<h3>p-value as queries accumulate</h3>{plot}<p>{esc(ANY_LOOK_NOTE)}</p>",
        ]
    if r.canaries is not None:
        x = r.canaries.result
        parts += _account_html(
            "Canaries", x.log10_p_value, x.traced_account,
            f"registry key id <code>{esc(r.canaries.key_id)}</code>; decoys reproduced "
            f"{x.decoy_hits} of {x.decoys}",
            _table(("account", "canaries reproduced", "p (Holm)"), [
                (a, f"{x.per_account[a]['hits']} of {x.per_account[a]['canaries']}",
                 _fmt_p(float(x.per_account[a].get("log10_p_holm", 0.0))))
                for a in _ranked(x)[:10]
            ]))
    if r.style is not None:
        y = r.style.result
        parts += _account_html(
            "Style canaries", y.log10_p_value, y.traced_account,
            f"{y.families_used} style families in {r.style.n_answers} answers",
            _table(("account", "families agreeing", "p (Holm)"), _style_rows(y))
            + "<ul>" + "".join(f"<li>{esc(e)}</li>" for e in y.evidence) + "</ul>")
    if r.behaviour is not None:
        b = r.behaviour.result
        parts += [
            "<h2>Behavioural fingerprint</h2>",
            f"<p><b>p = {esc(_fmt_p(b.log10_p_value))}</b> from {b.n_probes} probes against "
            f"{b.n_references} reference model(s), answers compared by {esc(r.behaviour.similarity)}: "
            f"{'descends from our model' if b.descends else 'not shown to descend'}. "
            f"Assumptions: {esc(b.assumptions)}.</p>",
        ]
        if r.behaviour.signal_prompts:
            parts.append("<p>Probes that carried the signal:</p><ul>"
                         + "".join(f"<li>{esc(q[:160])}</li>" for q in r.behaviour.signal_prompts)
                         + "</ul>")
    parts.append(f"<h2>Full report</h2><pre>{esc(r.to_markdown())}</pre>")
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>distillguard audit</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:900px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}"
        "pre{background:#f6f6f6;padding:1em;overflow-x:auto}</style></head><body>"
        + "".join(parts)
        + "</body></html>\n"
    )

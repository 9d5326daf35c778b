"""Provenance audits: prove that a suspect model learned from our watermarked outputs (pure numpy).

- :mod:`~distillguard.provenance.radioactivity` — black-box test on the suspect's answers, with
  global dedup of (context, token) tuples, an optional served-context filter and the p-value as
  queries accumulate.
- :mod:`~distillguard.provenance.reading` — open-model test on the suspect's next-token
  predictions over our watermarked texts.
- :mod:`~distillguard.provenance.tracing` — which accounts' outputs it learned from (Holm,
  step-down for collusion, "cannot separate" when the evidence cannot).
- :mod:`~distillguard.provenance.controls` — the same audit under never-used keys.
- :mod:`~distillguard.provenance.report` — typed report, JSON, Markdown and HTML.
- :mod:`~distillguard.provenance.audit` — all of the above from collected evidence in one call.

Querying a suspect (HTTP, local models) lives in the CLI edge ``distillguard.commands.provenance``.
"""

from distillguard.provenance._collect import ContextFilter
from distillguard.provenance.audit import AuditSettings, run_audit
from distillguard.provenance.controls import ControlsResult, fpr_upper_bound, null_controls
from distillguard.provenance.radioactivity import CurvePoint, RadioactivityResult, radioactivity_test
from distillguard.provenance.reading import ReadingItem, ReadingResult, reading_test
from distillguard.provenance.report import AuditReport, build_report, curve_svg
from distillguard.provenance.tracing import AccountEvidence, AccountTrace, decode_accounts, trace_accounts

__all__ = [
    "AccountEvidence",
    "AccountTrace",
    "AuditReport",
    "AuditSettings",
    "ContextFilter",
    "ControlsResult",
    "CurvePoint",
    "RadioactivityResult",
    "ReadingItem",
    "ReadingResult",
    "build_report",
    "curve_svg",
    "decode_accounts",
    "fpr_upper_bound",
    "null_controls",
    "radioactivity_test",
    "reading_test",
    "run_audit",
    "trace_accounts",
]

"""Provenance audits: prove that a suspect model learned from our watermarked outputs (pure numpy).

- :mod:`~distillguard.provenance.radioactivity` — black-box test on the suspect's answers, with
  global dedup of (context, token) tuples, an optional served-context filter and the p-value as
  queries accumulate.
- :mod:`~distillguard.provenance.reading` — open-model test on the suspect's next-token
  predictions over our watermarked texts.
- :mod:`~distillguard.provenance.tracing` — which accounts' outputs it learned from (Holm,
  step-down for collusion, "cannot separate" when the evidence cannot).
- :mod:`~distillguard.provenance.controls` — the same audit under never-used keys.
- :mod:`~distillguard.provenance.logged` — suspect queries from our request log: the prompts an
  extraction account actually sent.
- :mod:`~distillguard.provenance.lines` — the canary and behavioural lines of evidence.
- :mod:`~distillguard.provenance.report` — typed report (a section per line of evidence and a
  combined conclusion), JSON, Markdown and HTML.
- :mod:`~distillguard.provenance.audit` — all of the above from collected evidence in one call.

Querying a suspect (HTTP, local models) lives in the edge modules ``suspects.py`` and ``probes.py``
(registries, answer files, reference answers) and the CLI ``distillguard.commands.provenance``.
"""

from distillguard.provenance._collect import ContextFilter
from distillguard.provenance.audit import AuditSettings, run_audit
from distillguard.provenance.controls import ControlsResult, fpr_upper_bound, null_controls
from distillguard.provenance.lines import BehaviourLine, CanaryLine, behaviour_line, canary_line
from distillguard.provenance.logged import LoggedPrompts, logged_prompts, read_logged_prompts
from distillguard.provenance.radioactivity import CurvePoint, RadioactivityResult, radioactivity_test
from distillguard.provenance.reading import ReadingItem, ReadingResult, reading_test
from distillguard.provenance.report import AuditReport, build_report, curve_svg
from distillguard.provenance.tracing import AccountEvidence, AccountTrace, decode_accounts, trace_accounts

__all__ = [
    "AccountEvidence",
    "AccountTrace",
    "AuditReport",
    "AuditSettings",
    "BehaviourLine",
    "CanaryLine",
    "ContextFilter",
    "ControlsResult",
    "CurvePoint",
    "LoggedPrompts",
    "RadioactivityResult",
    "ReadingItem",
    "ReadingResult",
    "behaviour_line",
    "build_report",
    "canary_line",
    "curve_svg",
    "decode_accounts",
    "fpr_upper_bound",
    "logged_prompts",
    "null_controls",
    "radioactivity_test",
    "read_logged_prompts",
    "reading_test",
    "run_audit",
    "trace_accounts",
]

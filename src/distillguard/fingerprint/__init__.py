"""Behavioural fingerprinting and serving-time canaries (pure: no model, no I/O).

- :mod:`~distillguard.fingerprint.canaries` — account-keyed canaries planted in answers to
  flagged accounts, the probe set that later asks a suspect about them, and the exact test of
  whether a suspect learned them (and from which account).
- :mod:`~distillguard.fingerprint.style` — style canaries: each account's keyed choice of
  spelling, contractions and list markers, the (streaming) rewriter that serves it and the
  exact test that finds it in a suspect's text; the families live in
  :mod:`~distillguard.fingerprint.style_lexicon`.
- :mod:`~distillguard.fingerprint.behavioural` — a black-box provenance test: is the suspect's
  behaviour closer to our model than to independent reference models, beyond chance? And the
  same test turned round: does our model find the suspect's answers more predictable than the
  references' answers?
- :mod:`~distillguard.fingerprint.combine` — one conclusion from several lines of evidence
  without double counting dependent evidence.
"""

from distillguard.fingerprint.behavioural import BehaviouralResult, behavioural_test, predictability_test
from distillguard.fingerprint.canaries import (
    Canary,
    CanaryConfig,
    CanaryResult,
    CanarySet,
    canary_test,
    make_canaries,
)
from distillguard.fingerprint.combine import CombinedEvidence, Evidence, combine_evidence
from distillguard.fingerprint.style import (
    StyleCounts,
    StyleResult,
    StyleRewriter,
    count_style,
    rewrite_style,
    style_bits,
    style_test,
)

__all__ = [
    "BehaviouralResult",
    "Canary",
    "CanaryConfig",
    "CanaryResult",
    "CanarySet",
    "CombinedEvidence",
    "Evidence",
    "StyleCounts",
    "StyleResult",
    "StyleRewriter",
    "behavioural_test",
    "canary_test",
    "combine_evidence",
    "count_style",
    "make_canaries",
    "predictability_test",
    "rewrite_style",
    "style_bits",
    "style_test",
]

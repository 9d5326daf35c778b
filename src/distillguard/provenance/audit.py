"""One audit from collected evidence: tests, null controls and the report (pure; no I/O).

The CLI (``distillguard audit``) gathers the suspect's answers, our served outputs and, for an
open model, its predictions; :func:`run_audit` turns them into an :class:`AuditReport`. The null
controls re-run exactly the same watermark procedure under never-used keys drawn from
``control_seed``. The canary and behavioural lines (:mod:`distillguard.provenance.lines`) are
computed by the caller and passed in; the report combines every line into one conclusion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from distillguard.errors import ConfigError, InputError
from distillguard.provenance._collect import ContextFilter, check_alpha
from distillguard.provenance.controls import ControlsResult, null_controls
from distillguard.provenance.lines import BehaviourLine, CanaryLine, StyleLine
from distillguard.provenance.radioactivity import RadioactivityResult, radioactivity_test
from distillguard.provenance.reading import ReadingItem, ReadingResult, reading_test
from distillguard.provenance.report import AuditReport, build_report
from distillguard.provenance.tracing import AccountTrace, MinCount, trace_accounts
from distillguard.watermark.base import WatermarkScheme
from distillguard.watermark.keys import SecretKey

__all__ = ["AuditSettings", "run_audit"]


@dataclass(frozen=True)
class AuditSettings:
    """How an audit is run (recorded in the report).

    Attributes:
        alpha: significance level of the verdict.
        dedup: global dedup of tuples (black-box) and first-occurrence scoring (reading).
        n_controls: never-used keys for the null controls (0 = none).
        control_seed: seed of the control keys (reproducible controls).
        curve_points: points of the p-value-vs-queries curve.
        reading_statistic: ``"mass"``, ``"top1"``, or ``"contrast"`` (needs the reference
            model's predictions, ``run_audit(reading_reference=...)``).
        combine: how the lines of evidence are combined: ``"bonferroni"`` (valid under any
            dependence) or ``"fisher"`` (assumes independent lines).
        trace_min_count: tracing scores only tuples the suspect produced at least this often
            (see :func:`~distillguard.provenance.tracing.trace_accounts`; exact for any value,
            but fix it before looking at the suspect's answers). ``"auto"`` (default): every rung
            of the pre-registered ladder 1, 2, 3, 5 at alpha / 4, Bonferroni.
        sequential: the number of queries was not fixed in advance (the audit extends one whose
            result was seen, or the auditor will watch the curve): the black-box line enters the
            verdict with its any-look p-value (``RadioactivityResult.any_look_log10_p_value``),
            valid however the audit stopped, instead of the p-value at a count fixed in advance.
    """

    alpha: float = 1e-6
    dedup: bool = True
    n_controls: int = 100
    control_seed: int = 0
    curve_points: int = 24
    reading_statistic: str = "mass"
    combine: str = "bonferroni"
    trace_min_count: MinCount = "auto"
    sequential: bool = False

    def __post_init__(self) -> None:
        check_alpha(self.alpha)
        m = self.trace_min_count
        if m != "auto" and (isinstance(m, bool) or not isinstance(m, int) or m < 1):
            raise ConfigError(f"trace_min_count must be an integer >= 1 or 'auto'. Got {m!r} instead.")
        if self.combine not in ("bonferroni", "fisher"):
            raise ConfigError(
                f"The 'combine' parameter must be 'bonferroni' or 'fisher'. Got {self.combine!r} instead."
            )
        if isinstance(self.n_controls, bool) or not isinstance(self.n_controls, int) or self.n_controls < 0:
            raise ConfigError(
                f"The 'n_controls' parameter must be an int ≥ 0. Got {self.n_controls!r} instead."
            )


def _rebuild(scheme: WatermarkScheme, key: SecretKey) -> WatermarkScheme:
    return type(scheme)(scheme.config, key)  # type: ignore[attr-defined, call-arg]


def run_audit(
    scheme: WatermarkScheme | None,
    *,
    suspect: str,
    answers: Sequence[np.ndarray] | None = None,
    served: Sequence[np.ndarray] | None = None,
    reading_items: Sequence[ReadingItem] | None = None,
    reading_reference: Sequence[ReadingItem] | None = None,
    candidates: Sequence[int | str] | None = None,
    canaries: CanaryLine | None = None,
    style: StyleLine | None = None,
    behaviour: BehaviourLine | None = None,
    settings: AuditSettings | None = None,
    extra_settings: dict[str, object] | None = None,
    commands: tuple[str, ...] = (),
) -> AuditReport:
    """Run every test the evidence allows, the null controls, and build the report.

    Args:
        scheme: our scheme and key(s), or None for an audit without the watermark line.
        suspect: a name for the report (URL, directory, file; never a secret).
        answers: the suspect's answers as token ids (black-box test, tracing).
        served: our served outputs as token ids (the context filter), optional.
        reading_items: the suspect's predictions on our texts (open-model test), optional.
        reading_reference: a key-independent model's predictions on the same texts (the
            ``contrast`` statistic), optional.
        candidates: accounts for tracing (payload-mode schemes only), optional.
        canaries: the canary line (:func:`~distillguard.provenance.lines.canary_line`), optional.
        style: the style-canary line (:func:`~distillguard.provenance.lines.style_line`), optional.
        behaviour: the behavioural line (:func:`~distillguard.provenance.lines.behaviour_line`),
            optional.

    Raises:
        InputError: a scheme without answers or reading items, or no line of evidence at all.
    """
    cfg = settings or AuditSettings()
    if scheme is None:
        if canaries is None and style is None and behaviour is None:
            raise InputError("An audit needs at least one line of evidence: a watermark scheme, "
                             "canaries or the behavioural test.")
        return build_report(
            suspect=suspect, scheme=None, key_id=None, alpha=cfg.alpha, canaries=canaries,
            style=style, behaviour=behaviour, combine=cfg.combine,
            settings={**asdict(cfg), **(extra_settings or {})}, commands=commands,
        )
    if not answers and not reading_items:
        raise InputError("An audit needs the suspect's answers, its predictions on our texts, or both.")
    width = int(scheme.config.context_width)  # type: ignore[attr-defined]

    def filters_for(s: WatermarkScheme) -> list[ContextFilter] | None:
        if served is None:
            return None
        return [ContextFilter.from_served(k, width, served) for k in s.keyring]  # type: ignore[attr-defined]

    radio: RadioactivityResult | None = None
    reading: ReadingResult | None = None
    trace: AccountTrace | None = None
    if answers:
        radio = radioactivity_test(
            scheme,
            answers,
            alpha=cfg.alpha,
            dedup=cfg.dedup,
            context_filters=filters_for(scheme),
            curve_points=cfg.curve_points,
        )
        if candidates and getattr(scheme, "payload_mode", False):
            trace = trace_accounts(scheme, answers, candidates, alpha=cfg.alpha, dedup=cfg.dedup,
                                   min_count=cfg.trace_min_count)
    if reading_items:
        reading = reading_test(
            scheme, reading_items, statistic=cfg.reading_statistic, alpha=cfg.alpha, dedup=cfg.dedup,
            reference=reading_reference,
        )
    controls: ControlsResult | None = None
    if cfg.n_controls:
        rng = np.random.default_rng(cfg.control_seed)

        def audit(s: WatermarkScheme) -> float:
            vals = []
            if answers:
                vals.append(
                    radioactivity_test(
                        s, answers, dedup=cfg.dedup, context_filters=filters_for(s), curve_points=0
                    ).log10_p_value
                )
            if reading_items:
                vals.append(
                    reading_test(
                        s, reading_items, statistic=cfg.reading_statistic, dedup=cfg.dedup,
                        reference=reading_reference,
                    ).log10_p_value
                )
            # the verdict combines the lines by Bonferroni; the controls check that combination
            return min(0.0, min(vals) + float(np.log10(len(vals))))

        controls = null_controls(lambda k: _rebuild(scheme, k), audit, rng, n_keys=cfg.n_controls)
    key_id = scheme.keyring.primary.key_id  # type: ignore[attr-defined]
    scheme_cfg: Any = scheme.config  # type: ignore[attr-defined]
    settings_doc = {**asdict(cfg), "scheme_config": asdict(scheme_cfg), **(extra_settings or {})}
    return build_report(
        suspect=suspect,
        scheme=scheme.name,
        key_id=radio.key_id if radio is not None else key_id,
        alpha=cfg.alpha,
        radioactivity=radio,
        reading=reading,
        trace=trace,
        controls=controls,
        canaries=canaries,
        style=style,
        behaviour=behaviour,
        combine=cfg.combine,
        sequential=cfg.sequential,
        settings=settings_doc,
        commands=commands,
    )

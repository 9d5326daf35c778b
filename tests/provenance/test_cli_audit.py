"""``distillguard audit`` end to end against a fake OpenAI-compatible server run in the test.

The server is a real HTTP server on 127.0.0.1 (stdlib), answering with text: a watermark-trained
"student" or a clean model over real SmolLM2 word tokens, so the CLI's tokenisation, querying,
backoff, caching and reporting are all exercised. Needs the SmolLM2 tokenizer (marker ``model``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from tests.provenance.fake_openai import FakeOpenAI

from distillguard.cli import main
from distillguard.provenance.simulate import CountStudent
from distillguard.watermark import KGW, KGWConfig, write_key_file

pytestmark = [pytest.mark.model, pytest.mark.slow]


@pytest.fixture(scope="module")
def tok():
    from distillguard.model import load_text_tokenizer

    return load_text_tokenizer()


@pytest.fixture(scope="module")
def words(tok) -> np.ndarray:
    """Word tokens (" word") that survive decode → encode unchanged, so answers round-trip."""
    out = []
    for i in range(2000, 20000):
        s = tok.decode([i])
        if re.fullmatch(r" [a-z]{3,9}", s) and tok.encode(s).tolist() == [i]:
            out.append(i)
        if len(out) == 300:
            break
    return np.array(out, dtype=np.int64)


def generate(
    words: np.ndarray, table: np.ndarray, rng, n: int, length: int, scheme: KGW | None
) -> np.ndarray:
    """Word-index sequences from a Markov table, watermarked on the real token ids."""
    idx = rng.integers(0, words.size, (n, 1))
    for _ in range(length):
        logits = table[idx[:, -1]].copy()
        if scheme is not None:
            full = np.full((n, 49152), -1e4, dtype=np.float32)
            full[:, words] = logits
            logits = scheme.process(words[idx[:, -2:]], full, [None] * n)[:, words]
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        nxt = (p.cumsum(axis=1) < rng.random((n, 1))).sum(axis=1).clip(0, words.size - 1)
        idx = np.concatenate([idx, nxt[:, None]], axis=1)
    return idx[:, 1:]


def _answering(answers: list[str]) -> Callable[[str], str]:
    """Reply to prompt "... <i>" with answers[i] (the audit's prompts are numbered)."""
    return lambda prompt: answers[int(prompt.split()[-1]) % len(answers)]


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tok, words) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("audit")
    key = write_key_file(tmp / "wm.key")
    scheme = KGW(KGWConfig(context_width=1), key)
    rng = np.random.default_rng(3)
    table = (rng.standard_normal((words.size, words.size)) * 2.5).astype(np.float32)
    harvest = generate(words, table, rng, 200, 60, scheme)
    student = CountStudent(words.size, order=1, smoothing=0.01).fit(list(harvest))
    radio = [tok.decode(words[a]) for a in student.generate(rng.integers(0, words.size, (60, 1)), 60, rng)]
    clean = [tok.decode(words[a]) for a in generate(words, table, rng, 60, 60, None)]
    (tmp / "prompts.txt").write_text("\n".join(f"Tell me about item {i}" for i in range(60)) + "\n")
    yield {"tmp": tmp, "key": tmp / "wm.key", "radio": radio, "clean": clean}


def audit_args(s: dict, url: str, out: Path, *extra: str) -> list[str]:
    return [
        "audit",
        "--key",
        str(s["key"]),
        "--scheme-config",
        '{"context_width": 1}',
        "--endpoint",
        url,
        "--prompts",
        str(s["tmp"] / "prompts.txt"),
        "--queries",
        "60",
        "--controls",
        "20",
        "--out",
        str(out),
        "--quiet",
        *extra,
    ]


def test_radioactive_endpoint_is_flagged_with_reports(setup, capsys) -> None:
    srv = FakeOpenAI(_answering(setup["radio"]), rate_limit_first=True)
    try:
        out, html = setup["tmp"] / "r.json", setup["tmp"] / "r.html"
        code = main(audit_args(setup, srv.url, out, "--html", str(html), "--backoff", "0"))
    finally:
        srv.close()
    assert code == 1, capsys.readouterr()
    doc = json.loads(out.read_text())
    assert doc["verdict"] == "radioactive" and doc["radioactivity"]["log10_p_value"] < -6
    # 60 queries: the any-look p-value comes from the looks at 1, 2, …, 32 answers, spent
    radio = doc["radioactivity"]
    looks = [c for c in radio["curve"] if c["n_queries"] in (1, 2, 4, 8, 16, 32)]
    assert len(looks) == 6 and radio["any_look_log10_p_value"] == radio["curve"][-1]["log10_p_any_look"]
    assert radio["log10_p_value"] < radio["any_look_log10_p_value"] < 0
    assert doc["controls"]["passed"] and doc["controls"]["n_keys"] == 20
    assert len(srv.requests) == 61  # 60 prompts + one rate-limited retry
    assert "<svg" in html.read_text()
    key_hex = json.loads(setup["key"].read_text())["key"]
    assert key_hex not in out.read_text() and key_hex not in html.read_text()


def test_clean_endpoint_is_not_flagged(setup) -> None:
    srv = FakeOpenAI(_answering(setup["clean"]))
    try:
        out = setup["tmp"] / "c.json"
        code = main(audit_args(setup, srv.url, out))
    finally:
        srv.close()
    doc = json.loads(out.read_text())
    assert code == 0 and doc["verdict"] == "not radioactive"
    assert doc["radioactivity"]["log10_p_value"] > -3


def test_failing_endpoint_keeps_partial_answers_and_resumes(setup, capsys) -> None:
    cache = setup["tmp"] / "answers.jsonl"
    out = setup["tmp"] / "p.json"
    srv = FakeOpenAI(_answering(setup["radio"]), fail_after=25)
    try:
        code = main(
            audit_args(
                setup, srv.url, out, "--answers-cache", str(cache), "--max-retries", "1", "--backoff", "0"
            )
        )
    finally:
        srv.close()
    assert code == 2 and "HTTP 500" in capsys.readouterr().err
    assert len(cache.read_text().splitlines()) == 24  # whole batches of 8 written before the failure
    srv = FakeOpenAI(_answering(setup["radio"]))
    try:
        code = main(audit_args(setup, srv.url, out, "--answers-cache", str(cache)))
    finally:
        srv.close()
    assert code == 1 and len(srv.requests) == 60 - 24
    lines = [json.loads(x) for x in cache.read_text().splitlines()]
    assert len(lines) == 61 and lines[-1]["completed_audit"]["watermark_queries"] == 60
    doc = json.loads(out.read_text())
    assert doc["settings"]["sequential"] is False  # the failed run never completed: not a look


def test_an_audit_extended_on_its_cache_is_judged_by_the_any_look_p_value(setup, capsys) -> None:
    cache, out = setup["tmp"] / "extend.jsonl", setup["tmp"] / "e.json"
    srv = FakeOpenAI(_answering(setup["radio"]))
    try:
        first = main(audit_args(setup, srv.url, out, "--answers-cache", str(cache), "--queries", "30"))
        fixed = json.loads(out.read_text())
        capsys.readouterr()
        second = main(audit_args(setup, srv.url, out, "--answers-cache", str(cache)))
    finally:
        srv.close()
    assert first == second == 1 and fixed["settings"]["sequential"] is False
    assert fixed["combined_log10_p_value"] == pytest.approx(fixed["radioactivity"]["log10_p_value"])
    assert "completed at 30 watermark queries" in capsys.readouterr().err
    doc = json.loads(out.read_text())
    radio = doc["radioactivity"]
    assert doc["settings"]["sequential"] is True and len(srv.requests) == 60
    # the verdict rests on the any-look p-value, weaker than the fixed-count one at 60 answers
    assert doc["combined_log10_p_value"] == pytest.approx(radio["any_look_log10_p_value"])
    assert radio["any_look_log10_p_value"] > radio["log10_p_value"]
    assert any(n.startswith("Sequential audit") for n in doc["notes"])


def test_unreachable_endpoint_is_a_clear_error(setup, capsys) -> None:
    code = main(audit_args(setup, "http://127.0.0.1:9/v1", setup["tmp"] / "u.json", "--max-retries", "0"))
    assert code == 2 and "cannot reach" in capsys.readouterr().err


def test_answers_file_path_and_bad_input(setup, tok, capsys) -> None:
    f = setup["tmp"] / "answers.jsonl"
    f.write_text(
        "".join(json.dumps({"prompt": str(i), "answer": a}) + "\n" for i, a in enumerate(setup["radio"]))
    )
    out = setup["tmp"] / "a.json"
    base = [
        "audit",
        "--key",
        str(setup["key"]),
        "--scheme-config",
        '{"context_width": 1}',
        "--controls",
        "0",
        "--out",
        str(out),
    ]
    assert main([*base, "--answers", str(f)]) == 1
    bad = setup["tmp"] / "bad.jsonl"
    bad.write_text('{"prompt": "x"}\nnot json\n')
    assert main([*base, "--answers", str(bad)]) == 2
    assert main([*base, "--answers", str(f), "--scheme-config", '{"gamma": 2}']) == 2
    assert "gamma" in capsys.readouterr().err


def test_prompts_from_request_log_send_the_accounts_prompts(setup, capsys) -> None:
    log = setup["tmp"] / "requests.jsonl"
    rows = [
        {"ts": 1_800_000_000 + i, "account_id": "acct-x" if i % 2 else "acct-y",
         "messages": [{"role": "user", "content": f"logged prompt {i}"}]}
        for i in range(130)
    ]
    rows.append({"ts": 1_700_000_000, "account_id": "acct-x", "prompt": "the oldest prompt 999"})
    rows.append({"ts": 1_900_000_000, "account_id": "acct-x", "prompt": "refused prompt 998", "status": 429})
    log.write_text("".join(json.dumps(r) + "\n" for r in rows) + "not json\n")
    args = audit_args(setup, "", setup["tmp"] / "l.json", "--backoff", "0")
    i = args.index("--prompts")
    del args[i : i + 2]
    srv = FakeOpenAI(_answering(setup["radio"]))
    try:
        args[args.index("--endpoint") + 1] = srv.url
        code = main([*args, "--prompts-from-log", str(log), "--account", "acct-x"])
    finally:
        srv.close()
    assert code == 1, capsys.readouterr()
    sent = srv.prompts
    want = ["the oldest prompt 999", *[f"logged prompt {i}" for i in range(1, 130, 2)]][:60]
    assert sent == want, sent[:3]  # the account's successful prompts, oldest first, nobody else's
    doc = json.loads((setup["tmp"] / "l.json").read_text())
    assert "acct-x" in doc["settings"]["prompts"]
    # the two flags go together, an unknown account names the log's accounts
    assert main([*args, "--prompts-from-log", str(log)]) == 2
    assert main([*args, "--prompts-from-log", str(log), "--account", "acct-z"]) == 2
    assert "acct-x" in capsys.readouterr().err

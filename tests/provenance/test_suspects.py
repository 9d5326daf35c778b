"""The suspect clients: an OpenAI-compatible server simulated with httpx.MockTransport."""

from __future__ import annotations

import json

import httpx
import pytest

from distillguard.errors import ConfigError, InputError
from distillguard.provenance.suspects import AnswersFileSuspect, EndpointSuspect, SuspectError, query_suspect


def server(replies: list[httpx.Response]):
    """A transport that serves ``replies`` in order and records the requests."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return replies[min(len(seen) - 1, len(replies) - 1)]

    return httpx.MockTransport(handler), seen


def ok(text: str | None) -> httpx.Response:
    return httpx.Response(200, json={"choices": [{"message": {"role": "assistant", "content": text}}]})


def test_backoff_on_rate_limit_and_server_errors() -> None:
    waits: list[float] = []
    transport, seen = server(
        [httpx.Response(429, headers={"Retry-After": "3"}), httpx.Response(503), ok("hi")]
    )
    s = EndpointSuspect("http://x/v1", "sk-test", transport=transport, sleep=waits.append, backoff=0.5)
    assert s.answer(["q"]) == ["hi"]
    assert waits == [3.0, 6.0]  # Retry-After wins over the 0.5 s backoff, then doubles
    body = json.loads(seen[0].content)
    assert seen[0].url.path == "/v1/chat/completions" and body["messages"][0]["content"] == "q"
    assert seen[0].headers["authorization"] == "Bearer sk-test"
    assert s.name == "http://x/v1"


def test_persistent_errors_and_garbage_are_clear_errors() -> None:
    transport, seen = server([httpx.Response(500)])
    with pytest.raises(SuspectError, match="after 3 attempts: HTTP 500"):
        EndpointSuspect("http://x/v1", transport=transport, sleep=lambda s: None, max_retries=2).answer(["q"])
    assert len(seen) == 3
    transport, seen = server([httpx.Response(401, text="bad key")])
    with pytest.raises(SuspectError, match="refused"):
        EndpointSuspect("http://x/v1", transport=transport, sleep=lambda s: None).answer(["q"])
    assert len(seen) == 1  # no retry on a client error
    transport, _ = server([httpx.Response(200, content=b"\x00\xff not json")])
    with pytest.raises(SuspectError, match="not an OpenAI chat completion"):
        EndpointSuspect("http://x/v1", transport=transport).answer(["q"])
    transport, _ = server([httpx.Response(200, json={"choices": [{"message": {"content": [1, 2]}}]})])
    with pytest.raises(SuspectError, match="not text"):
        EndpointSuspect("http://x/v1", transport=transport).answer(["q"])
    transport, _ = server([ok(None)])
    assert EndpointSuspect("http://x/v1", transport=transport).answer(["q"]) == [""]  # empty answer kept
    with pytest.raises(ConfigError):
        EndpointSuspect("ftp://x")


def test_query_suspect_caches_and_resumes(tmp_path) -> None:
    cache = tmp_path / "answers.jsonl"
    transport, seen = server([ok("a1"), ok("a2"), httpx.Response(500)])
    s = EndpointSuspect("http://x/v1", transport=transport, sleep=lambda s: None, max_retries=0)
    with pytest.raises(SuspectError):
        query_suspect(s, ["p1", "p2", "p3"], cache, batch_size=1)
    assert [json.loads(x)["answer"] for x in cache.read_text().splitlines()] == ["a1", "a2"]
    transport, seen = server([ok("a3")])
    s = EndpointSuspect("http://x/v1", transport=transport)
    assert query_suspect(s, ["p1", "p2", "p3", "p1"], cache) == ["a1", "a2", "a3", "a1"]
    assert len(seen) == 1


def test_answers_file_suspect(tmp_path) -> None:
    f = tmp_path / "a.jsonl"
    f.write_text('{"prompt": "p", "answer": "x"}\n\n{"prompt": "q", "answer": "y"}\n')
    s = AnswersFileSuspect(f)
    assert s.prompts == ["p", "q"] and s.answer(["q", "p"]) == ["y", "x"]
    with pytest.raises(InputError):
        s.answer(["zzz"])
    f.write_text('{"prompt": "p"}\n')
    with pytest.raises(InputError, match=r"a\.jsonl:1"):
        AnswersFileSuspect(f)

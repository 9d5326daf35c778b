"""The local-model backend: request batching across accounts, and (with the real SmolLM2) a
watermark that names the caller's account in text served through the OpenAI API."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest

from distillguard.gateway.backends import CompletionRequest, LocalModelBackend
from distillguard.watermark import SecretKey

pytestmark = pytest.mark.anyio
KEY = SecretKey(bytes(range(32)))


@dataclass(frozen=True)
class _Gen:
    text: str
    token_ids: tuple[int, ...]
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str


class _RecordingGenerator:
    """Stands in for SmolLM2: answers each prompt with its own length in tokens, records calls."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.tokenizer = self

    def with_scheme(self, scheme: Any) -> _RecordingGenerator:
        self.scheme = scheme
        return self

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return " ".join(f"t{i}" for i in ids)

    def generate(self, prompts: list[Any], payloads: list[int], *, max_new_tokens: int,
                 temperature: float, batch_size: int, on_tokens: Any = None) -> list[_Gen]:
        self.calls.append({"n": len(prompts), "payloads": payloads, "max_new_tokens": max_new_tokens,
                           "temperature": temperature, "delta": self.scheme.config.delta})
        ids = tuple(range(max_new_tokens))
        for step in range(1, max_new_tokens + 1):  # streaming: every row's ids after each step
            self.step = step
            for row in range(len(prompts)) if on_tokens else ():
                on_tokens(row, ids[:step])
        self.finished = True
        return [_Gen(self.decode(list(ids)), ids, 3, max_new_tokens, "length") for _ in prompts]


def _req(account: str, max_tokens: int = 8, temperature: float = 0.7,
         delta: float = 2.0) -> CompletionRequest:
    return CompletionRequest("m", f"hello from {account}", None, max_tokens, temperature, account, delta)


async def test_concurrent_requests_share_one_batch_with_their_own_payloads() -> None:
    gen = _RecordingGenerator()
    be = LocalModelBackend(KEY, generator=gen, window_s=0.2)
    outs = await asyncio.gather(*(be.complete(_req(f"acct{i}", max_tokens=4 + i)) for i in range(5)))
    await be.aclose()
    assert be.batches == [5]
    call = gen.calls[0]
    assert call["max_new_tokens"] == 8 and len(set(call["payloads"])) == 5
    for i, c in enumerate(outs):  # each row cut to its own max_tokens
        assert c.completion_tokens == 4 + i and c.text.split() == [f"t{j}" for j in range(4 + i)]
        assert c.watermarked


async def test_streams_each_row_as_it_is_generated_and_cut_to_its_own_length() -> None:
    gen = _RecordingGenerator()
    be = LocalModelBackend(KEY, generator=gen, window_s=0.2)

    async def collect(account: str, max_tokens: int) -> tuple[list[Any], list[int]]:
        items, steps_seen = [], []
        async for item in be.stream(_req(account, max_tokens=max_tokens)):
            items.append(item)
            steps_seen.append(gen.step)
        return items, steps_seen

    (short, _), (long, _) = await asyncio.gather(collect("a", 3), collect("b", 6))
    plain = await be.complete(_req("c", max_tokens=6))
    await be.aclose()
    assert be.batches[0] == 2  # both streams in one batch
    for items, n in ((short, 3), (long, 6)):
        *pieces, final = items
        assert all(isinstance(p, str) for p in pieces) and len(pieces) == n  # one piece per token
        assert "".join(pieces) == final.text == " ".join(f"t{i}" for i in range(n))
        assert final.completion_tokens == n and final.finish_reason == "length" and final.watermarked
    assert plain.text == "".join(long[:-1])


async def test_first_piece_arrives_before_the_answer_is_finished() -> None:
    import threading

    class Slow(_RecordingGenerator):
        def __init__(self) -> None:
            super().__init__()
            self.finished = False
            self.release = threading.Event()

        def generate(self, *a: Any, **k: Any) -> list[_Gen]:
            on_tokens = k["on_tokens"]
            on_tokens(0, (0,))
            self.release.wait(5)  # the rest of the answer waits until the test saw the first piece
            return super().generate(*a, **k)

    gen = Slow()
    be = LocalModelBackend(KEY, generator=gen, window_s=0.01)
    stream = be.stream(_req("a", max_tokens=4))
    first = await stream.__anext__()
    assert first == "t0" and not gen.finished
    gen.release.set()
    rest = [item async for item in stream]
    await be.aclose()
    assert "".join([first, *rest[:-1]]) == rest[-1].text


@pytest.mark.parametrize("mode", ["no piece on the way", "result long after the last piece"])
async def test_stream_ends_with_the_totals(mode: str) -> None:
    import time

    class Odd(_RecordingGenerator):
        def generate(self, *a: Any, **k: Any) -> list[_Gen]:
            if mode == "no piece on the way":  # all text arrives with the result
                k.pop("on_tokens", None)
                return super().generate(*a, **k)
            out = super().generate(*a, **k)
            time.sleep(0.2)  # the caller has every piece and waits on the result alone
            return out

    be = LocalModelBackend(KEY, generator=Odd(), window_s=0.01)
    items = [item async for item in be.stream(_req("a", max_tokens=3))]
    await be.aclose()
    assert "".join(items[:-1]) == items[-1].text == "t0 t1 t2"


async def test_rows_with_different_temperature_or_strength_run_separately() -> None:
    gen = _RecordingGenerator()
    be = LocalModelBackend(KEY, generator=gen, window_s=0.2)
    await asyncio.gather(be.complete(_req("a")), be.complete(_req("b", delta=4.0)),
                         be.complete(_req("c", temperature=0.0)))
    await be.aclose()
    assert sorted((c["temperature"], c["delta"]) for c in gen.calls) == [(0.0, 2.0), (0.7, 2.0), (0.7, 4.0)]


async def test_generation_errors_reach_every_waiting_request() -> None:
    from distillguard.errors import InputError

    class Failing(_RecordingGenerator):
        def generate(self, *a: Any, **k: Any) -> list[_Gen]:
            raise InputError("A prompt is 9000 tokens after the chat template; the limit is 2048.")

    be = LocalModelBackend(KEY, generator=Failing(), window_s=0.05)
    results = await asyncio.gather(be.complete(_req("a")), be.complete(_req("b")), return_exceptions=True)
    await be.aclose()
    assert all(isinstance(r, InputError) for r in results)


@pytest.mark.model
async def test_openai_client_through_gateway_gets_text_watermarked_with_its_account(tmp_path) -> None:
    import httpx
    import openai
    from tests.gateway.conftest import ADMIN, make_settings

    from distillguard.gateway.app import create_app
    from distillguard.model.generate import Generator
    from distillguard.model.tokenizer import load_text_tokenizer
    from distillguard.watermark import KGW, KGWConfig

    settings = make_settings(tmp_path, backend="local")
    from distillguard.watermark.keys import load_or_create_key_file

    key = load_or_create_key_file(settings.key_file)
    backend = LocalModelBackend(key, generator=Generator.load(), window_s=0.1)
    app = create_app(settings, backend=backend)
    admin = {"Authorization": f"Bearer {ADMIN}"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
        made = []
        for name in ("alice", "bob"):
            r = await http.post("/admin/accounts", json={"name": name}, headers=admin)
            made.append((r.json()["account"]["account_id"], r.json()["api_key"]))
        clients = [openai.AsyncOpenAI(base_url="http://gw/v1", api_key=k,
                                      http_client=httpx.AsyncClient(transport=transport, base_url="http://gw"))
                   for _, k in made]
        prompt = "Write a detailed paragraph about the history of the bicycle and how it changed cities."
        answers = await asyncio.gather(*(c.chat.completions.create(
            model="smollm2-135m-instruct", messages=[{"role": "user", "content": prompt}],
            max_tokens=200, temperature=0.8) for c in clients))
        # Streaming from the model: the text comes in token-sized pieces, not one block.
        stream = await clients[0].chat.completions.create(
            model="smollm2-135m-instruct", messages=[{"role": "user", "content": "Name three colours."}],
            max_tokens=24, temperature=0.8, stream=True)
        chunks = [ch async for ch in stream]
    await backend.aclose()
    pieces = [ch.choices[0].delta.content for ch in chunks if ch.choices and ch.choices[0].delta.content]
    assert len(pieces) >= 5 and chunks[-1].choices[0].finish_reason in ("stop", "length")
    app.state.writer.flush()
    (response, completion_tokens, watermarked), = app.state.store._exec(
        "SELECT response, completion_tokens, watermarked FROM request_log WHERE account_id = ? "
        "AND prompt = ?", (made[0][0], "Name three colours."))
    assert response == "".join(pieces) and completion_tokens <= 24 and watermarked == 1
    app.state.writer.close()
    assert backend.batches[0] == 2  # both accounts served in one batch
    tok = load_text_tokenizer()
    tracer = KGW(KGWConfig(payload_bits=32), key)
    names = [acct for acct, _ in made]
    for acct, ans in zip(names, answers, strict=True):
        text = ans.choices[0].message.content or ""
        assert ans.usage is not None and ans.usage.completion_tokens <= 200
        # Knowing the gateway's accounts, each account's own pattern is an exact binomial test.
        traced = tracer.trace(tok.encode(text), names, alpha=1e-4)
        assert traced.account == acct, traced
        # ~200 tokens is short for separating two accounts at 1e-4; the sign test still favours
        # the right one at the 5% level (longer answers separate: docs/benchmarks.md).
        assert traced.separation_p_value < 0.05, traced

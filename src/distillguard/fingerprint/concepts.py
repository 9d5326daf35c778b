"""The default concepts canaries attach to: topics that real users ask about often.

The list (``concepts.txt``) was chosen so that a canary gets served: a concept no prompt ever
mentions plants nothing. Frequencies in the first 5,000 ShareGPT conversations range from
hundreds ("python", "machine learning") to a handful ("bayes theorem"); the rare ones make
good probes because an unrelated model has no reason to name them with an odd alias.
"""

from __future__ import annotations

from importlib import resources

__all__ = ["default_concepts"]


def default_concepts() -> tuple[str, ...]:
    """Return the packaged concept list (lower case, one per line, de-duplicated, in order)."""
    text = resources.files("distillguard.fingerprint").joinpath("concepts.txt").read_text("utf-8")
    return tuple(dict.fromkeys(line.strip().lower() for line in text.splitlines() if line.strip()))

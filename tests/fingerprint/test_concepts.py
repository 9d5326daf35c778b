"""The packaged concept list is usable by make_canaries and appears in real prompts."""

from __future__ import annotations

import itertools
import re

from distillguard.fingerprint.concepts import default_concepts


def test_concepts_are_unique_lowercase_and_plentiful() -> None:
    concepts = default_concepts()
    assert len(concepts) >= 100
    assert len(set(concepts)) == len(concepts)
    assert all(c == c.lower() and c.strip() == c for c in concepts)


def test_most_concepts_occur_in_real_user_prompts() -> None:
    from distillguard.data.corpora import iter_sharegpt

    text = "\n".join(str(c) for c in itertools.islice(iter_sharegpt(), 2000)).lower()
    seen = [c for c in default_concepts() if re.search(rf"\b{re.escape(c)}\b", text)]
    assert len(seen) >= len(default_concepts()) // 2

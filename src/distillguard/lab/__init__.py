"""The distillation lab: harvest our watermarked SmolLM2, train students on CPU, audit them.

- :mod:`~distillguard.lab.harvest` — batched, cached (prompt, answer) harvests.
- :mod:`~distillguard.lab.student` — a tiny causal LM trained from scratch with our tokenizer.
- :mod:`~distillguard.lab.run` — the experiment: students × audits → a results table.

Everything here imports torch/transformers lazily; it is an edge of the library, run by
``bench/lab_distillation.py``.
"""

"""Engines run the one feature description (:mod:`distillguard.analytics.features`).

Each engine is a class registered in :data:`engines` with the same three methods::

    with engines.get("duckdb")(staged_parquet, bench_prompts) as eng:
        eng.accounts()            # list of per-account feature dicts
        eng.links()               # list of {account_id, kind, value, c}
        eng.pooled({acct: group}) # the same features, with accounts merged into groups
"""

from __future__ import annotations

from typing import Any, Protocol

from distillguard.registry import Registry

__all__ = ["ENRICHED", "Engine", "engines"]

# The enriched relation both engines materialise: the feature description's enrichment plus
# is_bench (1.0 when the normalised prompt, or its tail behind an added instruction, is a known
# benchmark prompt). Reads relations ``req`` and ``bench_k`` (the rendered ``bench_keys``).
ENRICHED = """
SELECT e.*,
  CASE WHEN bb.k IS NULL AND bt.k IS NULL THEN CAST(0 AS DOUBLE) ELSE CAST(1 AS DOUBLE) END AS is_bench
FROM ({enrich}) e
LEFT JOIN (SELECT k FROM bench_k WHERE kind = 'body') bb ON e.body = bb.k
LEFT JOIN (SELECT k FROM bench_k WHERE kind = 'tail') bt ON e.btail = bt.k
"""


class Engine(Protocol):
    """What the scan pipeline needs from an engine."""

    def accounts(self) -> list[dict[str, Any]]: ...
    def links(self) -> list[dict[str, Any]]: ...
    def pooled(self, groups: dict[str, str]) -> list[dict[str, Any]]: ...
    def close(self) -> None: ...


engines: Registry[Any] = Registry("analytics engine")


def _load() -> None:
    # Registration happens on import of the edge modules; import them lazily.
    from distillguard.analytics.engines import duckdb_engine, spark_engine  # noqa: F401

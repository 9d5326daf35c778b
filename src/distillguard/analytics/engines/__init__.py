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

__all__ = ["IS_BENCH", "Engine", "engines"]

# 1.0 when a request's normalised prompt is a known benchmark prompt (shared by both engines).
IS_BENCH = "CASE WHEN bh.body IS NULL THEN CAST(0 AS DOUBLE) ELSE CAST(1 AS DOUBLE) END"


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

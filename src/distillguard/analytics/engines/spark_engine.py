"""Spark engine: the same feature SQL (Spark dialect) on a SparkSession (local mode by default).

No Python runs per row: enrichment and aggregation are built-in Spark SQL functions (regular
expressions, md5, windows, aggregates) over the staged Parquet, text features once per
distinct prompt; results come back to the driver through Arrow, one row per account.
How it scales out: see the analytics section of docs/benchmarks.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from distillguard.analytics.engines import ENRICHED, engines
from distillguard.analytics.features import render

__all__ = ["SparkEngine"]


@engines.register("spark")
class SparkEngine:
    """Runs on ``master`` (``local[2]`` unless given); stops the session on close."""

    def __init__(
        self,
        staged: Path,
        bench_prompts: list[str],
        master: str = "local[2]",
        driver_memory: str = "4g",
        shuffle_partitions: int = 8,
    ) -> None:
        try:
            from pyspark.sql import SparkSession
        except ImportError as exc:  # pragma: no cover - depends on the install
            from distillguard.errors import missing_extra

            raise missing_extra("pyspark", "spark") from exc
        self._q = render("spark")
        self._spark = (
            SparkSession.builder.master(master)
            .appName("distillguard-scan")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            # Local mode runs in the driver JVM; the 1g default spills a 10M-row cache to disk.
            .config("spark.driver.memory", driver_memory)
            .config("spark.sql.shuffle.partitions", str(int(shuffle_partitions)))
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .config("spark.sql.session.timeZone", "UTC")
            .getOrCreate()
        )
        self._spark.sparkContext.setLogLevel("ERROR")
        self._spark.read.parquet(str(staged)).createOrReplaceTempView("req")
        self._spark.createDataFrame(
            [(p,) for p in (bench_prompts or [""])], "prompt string"
        ).createOrReplaceTempView("bench")
        self._spark.sql(self._q.bench_keys).createOrReplaceTempView("bench_k")
        # Computed once and kept (localCheckpoint cuts the lineage: a cached view was not
        # matched, so every reference to it re-ran the enrichment). Every aggregate and window
        # of the feature SQL is per account: hash-partitioned by account_id, they run on the
        # partitions as they are, with no further shuffle.
        enriched = (
            self._spark.sql(ENRICHED.format(enrich=self._q.enrich))
            .repartition(int(shuffle_partitions), "account_id")
            .localCheckpoint(eager=True)
        )
        enriched.createOrReplaceTempView("enriched")

    def _rows(self, sql: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self._spark.sql(sql).toArrow().to_pylist()
        return rows

    def accounts(self) -> list[dict[str, Any]]:
        """Per-account features, ordered by account id."""
        return self._rows(self._q.accounts("enriched"))

    def links(self) -> list[dict[str, Any]]:
        """Linking evidence rows."""
        return self._rows(self._q.links)

    def pooled(self, groups: dict[str, str]) -> list[dict[str, Any]]:
        """Features of each group of accounts taken together (account_id = group id)."""
        self._spark.createDataFrame(
            list(groups.items()), "member string, grp string"
        ).createOrReplaceTempView("gmap")
        cols = [c for c in self._spark.table("enriched").columns if c != "account_id"]
        self._spark.sql(
            f"SELECT m.grp AS account_id, {', '.join('e.' + c for c in cols)} "
            "FROM enriched e JOIN gmap m ON e.account_id = m.member"
        ).createOrReplaceTempView("pooled_src")
        return self._rows(self._q.accounts("pooled_src"))

    def close(self) -> None:
        """Stop the Spark session."""
        self._spark.stop()

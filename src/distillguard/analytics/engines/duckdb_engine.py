"""DuckDB engine: runs the shared feature SQL in-process over the staged Parquet file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from distillguard.analytics.engines import ENRICHED, engines
from distillguard.analytics.features import render

__all__ = ["DuckDBEngine"]


@engines.register("duckdb")
class DuckDBEngine:
    """Embedded engine; ``threads`` defaults to DuckDB's choice (all cores)."""

    def __init__(self, staged: Path, bench_prompts: list[str], threads: int | None = None) -> None:
        import duckdb
        import pyarrow as pa

        self._q = render("duckdb")
        self._con = duckdb.connect()
        self._con.execute("SET enable_progress_bar = false")  # the scan draws its own
        if threads:
            self._con.execute(f"SET threads = {int(threads)}")
        self._con.execute(f"CREATE VIEW req AS SELECT * FROM read_parquet('{_sql_str(staged)}')")
        bench = pa.table({"prompt": pa.array(bench_prompts or [""], pa.string())})
        self._con.register("bench", bench)
        self._con.execute(f"CREATE TEMP TABLE bench_k AS {self._q.bench_keys}")
        self._con.execute("CREATE TEMP TABLE enriched AS " + ENRICHED.format(enrich=self._q.enrich))

    def _rows(self, sql: str) -> list[dict[str, Any]]:
        cur = self._con.execute(sql)
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    def accounts(self) -> list[dict[str, Any]]:
        """Per-account features, ordered by account id."""
        return self._rows(self._q.accounts("enriched"))

    def links(self) -> list[dict[str, Any]]:
        """Linking evidence rows (templates used twice or more, /24 prefixes, user agents)."""
        return self._rows(self._q.links)

    def pooled(self, groups: dict[str, str]) -> list[dict[str, Any]]:
        """Features of each group of accounts taken together (account_id = group id)."""
        import pyarrow as pa

        self._con.register("gmap", pa.table({"member": list(groups), "grp": list(groups.values())}))
        self._con.execute(
            "CREATE OR REPLACE TEMP VIEW pooled_src AS SELECT m.grp AS account_id, "
            "e.* EXCLUDE (account_id) FROM enriched e JOIN gmap m ON e.account_id = m.member"
        )
        return self._rows(self._q.accounts("pooled_src"))

    def close(self) -> None:
        """Release the connection."""
        self._con.close()


def _sql_str(path: Path) -> str:
    return str(path).replace("'", "''")

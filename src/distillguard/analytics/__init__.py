"""Query-pattern analysis of API request logs: find extraction accounts and campaigns.

Pure core: :mod:`.log_record` (schema + validation), :mod:`.jsonl_fast` (the SQL fast path of
that validation), :mod:`.features` (the one SQL feature description), :mod:`.scoring`,
:mod:`.calibration` (the flag line from a target benign FPR), :mod:`.campaigns`. Edges:
:mod:`.ingest`, :mod:`.jsonl_native` (JSONL on DuckDB's reader), :mod:`.embed` (MiniLM topics),
:mod:`.engines`, :mod:`.simulate`, :mod:`.scan`, :mod:`.report_html`.
"""

from distillguard.analytics.log_record import FIELDS, LogRecord, Rejection, validate_record

__all__ = ["FIELDS", "LogRecord", "Rejection", "validate_record"]

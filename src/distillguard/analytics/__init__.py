"""Query-pattern analysis of API request logs: find extraction accounts and campaigns.

Pure core: :mod:`.log_record` (schema + validation), :mod:`.features` (the one SQL feature
description), :mod:`.scoring`, :mod:`.campaigns`. Edges: :mod:`.ingest`, :mod:`.engines`,
:mod:`.simulate`, :mod:`.scan`, :mod:`.report_html`.
"""

from distillguard.analytics.log_record import FIELDS, LogRecord, Rejection, validate_record

__all__ = ["FIELDS", "LogRecord", "Rejection", "validate_record"]

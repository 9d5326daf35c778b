"""Request-log writer: a bounded queue drained by one thread that batches inserts.

Policy (never drop silently): a full queue blocks the request that logs (backpressure); when
the store fails, the batch is appended to a local JSONL spool and replayed before the next
successful batch; :meth:`LogWriter.close` drains the queue and flushes (graceful shutdown).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from pathlib import Path
from typing import Any

from distillguard.gateway.store import Store

__all__ = ["LogWriter"]

_log = logging.getLogger("distillguard.gateway")
_STOP = object()


class LogWriter:
    """Batches request-log rows into a :class:`Store`, spooling to disk when the store fails."""

    def __init__(self, store: Store, spool_path: str | Path, maxsize: int = 10_000,
                 batch: int = 256, linger_s: float = 0.01) -> None:
        self._store = store
        self._spool = Path(spool_path)
        self._q: queue.Queue[Any] = queue.Queue(maxsize=maxsize)
        self._batch = batch
        # After the first record of a batch, wait up to linger_s for more: under load one
        # transaction (and one thread wake-up) per batch instead of one per request.
        self._linger_s = linger_s
        self.written = 0
        self.spooled = 0
        self._thread = threading.Thread(target=self._run, name="dg-log-writer", daemon=True)
        self._thread.start()

    def put(self, record: dict[str, Any], timeout: float | None = None) -> None:
        """Queue a record; blocks while the queue is full (backpressure)."""
        self._q.put(record, timeout=timeout)

    def pending(self) -> int:
        """Return the number of queued records."""
        return self._q.qsize()

    def _run(self) -> None:
        stop = False
        while not stop:
            items = [self._q.get()]
            if items[0] is not _STOP and self._linger_s > 0:
                # Sleep rather than wait on the queue: a waiting thread is woken by every put
                # (a thread switch per request); a sleeping one wakes once per batch.
                time.sleep(self._linger_s)
            while len(items) < self._batch and items[-1] is not _STOP:
                try:
                    items.append(self._q.get_nowait())
                except queue.Empty:
                    break
            if any(i is _STOP for i in items):
                stop = True
                items = [i for i in items if i is not _STOP]
            self._write(items)
            for _ in range(len(items) + (1 if stop else 0)):
                self._q.task_done()

    def _write(self, items: list[dict[str, Any]]) -> None:
        try:
            self._replay_spool()
            self._store.insert_log(items)
            self.written += len(items)
        except Exception as exc:  # any store failure: keep the rows on disk instead
            _log.warning("request log store failed (%s); spooling %d records to %s",
                         type(exc).__name__, len(items), self._spool)
            self._append_spool(items)

    def _append_spool(self, items: list[dict[str, Any]]) -> None:
        self._spool.parent.mkdir(parents=True, exist_ok=True)
        with self._spool.open("a", encoding="utf-8") as fh:
            for it in items:
                fh.write(json.dumps(it) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.spooled += len(items)

    def _replay_spool(self) -> None:
        if not self._spool.exists() or self._spool.stat().st_size == 0:
            return
        lines = self._spool.read_text(encoding="utf-8").splitlines()
        rows = [json.loads(line) for line in lines if line.strip()]
        self._store.insert_log(rows)  # raises → spool kept intact, retried next batch
        self._spool.unlink()
        self.written += len(rows)
        self.spooled -= len(rows)

    def flush(self) -> None:
        """Block until every queued record is written or spooled."""
        self._q.join()

    def close(self) -> None:
        """Drain the queue, write everything, and stop the thread."""
        self._q.put(_STOP)
        self._thread.join(timeout=60)

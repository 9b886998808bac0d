"""The prediction log: every answered text (and, in a rollout, every text the challenger scored
in the shadow and every text a version failed on), written to the platform database in batches by a
background thread, never on the request path.

The request path only appends to a bounded queue (`submit` never blocks). When the database is
slow or down, the writer keeps its current batch and retries with backoff; the queue fills, and
what no longer fits is dropped and counted (`/metrics`), so memory stays bounded and requests
stay fast.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from modelyard.store.roles import SERVED

log = logging.getLogger("modelyard.serving.predlog")


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class LoggedPrediction:
    id: str
    created_at: datetime
    model: str
    version: str
    text: str
    label: str
    probabilities: dict[str, float]
    latency_ms: float
    # The request the text came in: the id of the answer the client got (None: this row's own
    # id, an answer). "served", "shadow" or "error" (`modelyard.store.roles`).
    request_id: str | None = None
    role: str = SERVED


class PredictionLog:
    def __init__(
        self,
        url: str,
        protect: Callable[[str], str | None],
        maxsize: int = 10000,
        batch_size: int = 500,
        flush_s: float = 0.2,
        max_backoff_s: float = 5.0,
    ) -> None:
        # `protect`: what may be stored of a text (privacy.mode), applied in the writer thread,
        # so redaction never costs the request path anything.
        self.url, self.protect = url, protect
        self.batch_size, self.flush_s, self.max_backoff_s = batch_size, flush_s, max_backoff_s
        self._queue: queue.Queue[LoggedPrediction] = queue.Queue(maxsize)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._engine: Any = None
        self.dropped = 0
        self.written = 0
        self.failures = 0
        self.last_error: str | None = None

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def submit(self, predictions: Iterable[LoggedPrediction]) -> None:
        for prediction in predictions:
            try:
                self._queue.put_nowait(prediction)
            except queue.Full:
                self.dropped += 1

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="modelyard-predlog", daemon=True)
        self._thread.start()

    def close(self, timeout_s: float = 5.0) -> None:
        """Write what is queued (for up to `timeout_s`), then stop."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        if self._engine is not None:
            self._engine.dispose()

    def _take(self) -> list[LoggedPrediction]:
        batch: list[LoggedPrediction] = []
        deadline = time.monotonic() + self.flush_s
        while len(batch) < self.batch_size:
            remaining = deadline - time.monotonic()
            try:
                batch.append(
                    self._queue.get(timeout=max(remaining, 0.001))
                    if not batch
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                if batch or self._stop.is_set() or remaining <= 0:
                    break
        return batch

    def _run(self) -> None:
        backoff = 0.1
        batch: list[LoggedPrediction] = []
        while True:
            if not batch:
                if self._stop.is_set() and self._queue.empty():
                    return
                batch = self._take()
                if not batch:
                    continue
            try:
                self._write(batch)
                self.written += len(batch)
                batch, backoff = [], 0.1
            except Exception as error:  # noqa: BLE001 - the database may come back
                self.failures += 1
                self.last_error = f"{type(error).__name__}: {str(error).splitlines()[0]}"
                if self._stop.is_set():
                    self.dropped += len(batch) + self._queue.qsize()
                    log.error(
                        "prediction log: %d rows not written at shutdown (%s)",
                        len(batch),
                        self.last_error,
                    )
                    return
                log.warning(
                    "prediction log: database unavailable (%s); retrying in %.1f s",
                    self.last_error,
                    backoff,
                )
                if self._engine is not None:
                    self._engine.dispose()
                    self._engine = None
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)

    def _write(self, batch: list[LoggedPrediction]) -> None:
        from sqlalchemy import insert

        from modelyard.store.models import Prediction

        if self._engine is None:
            from modelyard.store.db import engine_for

            self._engine = engine_for(self.url)
        rows = [
            {
                "id": p.id,
                "created_at": p.created_at,
                "model": p.model,
                "version": p.version,
                "text": self.protect(p.text),
                "text_sha256": text_hash(p.text),
                "label": p.label,
                "probabilities": p.probabilities,
                "latency_ms": p.latency_ms,
                "request_id": p.request_id or p.id,
                "role": p.role,
            }
            for p in batch
        ]
        with self._engine.begin() as connection:
            connection.execute(insert(Prediction), rows)


def now() -> datetime:
    return datetime.now(UTC)

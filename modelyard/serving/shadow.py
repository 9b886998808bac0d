"""Shadow scoring: in a shadow rollout, the challenger scores a copy of every text production
answered, off the request path.

The request path only appends to a bounded queue (`offer` never blocks; what does not fit is
dropped and counted). One thread of its own, at a lower OS priority than the server's, takes
small batches from it and runs them through the challenger when the server is answering nothing
(no request on its way, queued or in a forward pass): never through the champion's batcher or
its executor, so no answer waits behind a shadow batch in a queue, and a shadow pass starts only
in a pause of the traffic. Under sustained load the queue fills and copies are dropped (counted)
rather than slow the answers.

Each score is a prediction row with role "shadow", the champion's prediction id as its request
id and the challenger's version; a text the challenger fails on (a failing batch is halved down
to it) is a row with role "error".
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from modelyard.serving.model import LoadedModel
from modelyard.serving.predlog import LoggedPrediction, PredictionLog, now
from modelyard.store.roles import ERROR, SHADOW

log = logging.getLogger("modelyard.serving.shadow")

# Texts per shadow forward pass: small, so the cores are never held long by a pass nobody waits on.
SHADOW_BATCH = 8
# The shadow thread's niceness above the server's (Linux: per thread, inherited by the threads
# its forward passes start): when the cores are busy, answers get them first.
SHADOW_NICENESS = 10
# How often the shadow looks whether the server has stopped answering for a moment.
IDLE_POLL_S = 0.005


@dataclass(frozen=True)
class _Copy:
    text: str
    request_id: str  # the id of the champion's answer


# (version, role, texts, seconds, failed): a pass scored or failed, for the per-version metrics.
OnScored = Callable[[str, str, int, float, bool], None]


class ShadowScorer:
    def __init__(
        self,
        challenger: Callable[[], LoadedModel | None],
        predlog: PredictionLog,
        maxsize: int,
        on_scored: OnScored | None = None,
        batch_size: int = SHADOW_BATCH,
        serving: Callable[[], bool] = lambda: False,
    ) -> None:
        self._challenger, self._predlog, self._on_scored = challenger, predlog, on_scored
        # True while the server answers (a request on its way, queued or in a forward pass):
        # a shadow pass starts only when it is not.
        self._serving = serving
        self.batch_size = batch_size
        self._queue: queue.Queue[_Copy] = queue.Queue(maxsize)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.dropped = 0  # texts not scored: the queue was full
        self.scored = 0
        self.failed = 0
        self.discarded = 0  # texts taken after the rollout ended

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def offer(self, texts: list[str], request_ids: list[str]) -> None:
        """Queue a copy of a request's texts, each with its answer's id; never blocks."""
        for text, request_id in zip(texts, request_ids, strict=True):
            try:
                self._queue.put_nowait(_Copy(text, request_id))
            except queue.Full:
                self.dropped += 1

    def start(self) -> None:
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="modelyard-shadow", daemon=True
        )
        self._thread.start()
        ready.wait(30)
        _restore_torch_threads()

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop after the pass in progress (what is still queued is not scored)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self, ready: threading.Event) -> None:
        _lower_priority()
        _one_torch_thread()
        ready.set()
        while not self._stop.is_set():
            batch = self._take()
            if not batch:
                continue
            model = self._challenger()
            if model is None:  # the rollout ended, or its challenger is not loaded yet
                self.discarded += len(batch)
                continue
            try:
                self._score(model, batch)
            except Exception:  # the shadow must never stop the server
                log.exception("shadow scoring failed outside the model")

    def _take(self) -> list[_Copy]:
        try:
            batch = [self._queue.get(timeout=0.2)]
        except queue.Empty:
            return []
        while self._serving() and not self._stop.is_set():
            self._stop.wait(IDLE_POLL_S)
        while len(batch) < self.batch_size:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _score(self, model: LoadedModel, batch: list[_Copy]) -> None:
        """Score `batch` and log each text; on failure, each half on its own, down to the text
        that fails alone (an error row)."""
        texts = [copy.text for copy in batch]
        started = time.perf_counter()
        try:
            probabilities = model.classifier.predict_proba(texts, len(texts))
        except Exception as error:  # noqa: BLE001 - isolated below, then logged as an error row
            if len(batch) > 1:
                middle = len(batch) // 2
                self._score(model, batch[:middle])
                self._score(model, batch[middle:])
                return
            self._logged(model, batch, None, time.perf_counter() - started)
            log.warning("the challenger %s failed on a shadow text: %s", model.version, error)
            return
        self._logged(model, batch, probabilities, time.perf_counter() - started)

    def _logged(
        self, model: LoadedModel, batch: list[_Copy], probabilities: object, seconds: float
    ) -> None:
        """Log the batch's rows: scores (role shadow), or the one text that failed (error)."""
        created, labels, latency_ms = now(), model.labels, seconds * 1000
        rows = []
        for i, copy in enumerate(batch):
            if probabilities is None:
                label, scores, role = "", {}, ERROR
            else:
                row = probabilities[i]  # type: ignore[index]
                scores = {label: float(p) for label, p in zip(labels, row, strict=True)}
                label, role = labels[int(row.argmax())], SHADOW
            rows.append(
                LoggedPrediction(
                    str(uuid.uuid4()),
                    created,
                    model.name,
                    model.version,
                    copy.text,
                    label,
                    scores,
                    latency_ms,
                    request_id=copy.request_id,
                    role=role,
                )
            )
        # Counted before the rows are queued: whoever sees a row sees it counted.
        if probabilities is None:
            self.failed += len(batch)
        else:
            self.scored += len(batch)
        if self._on_scored is not None:
            self._on_scored(model.version, SHADOW, len(batch), seconds, probabilities is None)
        self._predlog.submit(rows)


def _lower_priority() -> None:
    """Raise this thread's niceness (Linux schedules threads one by one; elsewhere this would
    lower the whole process, so it is left alone)."""
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + SHADOW_NICENESS)
    except OSError as error:  # a sandbox may forbid it: the shadow still runs, unniced
        log.warning("could not lower the shadow thread's priority: %s", error)


# torch's thread count for threads that start using it later; the shadow thread's own is 1.
_TORCH_THREADS: list[int] = []


def _one_torch_thread() -> None:
    """This thread's forward passes on one core, leaving the others to production's. torch keeps
    the count per thread once a thread has used it (OpenMP's per-thread setting), but its setter
    also changes the count later threads start with: `_restore_torch_threads` puts that back."""
    import torch

    _TORCH_THREADS.append(torch.get_num_threads())  # also fixes this thread's own count
    torch.set_num_threads(1)


def _restore_torch_threads() -> None:
    """Give the threads that start using torch later the count the server set (`use_cores`)."""
    import torch

    if _TORCH_THREADS:
        torch.set_num_threads(_TORCH_THREADS.pop())

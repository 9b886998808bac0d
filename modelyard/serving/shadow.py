"""Shadow scoring: in a shadow rollout, the challenger scores a copy of every text production
answered, off the request path and out of the server's process.

The request path only appends to a bounded queue (`offer` never blocks; what does not fit is
dropped and counted). One thread of the server takes small batches from it and hands each to a
process of its own (`modelyard.serving.shadow_child`, started with multiprocessing's spawn
context), which loaded the challenger from a directory the server saved it to (at the server's
priority), scores at SCHED_IDLE (a core only when the server's threads do not want it; on a
host other work keeps busy, the niceness MODELYARD_SHADOW_PRIORITY sets) with one torch thread, and
sends the probabilities back. In the server's process a shadow pass would hold the GIL between
torch's small ops and make the answering thread wait for it; in its own process it holds nothing
the server needs. And while the server answers any request that uses a model (`answering`,
from the first byte of a /predict or /explain to its last), the child is held stopped (SIGSTOP,
through a pidfd: a reaped child's reused pid is never signalled) and goes on (SIGCONT) when none
is left: at SCHED_IDLE alone the kernel gives the server's threads the cores first, but a pass
running on the other core still shares the caches and memory bandwidth with the answer (p95
1.09x at 8 callers on 2 vCPUs); held, it computes nothing while an answer is computed, and on
one thread (see `shadow_child`) a pass between two answers leaves the other cores free for the
next (the serving guide has the figures). One batch
is in the child at a time, so the bounded queue stays the only backlog: under sustained load
the child is held most of the time, the queue fills and copies are dropped (counted) rather
than slow the answers; they are scored in the pauses of the traffic.

The rows are written here, by the server's one prediction log: each score is a row with role
"shadow", the champion's prediction id as its request id and the challenger's version; a text
the challenger fails on (the child halves a failing batch down to it) is a row with role
"error". The child is started when a shadow challenger is loaded, stopped when the rollout ends
or its challenger changes, and on server shutdown (asked, then terminated after a deadline); it
also ends by itself when the server's end of its pipe closes, and the kernel kills it when the
server dies (a held child could not notice the pipe).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import queue
import shutil
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

from modelyard.serving import shadow_child
from modelyard.serving.model import LoadedModel
from modelyard.serving.predlog import LoggedPrediction, PredictionLog, now
from modelyard.serving.shadow_child import READY, Loader, Pass
from modelyard.store.roles import ERROR, SHADOW

log = logging.getLogger("modelyard.serving.shadow")

# Texts per shadow forward pass: small, so a pass the server's traffic interrupts is short.
SHADOW_BATCH = 8
# How often the shadow's thread looks whether its child answered (or died, or should stop).
CHILD_POLL_S = 0.2
# A child asked to stop may be in a pass at a low priority on busy cores: this long, then
# terminated.
CHILD_STOP_S = 2.0


@dataclass(frozen=True)
class _Copy:
    text: str
    request_id: str  # the id of the champion's answer


# (version, role, texts, seconds, failed): a pass scored or failed, for the per-version metrics.
OnScored = Callable[[str, str, int, float, bool], None]


class _Child:
    """A scoring process for one challenger, and the server's end of its pipe."""

    def __init__(
        self, model: LoadedModel, process: BaseProcess, conn: Connection, directory: str
    ) -> None:
        self.model, self.process, self.conn, self.directory = model, process, conn, directory

    @classmethod
    def start(cls, model: LoadedModel, loader: Loader, directory: str) -> _Child:
        """Spawn the child on the challenger saved in `directory` (a path, never a live
        object: spawn starts a fresh interpreter, and a forked copy of a threaded server could
        inherit a lock some thread held)."""
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        runtime = str(getattr(model.classifier, "runtime", "eager"))
        device = str(getattr(model.classifier, "device", "cpu"))
        process = context.Process(
            target=shadow_child.main,
            args=(loader, directory, runtime, device, theirs),
            name=f"modelyard-shadow-{model.name}-{model.version}",
            daemon=True,  # multiprocessing ends it if the server exits without closing it
        )
        process.start()
        theirs.close()  # only the child holds its end: its death then reads as EOF here
        return cls(model, process, ours, directory)

    def wait_ready(self, keep_waiting: Callable[[], bool]) -> tuple[bool, str | None]:
        """(loaded, why not): waits while `keep_waiting()`, then gives up with no reason."""
        try:
            while not self.conn.poll(CHILD_POLL_S):
                if not keep_waiting():
                    return False, None
            kind, detail = self.conn.recv()
        except (EOFError, OSError):
            return False, f"the process ended (exit code {self.process.exitcode})"
        finally:
            # Loaded (or not) into the child's memory: the saved copy is no longer needed.
            shutil.rmtree(self.directory, ignore_errors=True)
        return kind == READY, None if kind == READY else str(detail)

    def score(self, texts: list[str], keep_waiting: Callable[[], bool]) -> list[Pass] | None:
        """The child's passes over `texts`; None if it died, or once `keep_waiting()` is false
        (the server stopping, the rollout over: a pass at a low priority on busy cores may take
        minutes, and nobody wants its result)."""
        try:
            self.conn.send(texts)
            while not self.conn.poll(CHILD_POLL_S):
                if not keep_waiting():
                    return None
            passes: list[Pass] = self.conn.recv()
        except (EOFError, OSError):
            return None
        return passes

    def stop(self, timeout_s: float = CHILD_STOP_S) -> None:
        """Ask it to stop; terminate it after `timeout_s`, kill it if even that fails."""
        with contextlib.suppress(OSError, ValueError):  # already gone
            self.conn.send(None)
        self.process.join(timeout_s)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout_s)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout_s)
        self.conn.close()
        shutil.rmtree(self.directory, ignore_errors=True)


class _Hold:
    """Holds the child stopped while the server answers: `enter` when a request that uses a
    model begins, `leave` when it is answered; the child is stopped when the first begins and
    continued when the last is answered (and when it is let go, so it can be asked to stop)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # the event loop's thread and the shadow's thread
        self._answering = 0
        self._pidfd: int | None = None

    def enter(self) -> None:
        with self._lock:
            self._answering += 1
            if self._answering == 1:
                self._signal(signal.SIGSTOP)

    def leave(self) -> None:
        with self._lock:
            self._answering -= 1
            if self._answering == 0:
                self._signal(signal.SIGCONT)

    def attach(self, pid: int | None) -> None:
        """Hold this child from now on (stopped at once if the server is answering)."""
        with self._lock:
            self._close()
            # Never started, or no pidfds (not Linux): nothing held, the priority alone then.
            if pid is None or not hasattr(os, "pidfd_open"):
                return
            with contextlib.suppress(OSError):  # gone already: nothing to hold
                self._pidfd = os.pidfd_open(pid)
            if self._answering:
                self._signal(signal.SIGSTOP)

    def release(self) -> None:
        """Let the child go on for good (before it is asked to stop, or reaped)."""
        with self._lock:
            if self._answering:
                self._signal(signal.SIGCONT)
            self._close()

    def _signal(self, number: int) -> None:
        if self._pidfd is not None:
            with contextlib.suppress(OSError):  # it ended meanwhile
                signal.pidfd_send_signal(self._pidfd, number)

    def _close(self) -> None:
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None


class ShadowScorer:
    def __init__(
        self,
        challenger: Callable[[], LoadedModel | None],
        predlog: PredictionLog,
        maxsize: int,
        on_scored: OnScored | None = None,
        batch_size: int = SHADOW_BATCH,
        loader: Loader = shadow_child.load_saved,
    ) -> None:
        self._challenger, self._predlog, self._on_scored = challenger, predlog, on_scored
        # How the child loads the directory the challenger is saved to (a module-level
        # function: it is pickled by name into the child).
        self._loader = loader
        self.batch_size = batch_size
        self._queue: queue.Queue[_Copy] = queue.Queue(maxsize)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # The running child (read by `close` from another thread, hence the lock), and the
        # challenger whose child could not load it (not tried again until it changes).
        self._child: _Child | None = None
        self._child_lock = threading.Lock()
        self._refused: object | None = None
        self._hold = _Hold()
        self.dropped = 0  # texts not scored: the queue was full
        self.scored = 0
        self.failed = 0  # texts the challenger failed on (error rows), or lost with its process
        self.discarded = 0  # texts taken when no challenger could score them (rollout ended)

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    @property
    def child_pid(self) -> int | None:
        """The scoring process's id while one runs."""
        child = self._child
        return None if child is None else child.process.pid

    def offer(self, texts: list[str], request_ids: list[str]) -> None:
        """Queue a copy of a request's texts, each with its answer's id; never blocks."""
        for text, request_id in zip(texts, request_ids, strict=True):
            try:
                self._queue.put_nowait(_Copy(text, request_id))
            except queue.Full:
                self.dropped += 1

    def answering(self) -> Callable[[], None]:
        """Say the server has begun answering a request; call what this returns once when it
        is answered. Meanwhile the child is held (see the module's docstring)."""
        self._hold.enter()
        return self._hold.leave

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="modelyard-shadow", daemon=True)
        self._thread.start()

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop after the pass in progress (what is still queued is not scored), and the child
        with it: no scoring process outlives the server."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._stop_child()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self._step()
                except Exception:  # the shadow must never stop the server
                    log.exception("shadow scoring failed outside the model")
        finally:
            self._stop_child()

    def _step(self) -> None:
        batch = self._take()
        model = self._challenger()
        # Looked at on every round, copies or not: a child starts as soon as a shadow
        # challenger is loaded and stops as soon as the rollout ends.
        child = self._child_for(model)
        if not batch:
            return
        if model is None or child is None:  # the rollout ended, or its child is not ready
            self.discarded += len(batch)
            return
        self._score(child, model, batch)

    def _take(self) -> list[_Copy]:
        try:
            batch = [self._queue.get(timeout=CHILD_POLL_S)]
        except queue.Empty:
            return []
        while len(batch) < self.batch_size:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _child_for(self, model: LoadedModel | None) -> _Child | None:
        """The child scoring `model`: the running one, or a new one once it has loaded it."""
        held = self._child
        if held is not None and (model is None or held.model.classifier is not model.classifier):
            self._stop_child()  # the rollout ended, or another challenger took its place
            held = None
        if held is not None or model is None or model.classifier is self._refused:
            return held
        return self._spawn(model)

    def _spawn(self, model: LoadedModel) -> _Child | None:
        directory = tempfile.mkdtemp(prefix="modelyard-shadow-")
        try:
            model.classifier.save(Path(directory))
            child = _Child.start(model, self._loader, directory)
        except Exception as error:  # noqa: BLE001 - the champion answers whatever happens here
            shutil.rmtree(directory, ignore_errors=True)
            self._refuse(model, f"{type(error).__name__}: {error}")
            return None
        with self._child_lock:
            stopping = self._stop.is_set()  # `close` may have looked for a child already
            if not stopping:
                self._child = child
                self._hold.attach(child.process.pid)  # loading too: it is compute as well
        if stopping:
            child.stop()
            return None
        started = time.perf_counter()
        ready, failure = child.wait_ready(lambda: self._still_wanted(model))
        if not ready:
            self._stop_child()
            if failure is not None:
                self._refuse(model, failure)
            return None
        log.info(
            "shadow scoring of %s version %s in process %s (loaded in %.1f s)",
            model.name,
            model.version,
            child.process.pid,
            time.perf_counter() - started,
        )
        return child

    def _still_wanted(self, model: LoadedModel) -> bool:
        current = self._challenger()
        return (
            not self._stop.is_set()
            and current is not None
            and current.classifier is (model.classifier)
        )

    def _refuse(self, model: LoadedModel, failure: str) -> None:
        log.warning(
            "the shadow could not load challenger %s version %s: %s (its copies are discarded)",
            model.name,
            model.version,
            failure,
        )
        self._refused = model.classifier

    def _stop_child(self) -> None:
        with self._child_lock:
            child, self._child = self._child, None
            if child is not None:
                self._hold.release()  # a held child could not read that it should stop
        if child is not None:
            child.stop()

    def _score(self, child: _Child, model: LoadedModel, batch: list[_Copy]) -> None:
        """Score `batch` in the child and log each text: its passes (a failing batch halved
        down to the text that fails alone, an error row)."""
        started = time.perf_counter()
        passes = child.score([copy.text for copy in batch], lambda: self._still_wanted(model))
        if passes is None:
            # Not wanted any more, or dead (reaped: its exit code is known); either way it goes,
            # and the next round starts another if a challenger still wants one.
            self._stop_child()
            if not self._still_wanted(model):  # stopping, or the rollout ended meanwhile
                self.discarded += len(batch)
                return
            log.error(
                "the shadow process of version %s ended (exit code %s): %d copies not scored",
                model.version,
                child.process.exitcode,
                len(batch),
            )
            # Counted as the challenger's failures (no error rows: no text was shown to fail).
            self.failed += len(batch)
            if self._on_scored is not None:
                seconds = time.perf_counter() - started
                self._on_scored(model.version, SHADOW, len(batch), seconds, True)
            return
        for scored in passes:
            self._logged(model, batch[scored.start : scored.stop], scored)
            if scored.error is not None:
                log.warning(
                    "the challenger %s failed on a shadow text: %s", model.version, scored.error
                )

    def _logged(self, model: LoadedModel, batch: list[_Copy], scored: Pass) -> None:
        """Log the batch's rows: scores (role shadow), or the one text that failed (error)."""
        probabilities, seconds = scored.probabilities, scored.seconds
        created, labels, latency_ms = now(), model.labels, seconds * 1000
        rows = []
        for i, copy in enumerate(batch):
            if probabilities is None:
                label, scores, role = "", {}, ERROR
            else:
                row = probabilities[i]
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

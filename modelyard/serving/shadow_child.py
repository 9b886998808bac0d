"""The process that scores a shadow rollout's copies: started by `modelyard.serving.shadow`
(multiprocessing's spawn context), it loads the challenger from a local model directory the
server saved, then answers batches of texts over a pipe until told to stop or the server is gone.

It loads the challenger at the server's priority (a one-off, like any model load; another
process, so it takes no lock the server's threads need), then scores on one thread (torch's or
an ONNX Runtime session's: one core at most, the other ones free for an answer arriving; on
cores of its own, MODELYARD_SHADOW_CPUS, one per core) at the priority
`MODELYARD_SHADOW_PRIORITY` says: by default `idle` (Linux's SCHED_IDLE in every thread;
niceness 19 elsewhere), a core only when no other thread wants one. A pass holds no lock
the server's threads take (not even the GIL: it is another interpreter). What is left of its
cost to the answers was its compute sharing the machine's caches and memory bandwidth
(bench/shadow_latency.py, MiniLM, 2 vCPUs, 8 callers: p50 1.03x, p95 1.09x; on a core of its
own, MODELYARD_SHADOW_CPUS, about the same): hence the server holds it stopped while it answers
(`modelyard.serving.shadow`). The price is on a host other work keeps busy:
measured on 2 cores beside 3 busy nice-0 processes, a process got 0.02 s of CPU in 8 s at
SCHED_IDLE, 0.09 s at niceness 19, 0.57 s at 10 (3.95 s at 0). Hence the load first (a small
challenger's is ~4 s of CPU: at SCHED_IDLE it would take many minutes there), and a niceness
setting for such hosts, which keeps a share of the cores at a cost (niceness 10: p50 1.28x at
c=1, 1.34x at c=8). It only scores: the server writes the rows and counts them.

This module imports nothing heavy at import time: the spawned interpreter imports it before
anything else, and the loader it is given imports the model's runtime.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from modelyard.config import Settings

# Messages from the child: it loaded the model (READY) or could not (FAILED, with why).
READY, FAILED = "ready", "failed"
# The default scoring priority (Settings.shadow_priority): only cores nothing else wants.
IDLE = "idle"
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class Scorer(Protocol):
    """What the child needs of a loaded model."""

    def predict_proba(self, texts: Sequence[str], batch_size: int = ...) -> Any: ...


# (model directory, runtime, device) -> the loaded model. A module-level function (pickled by
# name into the child), never a live object.
Loader = Callable[[str, str, str], Scorer]


@dataclass(frozen=True)
class Pass:
    """One forward pass of a batch's texts [start, stop): their probabilities (a row per text,
    in the model's label order), or None and `error` when the challenger failed on them."""

    start: int
    stop: int
    probabilities: Any
    seconds: float
    error: str | None = None


def load_saved(directory: str, runtime: str, device: str) -> Scorer:
    """The challenger as the server answered with it: `runtime` on `device` from the directory
    it was saved to (the weights and tokenizer; an ONNX runtime is exported again from them, as
    the registry's export made it, because a saved directory holds only the PyTorch model)."""
    from modelyard.inference.runtime import ONNX_FILES, RUNTIME_DIR, export_variants, load_runtime

    folder = Path(directory)
    if runtime in ONNX_FILES and not (folder / RUNTIME_DIR / ONNX_FILES[runtime]).is_file():
        export_variants(folder)
    return load_runtime(folder, runtime, device)


def main(loader: Loader, directory: str, runtime: str, device: str, conn: Connection) -> None:
    """The child's life: load at the server's priority, lower it, say READY (or FAILED), then
    score each batch it receives until it receives None or the server's end of the pipe closes."""
    # Ctrl-C in a terminal reaches the whole process group: the server stops its child itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_the_server()
    # Before any thread starts: the threads the loader starts inherit the cores.
    threads = _own_cores(_settings().shadow_cpus)
    # Read by OpenMP and MKL when torch is first imported (by the loader), and by an ONNX
    # Runtime session's builder (`runtime.pass_threads`).
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    try:
        # Loaded before the priority is lowered: at a low one, on cores other work keeps busy,
        # seconds of CPU can take minutes (see above).
        scorer = loader(directory, runtime, device)
        _torch_threads(threads)
    except Exception as error:  # noqa: BLE001 - reported to the server, which logs it
        with contextlib.suppress(OSError):
            conn.send((FAILED, f"{type(error).__name__}: {error}"))
        return
    _lower_priority(_scoring_priority())
    try:
        conn.send((READY, ""))
        for texts in iter(conn.recv, None):
            conn.send(passes(scorer, texts))
    except (EOFError, OSError):  # the server's end closed (it was killed): so ends its shadow
        return


def _die_with_the_server() -> None:
    """Killed by the kernel when the server dies: the server holds its child stopped while it
    answers (`modelyard.serving.shadow`), and a stopped child cannot read that the pipe closed.
    (Linux's PR_SET_PDEATHSIG; elsewhere the pipe's end is the only sign.)"""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:  # it died before the line above
        os._exit(0)


def passes(scorer: Scorer, texts: Sequence[str], start: int = 0) -> list[Pass]:
    """Score `texts` in one pass; when it fails, each half on its own, down to the text that
    fails alone, so one bad text costs the others nothing."""
    started = time.perf_counter()
    try:
        probabilities = scorer.predict_proba(texts, len(texts))
    except Exception as error:  # noqa: BLE001 - isolated below, then an error row
        if len(texts) > 1:
            middle = len(texts) // 2
            return [
                *passes(scorer, texts[:middle], start),
                *passes(scorer, texts[middle:], start + middle),
            ]
        seconds = time.perf_counter() - started
        return [Pass(start, start + 1, None, seconds, f"{type(error).__name__}: {error}")]
    return [Pass(start, start + len(texts), probabilities, time.perf_counter() - started)]


def _settings() -> Settings:
    """MODELYARD_SHADOW_PRIORITY and MODELYARD_SHADOW_CPUS, as the server's environment
    (inherited) sets them."""
    from modelyard.config import Settings

    return Settings()


def _scoring_priority() -> str | int:
    return _settings().shadow_priority


def _own_cores(cores: tuple[int, ...]) -> int:
    """Only `cores` (none given: the server's), for this thread and those it starts; the threads
    a pass may then use. On the server's cores one, so that a pass between two answers leaves
    the other cores free for the next; on cores of its own, one per core. Cores the host lacks
    or a container forbids: said, and the server's are kept."""
    if not cores:
        return 1
    try:
        os.sched_setaffinity(0, cores)
    except (OSError, AttributeError) as error:
        print(f"modelyard shadow: could not move to cores {list(cores)}: {error}", file=sys.stderr)
        return 1
    return len(os.sched_getaffinity(0))


def _lower_priority(priority: str | int) -> None:
    """`priority` (IDLE or a niceness) for every thread: Linux keeps a scheduling policy and a
    niceness per thread, and the loader may have started some (a runtime's pool). A sandbox
    may forbid it: the child then scores at the server's priority, and says so."""
    try:
        tasks = Path("/proc/self/task")
        threads = [int(task.name) for task in tasks.iterdir()] if tasks.is_dir() else [0]
        for thread in threads:
            # A thread that ended since the listing needs no priority.
            with contextlib.suppress(ProcessLookupError):
                _set_priority(thread, priority)
    except (OSError, AttributeError) as error:
        print(f"modelyard shadow: could not lower the priority: {error}", file=sys.stderr)


def _set_priority(thread: int, priority: str | int) -> None:
    if priority == IDLE and hasattr(os, "SCHED_IDLE"):
        os.sched_setscheduler(thread, os.SCHED_IDLE, os.sched_param(0))
    else:
        niceness = 19 if priority == IDLE else int(priority)
        os.setpriority(os.PRIO_PROCESS, thread, max(niceness, os.getpriority(os.PRIO_PROCESS, 0)))


def _torch_threads(threads: int) -> None:
    """`threads` torch threads, whatever the loader's imports set."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)

"""A stand-in challenger for the shadow scorer's tests: saved to a directory and loaded again in
the scorer's child process (`load` is the loader the child is given, pickled by name), so the
tests run the real process without a model. Positive when a text says "good"; raises on
"POISON"; a process that exits at once on "CRASH" (a challenger that kills its process); a pass
over "HOLD <path>" waits until that file exists (the test holds the child mid-pass;
`<path>.held` says it is). With `LOAD_NOTE` set in the environment, the loader starts a thread
(as a runtime's pool would) and writes its niceness at load time, and the threads a forward pass
may use there, to the file that names."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

LABELS = ["negative", "positive"]
# The environment variable naming the file the child's loader writes its niceness and threads to.
LOAD_NOTE = "MODELYARD_TEST_LOAD_NICENESS"


class StandIn:
    labels = LABELS
    runtime = "eager"
    device = "cpu"

    def save(self, directory: Path) -> Path:
        (directory / "stand-in").write_text("a stand-in challenger\n")
        return directory

    def predict_proba(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        for text in texts:
            if text.startswith("HOLD "):
                _wait_for(Path(text.removeprefix("HOLD ")))
        if any("CRASH" in text for text in texts):
            os._exit(3)
        if any("POISON" in text for text in texts):
            raise RuntimeError("this text breaks the challenger")
        return np.array([[0.1, 0.9] if "good" in text else [0.8, 0.2] for text in texts])


class Unsaveable(StandIn):
    def save(self, directory: Path) -> Path:
        raise OSError("no room left to save the challenger")


def load(directory: str, runtime: str, device: str) -> StandIn:
    """The child's loader: the directory must hold what `StandIn.save` wrote."""
    if not (Path(directory) / "stand-in").is_file():
        raise FileNotFoundError(f"{directory} holds no saved stand-in")
    note = os.environ.get(LOAD_NOTE)
    if note:
        threading.Thread(target=threading.Event().wait, name="stand-in pool", daemon=True).start()
        from modelyard.inference.runtime import pass_threads

        Path(note).write_text(f"{os.getpriority(os.PRIO_PROCESS, 0)} {pass_threads()}\n")
    return StandIn()


def _wait_for(path: Path, timeout_s: float = 120.0) -> None:
    """Until the test creates `path` (another process: no event to share); a test that never
    does is failed by its own deadline, this one only ends the wait. `<path>.held` says the
    pass is waiting."""
    path.with_name(f"{path.name}.held").touch()
    deadline = time.monotonic() + timeout_s
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.01)

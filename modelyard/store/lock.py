"""One promotion at a time per model, across processes and machines.

Compare-and-promote must be atomic: two retrains that both compared against the old production
must not both move it. The lock lives where the audit trail lives, so it spans exactly the
processes that share that trail: a PostgreSQL advisory lock (session level, released by the
server when the holder's connection dies), or, for the embedded SQLite database (one machine by
nature), an `flock` on a file next to it (released by the kernel when the holder dies). Neither
holds a database write lock while the holder works, so other writers are never blocked.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_POLL_S = 0.2
# An in-memory SQLite database lives in one process: a thread lock per name is enough.
_IN_PROCESS: dict[str, threading.Lock] = {}
_IN_PROCESS_GUARD = threading.Lock()


class LockTimeout(RuntimeError):
    pass


def _key(name: str) -> int:
    """A stable signed 64-bit key for pg_advisory_lock (hash() differs between processes)."""
    return int.from_bytes(
        hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True
    )


@contextmanager
def exclusive(engine: Any, name: str, timeout_s: float) -> Iterator[None]:
    """Hold the lock `name` for the body; LockTimeout after `timeout_s` of waiting."""
    dialect = engine.dialect.name
    if dialect == "postgresql":
        with _postgres(engine, name, timeout_s):
            yield
    elif dialect == "sqlite":
        database = engine.url.database
        if not database or database == ":memory:":
            with _thread_lock(name, timeout_s):
                yield
        else:
            with _file_lock(
                Path(database).with_name(f"{Path(database).name}.locks")
                / f"{hashlib.sha1(name.encode()).hexdigest()[:16]}.lock",
                name,
                timeout_s,
            ):
                yield
    else:
        raise NotImplementedError(
            f"the promotion lock supports SQLite and PostgreSQL, not {dialect!r}: set "
            "MODELYARD_DATABASE_URL to one of them"
        )


def _waited_too_long(name: str, timeout_s: float) -> LockTimeout:
    return LockTimeout(
        f"waited {timeout_s:.0f} s for the lock {name!r}: another promotion of "
        "this model is still running (or hung); try again when it has finished"
    )


@contextmanager
def _postgres(engine: Any, name: str, timeout_s: float) -> Iterator[None]:
    from sqlalchemy import text

    key = _key(name)
    deadline = time.monotonic() + timeout_s
    # A dedicated connection in autocommit: the lock belongs to the session, not to a
    # transaction, so the audit rows written meanwhile commit on their own connections.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        while not connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
            if time.monotonic() > deadline:
                raise _waited_too_long(name, timeout_s)
            time.sleep(_POLL_S)
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})


def file_lock(path: Path, timeout_s: float = 600.0) -> Any:
    """An exclusive lock on `path` among processes of this machine (released if the holder
    dies): for first-time set-up of a file database that two processes may start at once."""
    return _file_lock(path, str(path), timeout_s)


@contextmanager
def _file_lock(path: Path, name: str, timeout_s: float) -> Iterator[None]:
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    with path.open("a") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise _waited_too_long(name, timeout_s) from None
                time.sleep(_POLL_S)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def _thread_lock(name: str, timeout_s: float) -> Iterator[None]:
    with _IN_PROCESS_GUARD:
        lock = _IN_PROCESS.setdefault(name, threading.Lock())
    if not lock.acquire(timeout=timeout_s):
        raise _waited_too_long(name, timeout_s)
    try:
        yield
    finally:
        lock.release()

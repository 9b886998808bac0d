"""Waiting for something to happen, with a deadline: the only way tests wait.

A test never sleeps a fixed time to let another thread or process "get there first": it waits
for the observable fact it needs (a file, a row, a tag, a count), polling, and fails with a
message when the fact does not come within the deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    check: Callable[[], T],
    message: str,
    timeout_s: float = 60.0,
    interval_s: float = 0.05,
    alive: Callable[[], object] | None = None,
) -> T:
    """Call `check` until it returns something truthy (returned) or `timeout_s` passes (an
    AssertionError with `message`). `alive`, when given, is asserted on every round: a process
    that died will never make the fact true, so the wait stops at once."""
    deadline = time.monotonic() + timeout_s
    while True:
        if alive is not None:
            assert alive(), f"{message}: gave up, what it waited on has ended"
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"{message} (not within {timeout_s:.0f} s)"
        time.sleep(interval_s)

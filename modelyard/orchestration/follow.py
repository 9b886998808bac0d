"""Following a flow run from outside it: its log lines as they reach the server, then its end
(`modelyard retrain --remote`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from uuid import UUID

    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.objects import Log, State

PAGE = 200
# Polls without a new line, after the run ended, before the batches still in flight count as in.
POLLS_AFTER_END = 3


def follow_flow_run(
    client: SyncPrefectClient,
    run_id: UUID,
    emit: Callable[[str], Any],
    sleep: Callable[[float], Any] = time.sleep,
) -> State:
    """Emit every log line of the run, in timestamp order as they arrive, until it has ended
    and its last lines are in; its final state.

    Logs reach the server in batches, from several threads, not in timestamp order: paging by
    offset would skip a line inserted before the offset, so lines are recognised by id. After
    the run ends, a few more polls collect the batches still in flight."""
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    seen: set[UUID] = set()
    only_this_run = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id]))
    quiet_after_end = 0
    while True:
        state = client.read_flow_run(run_id).state
        fresh = _unseen(client, only_this_run, seen)
        for entry in sorted(fresh, key=lambda entry: entry.timestamp):
            emit(entry.message)
            seen.add(entry.id)
        if state is None or not state.is_final():
            sleep(2)
            continue
        quiet_after_end = 0 if fresh else quiet_after_end + 1
        if quiet_after_end >= POLLS_AFTER_END:
            return state
        sleep(1)


def _unseen(client: SyncPrefectClient, only_this_run: Any, seen: set[UUID]) -> list[Log]:
    fresh: list[Log] = []
    offset = 0
    while True:
        page = client.read_logs(log_filter=only_this_run, limit=PAGE, offset=offset)
        fresh += [entry for entry in page if entry.id not in seen]
        if len(page) < PAGE:
            return fresh
        offset += len(page)

"""Following a flow run's logs from outside it, with a fake Prefect client: lines by id (a late
batch inserted before the offset is not lost), in timestamp order, and a few quiet polls after
the end so the last batches are in."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from uuid import uuid4

from modelyard.orchestration import follow
from modelyard.orchestration.follow import follow_flow_run


def line(ts: int, message: str) -> SimpleNamespace:
    return SimpleNamespace(id=uuid4(), timestamp=ts, message=message)


class State:
    def __init__(self, name: str) -> None:
        self.name = name

    def is_final(self) -> bool:
        return self.name != "RUNNING"


@dataclass
class Client:
    """Each poll reveals the next state and the log lines stored by then."""

    polls: list[tuple[str, list[SimpleNamespace]]]
    stored: list[SimpleNamespace] = field(default_factory=list)
    reads: int = 0

    def read_flow_run(self, run_id):
        state, arrived = self.polls[min(self.reads, len(self.polls) - 1)]
        self.reads += 1
        self.stored = sorted([*self.stored, *arrived], key=lambda e: str(e.id))  # not by time
        return SimpleNamespace(state=State(state))

    def read_logs(self, log_filter, limit, offset):
        return self.stored[offset : offset + limit]


def test_every_line_once_in_time_order_including_the_late_ones(monkeypatch):
    monkeypatch.setattr(follow, "PAGE", 2)  # several pages per poll
    first = [line(3, "c"), line(1, "a"), line(2, "b")]
    late = [line(4, "d"), line(5, "e")]  # reach the server after the run ended
    client = Client([("RUNNING", first), ("COMPLETED", late), ("COMPLETED", [])])
    emitted, naps = [], []
    state = follow_flow_run(client, uuid4(), emitted.append, sleep=naps.append)
    assert emitted == ["a", "b", "c", "d", "e"]
    assert state.name == "COMPLETED"
    # One poll while running, the one that saw the end (with news), then three quiet ones.
    assert naps == [2, 1, 1, 1] and client.reads == 5

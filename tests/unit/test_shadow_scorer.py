"""The shadow scorer with a stand-in challenger scored in the real child process: every copy
scored and logged as a shadow row paired with its answer's id, a text the challenger fails on
isolated as an error row, a full queue dropping (and counting) rather than blocking; the child
loading at the server's priority and scoring at SCHED_IDLE (or a set niceness) in every
thread; the child held stopped while the server answers, and dying with a killed server; the
child started for a challenger and gone when the rollout ends, when its challenger
changes and when the server stops, a dead child counted and replaced; and the canary's key
share."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from modelyard.serving.challenger import canary_share
from modelyard.serving.model import LoadedModel
from modelyard.serving.predlog import LoggedPrediction
from modelyard.serving.shadow import ShadowScorer
from modelyard.store.roles import ERROR, SHADOW
from tests.helpers import shadow_stand_in
from tests.helpers.paths import REPO
from tests.helpers.servers import running
from tests.helpers.shadow_stand_in import StandIn, Unsaveable
from tests.helpers.wait import wait_until

# A spawned interpreter importing numpy on two busy cores: generous.
CHILD_S = 120


class _Log:
    def __init__(self) -> None:
        self.rows: list[LoggedPrediction] = []

    def submit(self, rows) -> None:
        self.rows.extend(rows)


def _challenger(version: str = "2", classifier: object | None = None) -> LoadedModel:
    return LoadedModel("m", version, "challenger", classifier or StandIn(), None, datetime.now(UTC))


class _Rollout:
    """What the server's challenger follower answers: the shadow challenger, or None."""

    def __init__(self, model: LoadedModel | None) -> None:
        self.model = model

    def __call__(self) -> LoadedModel | None:
        return self.model


def _scorer(rollout, log: _Log, maxsize: int = 100, **kwargs) -> ShadowScorer:
    return ShadowScorer(rollout, log, maxsize, batch_size=4, loader=shadow_stand_in.load, **kwargs)


def test_every_copy_is_scored_in_the_child_and_a_failing_text_is_an_error_row():
    log, passes = _Log(), []
    scorer = _scorer(_Rollout(_challenger()), log, on_scored=lambda *scored: passes.append(scored))
    texts = ["good one", "bad one", "POISON", "good two", "bad two"]
    ids = [f"answer-{i}" for i in range(len(texts))]
    scorer.offer(texts, ids)
    scorer.start()
    try:
        wait_until(lambda: len(log.rows) == len(texts), "not every copy was logged", CHILD_S)
        assert scorer.child_pid is not None and scorer.child_pid != os.getpid()
    finally:
        scorer.close()
    by_request = {row.request_id: row for row in log.rows}
    assert set(by_request) == set(ids)
    for text, request_id in zip(texts, ids, strict=True):
        row = by_request[request_id]
        assert (row.text, row.version, row.model) == (text, "2", "m")
        assert row.id != request_id  # a row of its own, paired by request_id
        if text == "POISON":
            assert (row.role, row.label, row.probabilities) == (ERROR, "", {})
        else:
            assert row.role == SHADOW
            assert row.label == ("positive" if "good" in text else "negative")
            assert row.probabilities[row.label] == (0.9 if "good" in text else 0.8)
    assert (scorer.scored, scorer.failed, scorer.dropped) == (4, 1, 0)
    assert all(0 < count <= 4 for _, _, count, _, _ in passes)  # small batches
    assert [failed for *_, failed in passes].count(True) == 1  # halved down to the one text


def test_a_full_queue_drops_and_counts_without_blocking(tmp_path):
    log, release = _Log(), tmp_path / "release"
    scorer = _scorer(_Rollout(_challenger()), log, maxsize=3)
    scorer.start()
    try:
        scorer.offer([f"HOLD {release}"], ["held"])  # taken, then the child waits mid-pass
        wait_until(lambda: scorer.depth == 0, "the first copy was never taken", CHILD_S)
        scorer.offer([f"good {i}" for i in range(5)], [f"r{i}" for i in range(5)])
        assert (scorer.depth, scorer.dropped) == (3, 2)
        release.touch()
        wait_until(lambda: len(log.rows) == 4, "the queued copies were not scored", CHILD_S)
    finally:
        release.touch()
        scorer.close()
    assert {row.request_id for row in log.rows} == {"held", "r0", "r1", "r2"}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="threads listed in /proc")
@pytest.mark.parametrize("priority", [None, "12"])
def test_the_child_loads_at_the_servers_priority_then_scores_lowered_in_every_thread(
    priority, tmp_path, monkeypatch
):
    """SCHED_IDLE by default, the niceness MODELYARD_SHADOW_PRIORITY names otherwise; at a low
    priority from the start, the child starved under CI load before it had loaded. A forward pass
    there may use one thread (an ONNX Runtime session too), whatever the server's may."""
    note = tmp_path / "load-niceness"
    monkeypatch.setenv(shadow_stand_in.LOAD_NOTE, str(note))
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the server's: the child must take one
    if priority is not None:
        monkeypatch.setenv("MODELYARD_SHADOW_PRIORITY", priority)
    ours, log = os.getpriority(os.PRIO_PROCESS, 0), _Log()
    scorer = _scorer(_Rollout(_challenger()), log)
    scorer.offer(["good"], ["a"])
    scorer.start()
    try:
        wait_until(lambda: len(log.rows) == 1, "the copy was not scored", CHILD_S)
        threads = [int(task.name) for task in Path(f"/proc/{scorer.child_pid}/task").iterdir()]
        policies = {os.sched_getscheduler(thread) for thread in threads}
        niceness = {os.getpriority(os.PRIO_PROCESS, thread) for thread in threads}
    finally:
        scorer.close()
    load_niceness, pass_threads = note.read_text().split()
    assert int(load_niceness) == ours and int(pass_threads) == 1
    assert len(threads) >= 2  # the loader's thread too: Linux keeps a priority per thread
    if priority is None:
        assert policies == {os.SCHED_IDLE}
    else:
        assert policies == {os.SCHED_OTHER} and niceness == {max(12, ours)}


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no CPU affinity here")
@pytest.mark.parametrize("count", [1, 2])
def test_the_child_scores_on_the_cores_modelyard_shadow_cpus_names(count, tmp_path, monkeypatch):
    """Every thread of the child (the loader's included) on the cores named, none else, and a
    pass there may use one thread per core: they are its own."""
    ours = sorted(os.sched_getaffinity(0))
    if len(ours) < count:
        pytest.skip(f"needs {count} cores, this process may use {len(ours)}")
    named = ours[-count:]
    note = tmp_path / "load-note"
    monkeypatch.setenv(shadow_stand_in.LOAD_NOTE, str(note))
    monkeypatch.setenv("MODELYARD_SHADOW_CPUS", ",".join(map(str, named)))
    log = _Log()
    scorer = _scorer(_Rollout(_challenger()), log)
    scorer.offer(["good"], ["a"])
    scorer.start()
    try:
        wait_until(lambda: len(log.rows) == 1, "the copy was not scored", CHILD_S)
        tasks = Path(f"/proc/{scorer.child_pid}/task").iterdir()
        cores = {frozenset(os.sched_getaffinity(int(task.name))) for task in tasks}
    finally:
        scorer.close()
    assert cores == {frozenset(named)}
    assert int(note.read_text().split()[1]) == count


def _state(pid: int) -> str:
    """The process's state in /proc: "T" while it is stopped."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


LINUX = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="states in /proc")


@contextmanager
def _scored_one(log: _Log) -> Iterator[tuple[ShadowScorer, int]]:
    """A scorer whose child has scored one copy and runs: (the scorer, the child's pid); the
    scorer closed after."""
    scorer = _scorer(_Rollout(_challenger()), log)
    scorer.offer(["good first"], ["first"])
    scorer.start()
    try:
        wait_until(lambda: len(log.rows) == 1, "the first copy was not scored", CHILD_S)
        child = scorer.child_pid
        assert child is not None and _state(child) != "T"
        yield scorer, child
    finally:
        scorer.close()


@LINUX
def test_the_child_is_held_while_the_server_answers_and_scores_when_nothing_is_answered():
    """Held from the first request's start to the last one's end: a copy offered meanwhile is
    taken but not scored (the child is stopped, not merely lowered), and is scored after."""
    log = _Log()
    with _scored_one(log) as (scorer, child):
        one, two = scorer.answering(), scorer.answering()  # two requests being answered
        wait_until(lambda: _state(child) == "T", "the child was not held", 30)
        scorer.offer(["good held"], ["held"])
        wait_until(lambda: scorer.depth == 0, "the copy was not handed to the child", 30)
        one()
        assert _state(child) == "T"  # the other request is still being answered
        assert len(log.rows) == 1  # stopped: it cannot have scored the copy
        two()
        wait_until(lambda: len(log.rows) == 2, "the held copy was not scored after", CHILD_S)
    assert log.rows[1].request_id == "held" and scorer.child_pid is None


@LINUX
def test_a_child_held_when_the_server_stops_is_stopped_with_it():
    with _scored_one(_Log()) as (scorer, child):
        answered = scorer.answering()
        wait_until(lambda: _state(child) == "T", "the child was not held", 30)
    assert not running(child)
    answered()  # the request ends after the server closed its shadow: nothing to continue


def test_without_pidfds_nothing_is_held_and_nothing_fails(monkeypatch):
    """Where os.pidfd_open is missing (not Linux), the hold signals nothing: the child scores
    at its priority alone, as before the hold."""
    from modelyard.serving.shadow import _Hold

    monkeypatch.delattr(os, "pidfd_open", raising=False)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        hold = _Hold()
        hold.attach(sleeper.pid)
        hold.enter()
        if sys.platform.startswith("linux"):
            assert _state(sleeper.pid) != "T"
        hold.leave()
        hold.release()
    finally:
        sleeper.kill()
        sleeper.wait(30)


# A server process in miniature: a shadow scorer whose child scored one copy and is held (a
# request being answered), its pid printed; then it waits to be killed.
_HELD_SERVER = """
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from modelyard.serving.model import LoadedModel
from modelyard.serving.shadow import ShadowScorer
from tests.helpers import shadow_stand_in
from tests.helpers.wait import wait_until

rows = []
model = LoadedModel("m", "2", "challenger", shadow_stand_in.StandIn(), None, datetime.now(UTC))
scorer = ShadowScorer(lambda: model, type("Log", (), {"submit": lambda _, r: rows.extend(r)})(),
                      10, loader=shadow_stand_in.load)
scorer.offer(["good"], ["a"])
scorer.start()
wait_until(lambda: rows, "the copy was not scored", 120)
scorer.answering()
print(scorer.child_pid, flush=True)
sys.stdin.read()
"""


@LINUX
def test_a_held_child_dies_with_a_killed_server():
    """A stopped child cannot read that the pipe closed: the kernel kills it with its server."""
    server = subprocess.Popen(
        [sys.executable, "-c", _HELD_SERVER],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        child = int(server.stdout.readline())
        wait_until(lambda: _state(child) == "T", "the child was not held", 30)
        server.send_signal(signal.SIGKILL)
        server.wait(30)
        wait_until(lambda: not running(child), "the held child outlived its server", 30)
    finally:
        server.kill()
        server.wait(30)


def test_nothing_is_scored_and_no_process_started_without_a_challenger():
    log = _Log()
    scorer = _scorer(_Rollout(None), log, 10)
    scorer.offer(["good"], ["a"])
    scorer.start()
    try:
        wait_until(lambda: scorer.discarded == 1, "the copy was not discarded", 30)
        assert scorer.child_pid is None
    finally:
        scorer.close()
    assert log.rows == []


def test_a_rollout_ending_mid_pass_stops_the_child_without_waiting_for_the_pass(tmp_path):
    """A pass at SCHED_IDLE on busy cores may take minutes: when the rollout ends meanwhile,
    nobody wants its result. The child goes at once and the batch counts as discarded."""
    log, rollout = _Log(), _Rollout(_challenger())
    scorer = _scorer(rollout, log)
    scorer.offer([f"HOLD {tmp_path / 'never'}"], ["held"])  # a pass that never ends by itself
    scorer.start()
    try:
        child = wait_until(lambda: scorer.child_pid, "no child", CHILD_S)
        wait_until((tmp_path / "never.held").exists, "the pass did not start", CHILD_S)
        rollout.model = None  # the rollout ends while the child is mid-pass
        wait_until(lambda: not running(child), "the child outlived its rollout", 30)
        wait_until(lambda: scorer.discarded == 1, "the held copy was not discarded", 30)
    finally:
        scorer.close()
    assert log.rows == [] and scorer.failed == 0 and scorer.scored == 0


def test_the_child_is_gone_when_the_rollout_ends_its_challenger_changes_or_the_server_stops():
    log, rollout = _Log(), _Rollout(_challenger("2"))
    scorer = _scorer(rollout, log)
    scorer.start()
    try:
        first = wait_until(lambda: scorer.child_pid, "no child for version 2", CHILD_S)
        rollout.model = _challenger("3")  # another rollout's challenger
        second = wait_until(
            lambda: scorer.child_pid not in (None, first) and scorer.child_pid,
            "no child for version 3",
            CHILD_S,
        )
        wait_until(lambda: not running(first), "version 2's child outlived its rollout", 30)
        scorer.offer(["good"], ["after the change"])
        wait_until(lambda: len(log.rows) == 1, "version 3 scored nothing", CHILD_S)
        assert log.rows[0].version == "3"
        rollout.model = None  # the rollout ended
        wait_until(lambda: not running(second), "the child outlived the rollout", 30)
        assert scorer.child_pid is None
        rollout.model = _challenger("4")
        third = wait_until(lambda: scorer.child_pid, "no child for version 4", CHILD_S)
    finally:
        scorer.close()
    assert scorer.child_pid is None and not running(third)  # closed: nothing outlives it


def test_a_child_that_dies_is_counted_and_replaced_and_an_unsaveable_challenger_refused():
    log, rollout = _Log(), _Rollout(_challenger())
    scorer = _scorer(rollout, log)
    scorer.start()
    try:
        first = wait_until(lambda: scorer.child_pid, "no child", CHILD_S)
        scorer.offer(["CRASH"], ["fatal"])
        wait_until(lambda: scorer.failed == 1, "the lost copy was not counted", CHILD_S)
        scorer.offer(["good"], ["next"])
        wait_until(lambda: len(log.rows) == 1, "no child scored after the crash", CHILD_S)
        assert scorer.child_pid not in (None, first) and not running(first)
        assert [row.request_id for row in log.rows] == ["next"]  # a lost copy is no row
        rollout.model = _challenger("5", Unsaveable())
        scorer.offer(["good"], ["unsaveable"])
        wait_until(lambda: scorer.discarded == 1, "the copy was not discarded", 30)
        assert scorer.child_pid is None
    finally:
        scorer.close()


def test_the_canary_share_of_a_key_is_stable_and_uniform():
    # sha256, not hash(): the same in every process (replicas, restarts, releases: a change
    # of this function would split a running canary's users between replicas of two releases).
    assert canary_share("user-42") == 0.4278761530135858
    shares = [canary_share(f"user-{i}") for i in range(4000)]
    assert all(0.0 <= share < 1.0 for share in shares)
    assert 0.45 < sum(share < 0.5 for share in shares) / len(shares) < 0.55
    assert 0.07 < sum(share < 0.1 for share in shares) / len(shares) < 0.13

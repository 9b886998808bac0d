"""The shadow scorer with a stand-in challenger: every copy scored and logged as a shadow row
paired with its answer's id, a text the challenger fails on isolated as an error row, a full
queue dropping (and counting) rather than blocking; and the canary's key share."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import numpy as np

from modelyard.serving.challenger import canary_share
from modelyard.serving.model import LoadedModel
from modelyard.serving.predlog import LoggedPrediction
from modelyard.serving.shadow import ShadowScorer
from modelyard.store.roles import ERROR, SHADOW
from tests.helpers.wait import wait_until

LABELS = ["negative", "positive"]


class _Classifier:
    """Positive when the text says "good"; raises on "POISON"; waits for `hold` when set."""

    labels = LABELS
    runtime = "eager"

    def __init__(self) -> None:
        self.hold: threading.Event | None = None
        self.entered = threading.Event()  # a pass has begun
        self.batches: list[list[str]] = []

    def predict_proba(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        self.entered.set()
        if self.hold is not None:
            self.hold.wait(30)
        self.batches.append(list(texts))
        if any("POISON" in text for text in texts):
            raise RuntimeError("this text breaks the challenger")
        return np.array([[0.1, 0.9] if "good" in text else [0.8, 0.2] for text in texts])


class _Log:
    def __init__(self) -> None:
        self.rows: list[LoggedPrediction] = []

    def submit(self, rows) -> None:
        self.rows.extend(rows)


def _challenger(classifier: _Classifier) -> LoadedModel:
    return LoadedModel("m", "2", "challenger", classifier, None, datetime.now(UTC))


def _scorer(classifier: _Classifier, log: _Log, maxsize: int = 100) -> ShadowScorer:
    model = _challenger(classifier)
    return ShadowScorer(lambda: model, log, maxsize, batch_size=4)


def test_every_copy_is_scored_and_a_failing_text_is_an_error_row():
    classifier, log = _Classifier(), _Log()
    scorer = _scorer(classifier, log)
    texts = ["good one", "bad one", "POISON", "good two", "bad two"]
    ids = [f"answer-{i}" for i in range(len(texts))]
    scorer.offer(texts, ids)
    scorer.start()
    try:
        wait_until(lambda: len(log.rows) == len(texts), "not every copy was logged", 30)
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
    assert (scorer.scored, scorer.failed, scorer.dropped) == (4, 1, 0)
    assert all(len(batch) <= 4 for batch in classifier.batches)  # small batches


def test_a_full_queue_drops_and_counts_without_blocking():
    classifier, log = _Classifier(), _Log()
    classifier.hold = threading.Event()
    scorer = _scorer(classifier, log, maxsize=3)
    scorer.start()
    try:
        scorer.offer(["good first"], ["held"])  # taken by the thread, which then waits
        wait_until(classifier.entered.is_set, "the first copy was never scored", 30)
        scorer.offer([f"good {i}" for i in range(5)], [f"r{i}" for i in range(5)])
        assert (scorer.depth, scorer.dropped) == (3, 2)
        classifier.hold.set()
        wait_until(lambda: len(log.rows) == 4, "the queued copies were not scored", 30)
    finally:
        classifier.hold.set()
        scorer.close()
    assert {row.request_id for row in log.rows} == {"held", "r0", "r1", "r2"}


def test_nothing_is_scored_without_a_challenger():
    log = _Log()
    scorer = ShadowScorer(lambda: None, log, 10)
    scorer.offer(["good"], ["a"])
    scorer.start()
    try:
        wait_until(lambda: scorer.discarded == 1, "the copy was not discarded", 30)
    finally:
        scorer.close()
    assert log.rows == []


def test_the_canary_share_of_a_key_is_stable_and_uniform():
    # sha256, not hash(): the same in every process (replicas, restarts, releases: a change
    # of this function would split a running canary's users between replicas of two releases).
    assert canary_share("user-42") == 0.4278761530135858
    shares = [canary_share(f"user-{i}") for i in range(4000)]
    assert all(0.0 <= share < 1.0 for share in shares)
    assert 0.45 < sum(share < 0.5 for share in shares) / len(shares) < 0.55
    assert 0.07 < sum(share < 0.1 for share in shares) / len(shares) < 0.13


def test_a_shadow_pass_waits_while_the_server_answers():
    classifier, log, answering = _Classifier(), _Log(), threading.Event()
    answering.set()
    model = _challenger(classifier)
    scorer = ShadowScorer(lambda: model, log, 10, serving=answering.is_set)
    scorer.offer(["good"], ["a"])
    scorer.start()
    try:
        wait_until(lambda: scorer.depth == 0, "the copy was never taken", 30)
        # Taken, and held back: no pass can begin while the server is answering.
        assert not classifier.entered.is_set()
        answering.clear()
        wait_until(lambda: len(log.rows) == 1, "the copy was not scored in the pause", 30)
    finally:
        scorer.close()

"""The rollout evidence reader on a real database (SQLite, and PostgreSQL where there is one):
rows inserted through the ORM models as the server writes them, read back as `Evidence`, with
the labelled outcomes in the order the planned looks take them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from modelyard.adapters.rollout_evidence import read_evidence
from modelyard.config import MonitorParams
from modelyard.rollout import Labelled, Paired
from modelyard.store import db
from modelyard.store.rollouts import Rollout, RolloutState
from tests.helpers.postgres import fresh_database

START = datetime(2026, 3, 1, 12, tzinfo=UTC)
NOW = START + timedelta(hours=2)
IN = START + timedelta(minutes=30)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/modelyard.db"
        db.upgrade(url)
        yield url
        return
    with fresh_database() as url:
        db.upgrade(url)
        yield url


def rollout(strategy: str) -> Rollout:
    weight = 0.5 if strategy == "canary" else 0.0
    return Rollout(1, "m", "1", "2", strategy, weight, RolloutState.OPEN, START, "test")


def row(version: str, label: str, role: str | None = "served", **extra) -> dict:
    """A prediction row as the server writes it (an answer's request_id is its own id)."""
    id = extra.pop("id", str(uuid.uuid4()))
    values = {
        "id": id,
        "created_at": IN,
        "model": "m",
        "version": version,
        "text_sha256": "0" * 64,
        "label": label,
        "probabilities": {label: 1.0} if label else {},
        "latency_ms": 10.0,
        "request_id": id,
        "role": role,
    }
    return {**values, **extra}


def store(url: str, predictions: list[dict], feedback: list[tuple[str, str, datetime]]) -> None:
    from sqlalchemy import insert

    from modelyard.store.models import Feedback, Prediction

    engine = db.engine_for(url)
    try:
        with engine.begin() as connection:
            connection.execute(insert(Prediction), predictions)
            rows = [{"prediction_id": p, "label": y, "created_at": t} for p, y, t in feedback]
            if rows:
                connection.execute(insert(Feedback), rows)
    finally:
        engine.dispose()


def test_canary_evidence_counts_each_version_s_answers_errors_latency_and_labels(url):
    champion = [row("1", "pos", latency_ms=float(ms)) for ms in range(1, 21)]
    champion += [row("1", "", "error"), row("1", "pos", None)]  # an error; a pre-rollout role
    challenger = [row("2", "neg", latency_ms=30.0) for _ in range(5)] + [row("2", "", "error")]
    outside = [
        row("1", "pos", created_at=START - timedelta(minutes=1)),  # before the rollout
        row("1", "pos", created_at=NOW + timedelta(minutes=1)),  # after `now`
        row("1", "pos", model="other"),
        row("3", "pos"),  # a version not in the rollout
    ]
    feedback = [
        (champion[0]["id"], "neg", IN),  # wrong first, then corrected: the latest wins
        (champion[0]["id"], "pos", IN + timedelta(minutes=5)),
        (champion[1]["id"], "neg", IN),
        (challenger[0]["id"], "neg", IN),
        (challenger[1]["id"], "pos", IN),
        (challenger[2]["id"], "neg", NOW + timedelta(minutes=1)),  # after `now`: not yet
        (outside[0]["id"], "pos", IN),
    ]
    store(url, champion + challenger + outside, feedback)
    evidence = read_evidence(url, rollout("canary"), NOW)
    assert (evidence.champion.requests, evidence.champion.errors) == (22, 1)
    # 1..20 ms and one 10 ms answer (the error's latency left out): 95% of the way is 19.
    assert evidence.champion.p95_latency_ms == pytest.approx(19.0)
    assert (evidence.challenger.requests, evidence.challenger.errors) == (6, 1)
    assert evidence.challenger.p95_latency_ms == 30.0
    assert evidence.champion_labelled == Labelled(1, 2)
    assert evidence.challenger_labelled == Labelled(1, 2)
    # (answered by the challenger, right), all labelled at the same time: in some order.
    assert sorted(evidence.answer_outcomes) == [
        (False, False),
        (False, True),
        (True, False),
        (True, True),
    ]
    assert evidence.paired is None and evidence.agreement is None and evidence.pair_outcomes == ()
    assert (evidence.started_at, evidence.now, evidence.strategy) == (START, NOW, "canary")


def shadowed(answer: dict, label: str, role: str = "shadow", **extra) -> dict:
    """The challenger's copy of an answer: a new id, the answer's id as request id."""
    return row("2", label, role, request_id=answer["id"], latency_ms=50.0, **extra)


def test_shadow_evidence_pairs_the_same_requests(url):
    answers = [row("1", y) for y in ["pos", "pos", "neg", "neg", "pos", "pos"]]
    copies = [
        shadowed(answers[0], "pos"),  # both right
        shadowed(answers[1], "neg"),  # only the champion right
        shadowed(answers[2], "pos"),  # only the challenger right
        shadowed(answers[3], "neg"),  # both wrong
        shadowed(answers[4], "", "error"),  # the challenger failed: wrong
        # answers[5]: its copy was dropped from the queue, no pair
    ]
    truth = ["pos", "pos", "pos", "pos", "pos", "pos"]
    feedback = [(a["id"], y, IN) for a, y in zip(answers, truth, strict=True)]
    store(url, answers + copies, feedback)
    evidence = read_evidence(url, rollout("shadow"), NOW)
    assert evidence.paired == Paired(both_right=1, only_champion=2, only_challenger=1, both_wrong=1)
    assert sorted(evidence.pair_outcomes) == sorted(
        [(True, True), (True, False), (False, True), (False, False), (True, False)]
    )
    assert evidence.answer_outcomes == ()
    assert evidence.champion_labelled == Labelled(3, 5)
    assert evidence.challenger_labelled == Labelled(2, 5)
    assert evidence.agreement == Labelled(2, 4)  # the failed copy has no class to agree on
    assert (evidence.champion.requests, evidence.champion.errors) == (6, 0)
    assert (evidence.challenger.requests, evidence.challenger.errors) == (5, 1)
    assert evidence.challenger.p95_latency_ms == 50.0
    assert evidence.drift_alarms == ()  # fewer pairs than monitor.min_predictions


def test_shadow_drift_alarms_on_a_class_mix_shifted_from_the_truth(url):
    # Half the texts positive; the champion says "neg" to all, the challenger "pos" to all.
    answers = [row("1", "neg") for _ in range(40)]
    truth = ["pos" if i % 2 else "neg" for i in range(40)]
    feedback = [(a["id"], y, IN) for a, y in zip(answers, truth, strict=True)]
    store(url, answers + [shadowed(a, "pos") for a in answers], feedback)
    monitor = MonitorParams(min_predictions=10)
    evidence = read_evidence(url, rollout("shadow"), NOW, monitor)
    assert len(evidence.drift_alarms) == 1
    assert evidence.drift_alarms[0].startswith("predicted_class_mix (PSI")
    assert evidence.agreement == Labelled(0, 40)
    steady = read_evidence(db.engine_for(url), rollout("canary"), NOW, monitor)
    assert steady.drift_alarms == ()


def test_a_challenger_answering_as_the_truth_does_not_drift(url):
    # The champion says "neg" to all; the challenger is right on every text: no alarm, though
    # it disagrees with the champion on half the requests.
    answers = [row("1", "neg") for _ in range(40)]
    truth = ["pos" if i % 2 else "neg" for i in range(40)]
    feedback = [(a["id"], y, IN) for a, y in zip(answers, truth, strict=True)]
    store(url, answers + [shadowed(a, y) for a, y in zip(answers, truth, strict=True)], feedback)
    evidence = read_evidence(url, rollout("shadow"), NOW, MonitorParams(min_predictions=10))
    assert evidence.drift_alarms == () and evidence.agreement == Labelled(20, 40)


def at(minutes: int) -> datetime:
    return START + timedelta(minutes=minutes)


def test_shadow_pairs_are_ordered_by_when_they_became_complete(url):
    answers = [row("1", "pos", created_at=at(m)) for m in (1, 2, 3, 4)]
    copies = [
        shadowed(answers[0], "pos", created_at=at(1)),
        shadowed(answers[1], "neg", created_at=at(50)),  # scored late: complete at 50
        shadowed(answers[2], "pos", created_at=at(3)),
        shadowed(answers[3], "pos", created_at=at(4)),
    ]
    feedback = [
        (answers[0]["id"], "neg", at(40)),  # first labelled at 40: its place; corrected at 45:
        (answers[0]["id"], "pos", at(45)),  # its truth
        (answers[1]["id"], "pos", at(10)),  # labelled at 10, its copy written at 50
        (answers[2]["id"], "neg", at(20)),
        (answers[3]["id"], "pos", at(100)),  # after the first reading
    ]
    store(url, answers + copies, feedback)
    first = read_evidence(url, rollout("shadow"), at(60))
    # answers[2] at 20 (both wrong), answers[0] at 40 (both right), answers[1] at 50.
    assert first.pair_outcomes == ((False, False), (True, True), (True, False))
    assert first.paired == Paired(1, 1, 0, 1)
    later = read_evidence(url, rollout("shadow"), at(120))
    assert later.pair_outcomes == (*first.pair_outcomes, (True, True))  # appended, never inserted


def test_canary_answers_are_ordered_by_when_they_became_labelled(url):
    answers = [
        row("1", "pos", created_at=at(1)),
        row("2", "pos", created_at=at(2)),
        row("1", "neg", created_at=at(3)),
        row("2", "neg", created_at=at(30)),  # logged after its label: labelled at 30
    ]
    feedback = [
        (answers[0]["id"], "pos", at(25)),
        (answers[1]["id"], "neg", at(5)),
        (answers[2]["id"], "neg", at(10)),
        (answers[3]["id"], "neg", at(20)),
    ]
    store(url, answers, feedback)
    evidence = read_evidence(url, rollout("canary"), at(60))
    # (answered by the challenger, right): at 5, 10, 25 and 30.
    assert evidence.answer_outcomes == ((True, False), (False, True), (False, True), (True, True))
    assert evidence.champion_labelled == Labelled(2, 2)
    assert evidence.challenger_labelled == Labelled(1, 2)

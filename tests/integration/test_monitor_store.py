"""The monitor's SQL, on a temporary SQLite database: a window of the prediction log with its
feedback, the run it records, and the response planned from the store (feedback the training
data lacks, the last action taken)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelyard.adapters.monitor_data import plan_response
from modelyard.config import Params
from modelyard.data.identity import file_md5
from modelyard.monitoring.action import Action, ActionKind
from modelyard.monitoring.live import LiveQuality
from modelyard.monitoring.reference import TrainedOn
from modelyard.monitoring.report import MonitorReport
from modelyard.store import db
from modelyard.store.monitor_log import last_action, read_window, record_run

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.fixture
def url(tmp_path):
    url = f"sqlite:///{tmp_path}/modelyard.db"
    db.upgrade(url)
    return url


def log(url: str, predictions: list[dict], feedback: list[dict]) -> None:
    from sqlalchemy import insert

    from modelyard.store.models import Feedback, Prediction

    engine = db.engine_for(url)
    try:
        with engine.begin() as connection:
            connection.execute(
                insert(Prediction),
                [
                    {
                        "model": "m",
                        "version": "1",
                        "text_sha256": "0" * 64,
                        "latency_ms": 1.0,
                        "probabilities": {"positive": 0.9, "negative": 0.1},
                        **row,
                    }
                    for row in predictions
                ],
            )
            if feedback:
                connection.execute(insert(Feedback), feedback)
    finally:
        engine.dispose()


def test_a_window_holds_this_version_s_recent_predictions_and_their_latest_labels(url):
    old, recent = NOW - timedelta(days=3), NOW - timedelta(hours=1)
    log(
        url,
        [
            {"id": "a", "text": "good", "label": "positive", "created_at": recent},
            {"id": "b", "text": "bad", "label": "positive", "created_at": recent},
            {"id": "c", "text": "old", "label": "positive", "created_at": old},
            {"id": "d", "text": "v2", "label": "positive", "created_at": recent, "version": "2"},
        ],
        [
            {"prediction_id": "b", "label": "positive", "created_at": recent},
            {
                "prediction_id": "b",
                "label": "negative",
                "created_at": recent + timedelta(minutes=1),
            },
            {"prediction_id": "c", "label": "negative", "created_at": recent},
        ],
    )
    current, labelled = read_window(url, "m", "1", NOW - timedelta(days=1))
    assert sorted(current["id"]) == ["a", "b"]
    assert labelled.to_dict("records") == [{"predicted": "positive", "actual": "negative"}]


def test_shadow_scores_and_failures_are_not_answers_for_the_monitor_or_feedback_data(url):
    from modelyard.adapters.feedback import read_feedback

    recent = NOW - timedelta(hours=1)
    rows = [  # id, text, label, role, request id: an answer before rollouts, a shadow score
        ("a", "good", "positive", None, None),  # of it, a failure, an answer with its role
        ("s", "good", "negative", "shadow", "a"),
        ("e", "boom", "", "error", "e"),
        ("o", "old", "positive", "served", "o"),
    ]
    keys = ("id", "text", "label", "role", "request_id")
    log(
        url,
        [{**dict(zip(keys, row, strict=True)), "created_at": recent} for row in rows],
        [{"prediction_id": p, "label": "negative", "created_at": recent} for p in "aseo"],
    )
    current, labelled = read_window(url, "m", "1", NOW - timedelta(days=1))
    assert sorted(current["id"]) == ["a", "o"] and len(labelled) == 2
    assert sorted(read_feedback(url, "m").frame["text"]) == ["good", "old"]


def report(action: Action | None) -> MonitorReport:
    quality = LiveQuality(7, 0.5, 0.5, 0.9, 0.05, True, "dropped")
    return MonitorReport("m", "1", NOW - timedelta(days=1), NOW, 10, quality=quality, action=action)


def test_a_recorded_run_is_the_last_action_the_next_run_reads(url):
    from sqlalchemy import select

    from modelyard.store.models import MonitorRun

    assert last_action(url, "m", "1") is None
    record_run(url, report(Action(ActionKind.ALERT, "label more", 3)))
    engine = db.engine_for(url)
    try:
        with engine.connect() as connection:
            row = connection.execute(select(MonitorRun)).one()
    finally:
        engine.dispose()
    assert (row.model, row.version, row.predictions, row.labelled, row.degraded) == (
        "m",
        "1",
        10,
        7,
        True,
    )
    assert row.report["action"]["kind"] == "alert"
    previous = last_action(url, "m", "1")
    assert previous is not None and (previous.kind, previous.new_feedback) == (ActionKind.ALERT, 3)


def test_the_response_weighs_feedback_the_training_data_lacks(url, tmp_path):
    data = tmp_path / "reviews.csv"
    data.write_text("text,label\ngood phone,positive\nbad battery,negative\n")
    trained = TrainedOn(file_md5(data), str(data), 0.9, 40)
    params = Params.model_validate(
        {"model": {"name": "m"}, "monitor": {"min_feedback_for_retrain": 2}}
    )
    recent = NOW - timedelta(hours=1)
    log(
        url,
        [
            {"id": "a", "text": "good phone", "label": "positive", "created_at": recent},
            {"id": "b", "text": "loud fan", "label": "positive", "created_at": recent},
            {"id": "c", "text": "dead on arrival", "label": "positive", "created_at": recent},
        ],
        [{"prediction_id": p, "label": "negative", "created_at": recent} for p in "abc"],
    )
    # outside a checkout (root None): enough new labels (3 ≥ 2) still only alert
    plan = plan_response("m", "1", trained, params, url, None, tmp_path / "cache")
    assert plan.judged and (plan.base, plan.name) == (str(data), "reviews")
    assert plan.action.kind == ActionKind.ALERT and plan.action.new_feedback == 3
    record_run(url, report(plan.action))
    again = plan_response("m", "1", trained, params, url, None, tmp_path / "cache")
    assert again.action.kind == ActionKind.REPEAT
    data.write_text("text,label\nother bytes,positive\n")
    gone = plan_response("m", "1", trained, params, url, None, tmp_path / "cache")
    assert not gone.judged and gone.action.kind == ActionKind.ALERT
    assert "cannot be read" in gone.action.reason

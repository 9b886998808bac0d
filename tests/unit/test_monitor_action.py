"""What a monitor run does about a degradation: the decision alone, no store, no Prefect."""

from __future__ import annotations

import pandas as pd

from modelyard.adapters.catalog import Entry
from modelyard.adapters.feedback import base_for, count_new
from modelyard.monitoring.action import Action, ActionKind, PreviousAction, decide_action


def test_healthy_does_nothing():
    assert decide_action(False, 999, 100, None).kind == ActionKind.NONE


def test_enough_new_labels_become_data_and_too_few_raise_an_alert():
    assert decide_action(True, 100, 100, None).kind == ActionKind.NEW_DATA
    alert = decide_action(True, 40, 100, None)
    assert alert.kind == ActionKind.ALERT and "label 60 more" in alert.reason


def test_the_same_alarm_with_no_new_labels_is_not_acted_on_twice():
    before = PreviousAction(ActionKind.ALERT, 40, "2026-11-29T10:00:00+00:00")
    assert decide_action(True, 40, 100, before).kind == ActionKind.REPEAT
    assert decide_action(True, 41, 100, before).kind == ActionKind.ALERT
    assert decide_action(True, 120, 100, before).kind == ActionKind.NEW_DATA
    done = PreviousAction(ActionKind.NEW_DATA, 120, "2026-11-29T10:00:00+00:00")
    assert decide_action(True, 120, 100, done).kind == ActionKind.REPEAT


def test_an_action_round_trips_through_the_report():
    action = Action(ActionKind.NEW_DATA, "why", 5, "reviews@2", "modelyard.dataset.added")
    assert Action.from_dict(action.to_dict()) == action
    assert action.to_dict()["kind"] == "new-data"


def test_only_feedback_the_training_data_lacks_counts_as_new():
    training = pd.DataFrame(
        {"text": ["Good phone", "bad battery"], "label": ["positive", "negative"]}
    )
    feedback = pd.DataFrame(
        {
            "text": ["good  PHONE", "bad battery", "new text", "new text"],
            "label": ["positive", "positive", "neutral", "neutral"],
        }
    )
    # same text and label: not new; a relabelled text: new; a duplicate counts once
    assert count_new(training, feedback) == 2


def test_the_base_is_the_catalog_version_with_the_model_s_bytes():
    entries = [
        Entry("reviews", 2, "b" * 32, "data/datasets/reviews/v2.csv", 1),
        Entry("reviews", 1, "a" * 32, "data/datasets/reviews/v1.csv", 1),
    ]
    assert base_for(entries, "a" * 32, "data/reviews.csv") == ("reviews@1", "reviews")
    assert base_for(entries, "c" * 32, "data/reviews.csv") == ("data/reviews.csv", "reviews")

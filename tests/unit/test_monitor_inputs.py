"""What the monitor reads and decides, without Prefect, a server or a store: the window's
labelled predictions, a version's reference from its lineage tags, the training data found
again by its md5, whether a window is judged, and the response to a degradation."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from modelyard import tags
from modelyard.adapters.monitor_data import find_copy, reference_texts, training_frame
from modelyard.config import DataParams, MonitorParams
from modelyard.data.identity import file_md5
from modelyard.monitoring.action import (
    Action,
    ActionKind,
    PreviousAction,
    already_added,
    decide_response,
    training_unreadable,
)
from modelyard.monitoring.live import labelled_predictions
from modelyard.monitoring.reference import TrainedOn
from modelyard.monitoring.report import too_few_to_judge


def test_the_latest_feedback_of_a_prediction_is_its_true_label():
    current = pd.DataFrame(
        {
            "id": ["a", "b", "c"],
            "text": ["x", "y", "z"],
            "label": ["positive", "negative", "positive"],
            "probabilities": [{}, {}, {}],
        }
    )
    at = [datetime(2026, 1, day, tzinfo=UTC) for day in (1, 2, 3)]
    feedback = pd.DataFrame(
        {
            "prediction_id": ["a", "a", "b", "elsewhere"],
            "label": ["negative", "positive", "negative", "positive"],
            "created_at": [at[1], at[0], at[2], at[0]],
        }
    )
    pairs = labelled_predictions(current, feedback).sort_values("predicted")
    # "a" was labelled twice: the later label (negative) wins; "c" has none; "elsewhere" is
    # not a prediction of this window
    assert pairs.to_dict("records") == [
        {"predicted": "negative", "actual": "negative"},
        {"predicted": "positive", "actual": "negative"},
    ]


def test_no_feedback_means_no_labelled_predictions():
    current = pd.DataFrame(
        {"id": ["a"], "text": ["x"], "label": ["positive"], "probabilities": [{}]}
    )
    feedback = pd.DataFrame(
        {
            "prediction_id": pd.Series([], dtype=str),
            "label": pd.Series([], dtype=str),
            "created_at": pd.Series([], dtype="datetime64[ns, UTC]"),
        }
    )
    assert labelled_predictions(current, feedback).empty


def test_the_reference_is_read_from_the_lineage_tags():
    trained = TrainedOn.from_tags(
        {
            tags.DATASET_MD5: "a" * 32,
            tags.DATASET_PATH: "d.csv",
            tags.TEST_ACCURACY: "0.75",
            tags.TEST_ROWS: "40",
        }
    )
    assert trained == TrainedOn("a" * 32, "d.csv", 0.75, 40)
    # versions registered before test_rows existed, or with none, weigh no test-split noise
    assert TrainedOn.from_tags({}) == TrainedOn(None, None, None, None)
    assert TrainedOn.from_tags({tags.TEST_ROWS: "0"}).test_rows is None
    assert TrainedOn.from_tags({tags.TEST_ROWS: "n/a"}).test_rows is None


def test_a_window_too_small_is_not_judged():
    policy = MonitorParams(min_predictions=50)
    assert too_few_to_judge(49, policy) == (
        "49 predictions, fewer than monitor.min_predictions (50): not judged"
    )
    assert too_few_to_judge(50, policy) is None


def test_training_data_is_found_again_only_with_its_bytes(tmp_path):
    data = tmp_path / "reviews.csv"
    data.write_text("text,label\ngood phone,positive\nbad battery,negative\n")
    md5 = file_md5(data)
    cache = tmp_path / "cache"
    cache.mkdir()
    assert find_copy(md5, str(data), cache) == data
    # the file changed since training; the dataset cache still has the version's bytes
    copy = cache / f"{md5}.csv"
    copy.write_bytes(data.read_bytes())
    data.write_text("text,label\nsomething else,positive\n")
    assert find_copy(md5, str(data), cache) == copy
    texts = reference_texts(TrainedOn(md5, str(data), None, None), DataParams(), cache)
    assert texts == ["good phone", "bad battery"]
    frame = training_frame(str(data), md5, str(data), None, cache)
    assert frame is not None and frame["text"].tolist() == ["good phone", "bad battery"]
    copy.unlink()
    assert find_copy(md5, str(data), cache) is None
    assert reference_texts(TrainedOn(md5, str(data), None, None), DataParams(), cache) is None
    assert training_frame(str(data), md5, str(data), None, cache) is None
    assert find_copy(None, None, tmp_path / "no-cache") is None


def test_enough_feedback_outside_a_checkout_is_an_alert_naming_the_command():
    inside = decide_response(120, 100, None, True, "reviews@1", "reviews")
    assert inside.kind == ActionKind.NEW_DATA
    outside = decide_response(120, 100, None, False, "reviews@1", "reviews")
    assert outside.kind == ActionKind.ALERT and outside.new_feedback == 120
    assert outside.reason.startswith(inside.reason)
    assert outside.reason.endswith(
        "run `modelyard data from-feedback --base reviews@1 --name reviews` in one"
    )
    # too few, or already acted on: the same answer inside or outside
    assert (
        decide_response(40, 100, None, False, "b", "n").reason
        == decide_response(40, 100, None, True, "b", "n").reason
    )
    before = PreviousAction(ActionKind.ALERT, 120, "2026-11-29T10:00:00+00:00")
    assert decide_response(120, 100, before, False, "b", "n").kind == ActionKind.REPEAT


def test_unreadable_training_data_and_data_already_added_are_said_so():
    alert = training_unreadable("3", "a" * 32)
    assert alert.kind == ActionKind.ALERT and f"version 3 (md5 {'a' * 32})" in alert.reason
    action = Action(ActionKind.NEW_DATA, "120 labelled texts", 120)
    done = already_added(action, "reviews@2")
    assert done.kind == ActionKind.NEW_DATA and done.dataset == "reviews@2"
    assert (
        done.reason == "120 labelled texts; the merged data is already reviews@2: nothing "
        "new to add"
    )

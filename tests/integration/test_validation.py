"""Great Expectations on good and bad frames: every problem is named, in the user's column names."""

import pandas as pd
import pytest

from modelyard.config import DataParams
from modelyard.data.validation import DataValidationError, validate_frame

PARAMS = DataParams(text_column="review", label_column="stars", labels=("bad", "ok", "good"),
                    min_rows=4)


def good() -> pd.DataFrame:
    return pd.DataFrame({"review": ["great", "meh", "awful", "fine really"],
                         "stars": ["good", "ok", "bad", "ok"]})


def failures(frame: pd.DataFrame) -> dict[tuple[str, str | None], str]:
    report = validate_frame(frame, PARAMS)
    return {(c.expectation, c.column): c.detail for c in report.failures()}


def test_good_frame_passes():
    report = validate_frame(good(), PARAMS)
    assert report.success and report.rows == 4
    assert {c.expectation for c in report.checks} >= {
        "expect_column_to_exist", "expect_column_values_to_not_be_null",
        "expect_column_values_to_not_match_regex", "expect_column_values_to_be_in_set",
        "expect_table_row_count_to_be_between",
    }


def test_unknown_label():
    frame = good()
    frame.loc[1, "stars"] = "meh"
    found = failures(frame)
    assert list(found) == [("expect_column_values_to_be_in_set", "stars")]
    assert "1 unexpected" in found[("expect_column_values_to_be_in_set", "stars")]
    assert "meh" in found[("expect_column_values_to_be_in_set", "stars")]


def test_empty_and_missing_text():
    frame = good()
    frame.loc[0, "review"] = "   "
    frame.loc[2, "review"] = None
    found = failures(frame)
    assert ("expect_column_values_to_not_match_regex", "review") in found
    assert ("expect_column_values_to_not_be_null", "review") in found


def test_missing_column_named_with_available_columns():
    frame = good().rename(columns={"review": "body"})
    found = failures(frame)
    detail = found[("expect_column_to_exist", "review")]
    assert "'review' is missing" in detail and "body" in detail


def test_too_few_rows():
    found = failures(good().head(2))
    assert found == {("expect_table_row_count_to_be_between", None): "observed 2"}


def test_error_message_lists_every_problem():
    frame = good()
    frame.loc[0, "stars"] = "excellent"
    frame.loc[1, "review"] = ""
    report = validate_frame(frame, PARAMS)
    error = DataValidationError("upload.csv", report)
    message = str(error)
    assert message.startswith("dataset upload.csv failed validation")
    assert "stars" in message and "review" in message and "excellent" in message
    with pytest.raises(DataValidationError):
        raise error

"""The expectation suite (real Great Expectations) on good and bad frames: every problem is named,
in the user's column names, with what was observed."""

from pathlib import Path

import pandas as pd

from modelyard.config import DataParams, ValidationParams
from modelyard.data.validation import (
    DataValidationError,
    validate_datasets,
    validate_frame,
    write_data_docs,
)
from tests.helpers.html_reports import assert_self_contained

PARAMS = DataParams(text_column="review", label_column="stars", labels=("bad", "ok", "good"))
LIMITS = ValidationParams(min_rows=30, min_rows_per_class=5, max_text_length=200)


def good(rows: int = 60) -> pd.DataFrame:
    labels = ["bad", "ok", "good"]
    return pd.DataFrame(
        {
            "review": [f"review number {i} says {labels[i % 3]}" for i in range(rows)],
            "stars": [labels[i % 3] for i in range(rows)],
        }
    )


def failures(
    frame: pd.DataFrame, test: pd.DataFrame | None = None, limits: ValidationParams = LIMITS
) -> dict[str, str]:
    report = validate_datasets(frame, PARAMS, limits, test)
    return {check.title: check.detail for check in report.failures()}


def test_good_frame_passes_every_expectation():
    report = validate_datasets(good(), PARAMS, LIMITS)
    assert report.success, report.to_markdown()
    assert report.rows == 60 and len(report.checks) == 17
    assert {c.expectation for c in report.checks} >= {
        "expect_column_to_exist",
        "expect_column_values_to_be_in_type_list",
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_not_match_regex",
        "expect_column_value_lengths_to_be_between",
        "expect_column_values_to_be_in_set",
        "expect_column_distinct_values_to_contain_set",
        "expect_table_row_count_to_be_between",
        "expect_column_min_to_be_between",
        "expect_column_max_to_be_between",
    }
    assert report.statistics == {
        "rows_in_smallest_class": 20,
        "imbalance_ratio": 1.0,
        "duplicate_fraction": 0.0,
        "conflicting_label_fraction": 0.0,
        "leakage_fraction": 0.0,
    }


def test_unknown_label_is_named_with_examples():
    frame = good()
    frame.loc[1, "stars"] = "meh"
    found = failures(frame)
    detail = found["labels in the configured set ['bad', 'ok', 'good']"]
    assert detail.startswith("observed 1 of 60 rows") and "meh" in detail


def test_blank_and_missing_text():
    frame = good()
    frame.loc[0, "review"] = "   "
    frame.loc[2, "review"] = None
    found = failures(frame)
    assert found["no blank text"].startswith("observed 1 of 60 rows")
    assert found["no missing text"].startswith("observed 1 of 60 rows")


def test_missing_column_named_with_available_columns():
    found = failures(good().rename(columns={"review": "body"}))
    assert "'review' is missing" in found["text column present"]
    assert "body" in found["text column present"]


def test_numbers_in_the_text_column_are_not_text():
    frame = good()
    frame["review"] = range(60)
    found = failures(frame)
    assert "text column holds text" in found


def test_text_length_bounds():
    frame = good()
    frame.loc[3, "review"] = "x" * 500
    assert failures(frame)["text length within 1..200 characters"].startswith("observed 1 of 60")


def test_control_characters_and_undecodable_bytes():
    frame = good()
    frame.loc[4, "review"] = "broken \ufffd byte"
    frame.loc[5, "review"] = "bell \x07 here"
    detail = failures(frame)["no undecodable bytes or control characters"]
    assert detail.startswith("observed 2 of 60 rows")
    # A tolerated fraction is a threshold in params.yaml, not a code change.
    assert "no undecodable bytes or control characters" not in failures(
        frame, limits=LIMITS.model_copy(update={"max_bad_encoding_fraction": 0.05})
    )


def test_a_missing_class_and_too_few_rows_per_class():
    frame = good()
    frame = frame[frame["stars"] != "ok"]
    found = failures(frame)
    assert "missing ['ok']" in found["every configured class present"]
    assert found["rows per class"].startswith("observed 0 (allowed ≥ 5): class 'ok' has 0 rows")


def test_class_imbalance_bound():
    frame = pd.concat(
        [
            good(),
            pd.DataFrame(
                {"review": [f"good one {i}" for i in range(300)], "stars": ["good"] * 300}
            ),
        ]
    )
    detail = failures(frame)["class imbalance (largest/smallest)"]
    assert detail.startswith("observed 16 (allowed ≤ 10): 'good' has 320 rows, 'bad' 20")


def test_duplicates_bound():
    frame = pd.concat([good(), good().head(12)])
    detail = failures(frame)["duplicate rows"]
    assert detail.startswith("observed 0.166667 (allowed ≤ 0.05): 12 rows repeat an earlier row")


def test_conflicting_labels_bound():
    frame = good()
    conflicting = frame.head(3).assign(stars=["ok", "good", "bad"])
    detail = failures(pd.concat([frame, conflicting]))["same text with conflicting labels"]
    assert "6 rows share their text with a row of another label" in detail


def test_leakage_into_a_separate_test_file():
    test = good(9).assign(review=lambda f: f["review"].str.upper())  # case does not hide it
    detail = failures(good(), test)["test texts also in training data (leakage)"]
    assert detail.startswith("observed 1 (allowed ≤ 0): 9 of 9 test rows also in the training file")


def test_the_platform_split_never_leaks_even_with_duplicates():
    frame = pd.concat([good(), good().head(2)])  # duplicates may not straddle the split
    report = validate_datasets(frame, PARAMS, LIMITS)
    assert report.statistics["leakage_fraction"] == 0.0


def test_integer_labels_in_an_integer_column():
    params = DataParams(text_column="review", label_column="stars", labels=(0, 1))
    frame = pd.DataFrame({"review": [f"text {i}" for i in range(40)], "stars": [0, 1] * 20})
    report = validate_datasets(frame, params, LIMITS)
    assert report.success, report.to_markdown()
    assert params.labels == ("0", "1")


def test_too_few_rows():
    found = failures(good(12))
    assert found["at least 30 rows"] == "observed 12 (allowed ≥ 30)"


def test_error_message_lists_every_problem_with_the_source():
    frame = good()
    frame.loc[0, "stars"] = "excellent"
    frame.loc[1, "review"] = ""
    message = str(DataValidationError("upload.csv", validate_frame(frame, PARAMS, LIMITS)))
    assert message.startswith("dataset upload.csv failed validation (3 of 17 expectations)")
    assert "expect_column_values_to_be_in_set(stars)" in message and "excellent" in message
    assert "no blank text: expect_column_values_to_not_match_regex(review)" in message
    assert "text length within 1..200 characters" in message


def test_data_docs_are_html_and_json(tmp_path: Path):
    frame = good()
    frame.loc[0, "stars"] = "excellent"
    report = validate_datasets(frame, PARAMS, LIMITS)
    docs = write_data_docs(report, tmp_path / "docs", "upload.csv")
    pages = sorted(p.name for p in docs.iterdir())
    assert pages == ["0-rows.html", "1-statistics.html", "index.html", "validation.json"]
    assert "excellent" in (docs / "0-rows.html").read_text()
    # Self-contained: nothing loaded from a CDN, no links to other files (dead in MLflow's
    # artifact viewer), no GX placeholders; the index alone holds every suite and check.
    index = assert_self_contained(
        docs / "index.html",
        "Data validation of upload.csv: FAILED",
        "validation of upload.csv",  # the run name
        "upload.csv, rows as read",  # the data asset
        "labels in the configured set",
        "expect_column_values_to_be_in_set",
        '<b class="fail">FAIL</b>',
        "Suite <q>statistics</q>",
    )
    assert index.count("<details") == 2
    for page in ("0-rows.html", "1-statistics.html"):
        assert_self_contained(docs / page, "Run name", "Data asset")
    docs_named = write_data_docs(report, tmp_path / "named", "upload.csv", run_name="nightly 7")
    assert_self_contained(docs_named / "index.html", "nightly 7")
    import json

    saved = json.loads((docs / "validation.json").read_text())
    assert saved["success"] is False and saved["source"] == "upload.csv"
    assert set(saved["gx_results"]) == {"rows (data)", "statistics"}
    # Writing again replaces the report whole (no leftovers from a previous run).
    write_data_docs(report, docs, "upload.csv")
    assert sorted(p.name for p in docs.iterdir()) == pages
    assert not [p for p in docs.parent.iterdir() if p.name.startswith(".docs-")]

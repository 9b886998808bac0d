"""Checking texts before any machinery: which cells, named by the file's own row numbers."""

from __future__ import annotations

import pandas as pd
import pytest

from modelyard.config import DataParams
from modelyard.data.dataset import read_frame
from modelyard.data.input_check import (
    InputError,
    bad_text_cells,
    check_training_frame,
    listed,
    numbering,
    screen_texts,
)


def test_empty_blank_and_non_text_cells_are_found():
    frame = pd.DataFrame({"text": ["fine", None, "  ", 5, float("nan"), "ok", ["a"], ""]})
    bad = bad_text_cells(frame, "text")
    assert bad.empty == (1, 2, 4, 7) and bad.non_text == (3, 6)
    assert bad.positions == [1, 2, 3, 4, 6, 7] and bad
    assert not bad_text_cells(pd.DataFrame({"text": ["a", "b"]}), "text")


def test_csv_rows_are_named_by_the_line_they_start_on(tmp_path):
    path = tmp_path / "in.csv"
    # A quoted cell spanning two lines and a blank line (pandas skips it) shift the lines.
    path.write_text('id,text\n1,fine\n2,"two\nlines"\n\n3,\n4,"  "\n5,ok\n')
    frame = read_frame(path)
    assert len(frame) == 5
    rows = numbering(path, len(frame))
    assert rows.unit == "line" and rows.numbers == (2, 3, 6, 7, 8)
    with pytest.raises(InputError) as refused:
        screen_texts(frame, "text", "in.csv", path, skip_invalid=False, cells_hint=" [hint]")
    assert str(refused.value) == (
        "in.csv: 2 rows with no text in column 'text' (empty or blank): lines 6, 7 [hint]"
    )


def test_jsonl_lines_and_parquet_rows(tmp_path):
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text('{"text": "a"}\n\n{"text": 5}\n{"text": null}\n')
    frame = read_frame(jsonl)
    bad = bad_text_cells(frame, "text")
    rows = numbering(jsonl, len(frame))
    assert rows.of(bad.non_text) == [3] and rows.of(bad.empty) == [4] and rows.unit == "line"
    parquet = tmp_path / "in.parquet"
    pd.DataFrame({"text": ["a", None, "b"]}).to_parquet(parquet)
    assert numbering(parquet, 3).unit == "row"
    with pytest.raises(InputError, match=r"1 row with no text in column 'text' .*: row 2$"):
        screen_texts(read_frame(parquet), "text", "in.parquet", parquet, False)
    assert numbering(None, 2).numbers == (1, 2)  # a SQL table


def test_skip_invalid_leaves_the_rows_out_and_lists_them(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("id,text\n1,a\n2,\n3,b\n4,\n")
    screened = screen_texts(read_frame(path), "text", "in.csv", path, skip_invalid=True)
    assert list(screened.frame["id"]) == [1, 3] and list(screened.frame.index) == [0, 1]
    assert (screened.skipped, screened.unit) == ([3, 5], "line")


def test_a_missing_column_is_named_with_the_columns_there():
    frame = pd.DataFrame({"body": ["a"]})
    with pytest.raises(InputError, match=r"has no column 'text' \(columns: \['body'\]\); pick"):
        screen_texts(frame, "text", "in.csv", None, False, column_hint="; pick")


def test_long_lists_are_cut():
    assert listed("line", [4]) == "line 4"
    assert listed("row", list(range(1, 26))).endswith("19, 20 and 5 more")


def test_training_frame_needs_both_columns_text_and_labels(tmp_path):
    data = DataParams()
    good = pd.DataFrame({"text": ["a", "b"], "label": ["negative", 1]})
    check_training_frame(good, data, "d.csv", None)
    with pytest.raises(InputError, match="has no columns 'text' and 'label'"):
        check_training_frame(pd.DataFrame({"x": [1]}), data, "d.csv", None)
    bad = pd.DataFrame({"text": ["a", "", 3], "label": ["negative", None, "positive"]})
    with pytest.raises(InputError) as refused:
        check_training_frame(bad, data, "d.csv", None)
    message = str(refused.value)
    assert "1 row with no text in column 'text' (empty or blank): row 2" in message
    assert "1 row whose 'text' is not text (a number or another value): row 3" in message
    assert "1 row with no label in column 'label': row 2" in message

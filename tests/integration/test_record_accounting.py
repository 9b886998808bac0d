"""No row lost in silence, as a user meets it: a TSV whose texts begin with a double quote is
added whole (`modelyard data add`), and a CSV with an unbalanced quote is refused — by
`modelyard retrain` before anything starts, and by `modelyard stage validate` through a named
expectation of the Great Expectations suite — naming the line and `data.quoting`, which, once
set, reads the file whole."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from modelyard.config import Params
from modelyard.data.dataset import read_frame
from modelyard.data.synthetic import ReviewSpec, generate_reviews
from modelyard.data.validation import DataValidationError, validate_datasets
from tests.helpers.dvc import make_dvc_project

ROWS = 300
PARAMS = Params().updated({"validation.min_rows": 100, "validation.min_rows_per_class": 10})
RECORD_TITLES = {
    "every record in the file read as one row",
    "every record has the header's 2 fields",
    "no records merged or altered by quotes",
}


def quoted_rows() -> list[tuple[str, str]]:
    """Reviews of which every seventh begins with a double quote and every eleventh quotes a
    word, as exported texts do; no commas or tabs, so any delimiter works."""
    rows = []
    for i, (text, label) in enumerate(generate_reviews(ReviewSpec(rows=ROWS, seed=11))):
        text = text.replace(",", "")
        if i % 7 == 3:
            text = '"' + text
        if i % 11 == 5:
            text = text.replace(" ", ' "so-called" ', 1)
        rows.append((text, label))
    if sum(text.count('"') for text, _ in rows) % 2:  # no quote left open at the end
        rows[-1] = (rows[-1][0] + '"', rows[-1][1])
    return rows


def write(path: Path, rows: list[tuple[str, str]], sep: str) -> Path:
    """Written as a person's export is: fields joined by the delimiter, nothing quoted."""
    lines = [f"text{sep}label", *(f"{text}{sep}{label}" for text, label in rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def invoke(*args: str) -> tuple[int, str]:
    from modelyard.cli import app

    result = CliRunner().invoke(app, list(args))
    assert "Traceback" not in result.output
    return result.exit_code, " ".join(result.output.split())


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("MODELYARD_HOME", str(home))
    return home


def test_data_add_keeps_every_row_of_a_tsv_whose_texts_begin_with_a_quote(
    tmp_path, home, monkeypatch
):
    project = make_dvc_project(tmp_path / "project", tmp_path / "remote")
    monkeypatch.chdir(project)
    (project / "params.yaml").write_text(yaml.safe_dump(PARAMS.model_dump(mode="json")))
    rows = quoted_rows()
    path = write(tmp_path / "export.tsv", rows, "\t")
    assert len(pd.read_csv(path, sep="\t")) < ROWS  # pandas' default quoting merges rows

    code, out = invoke("data", "add", str(path), "--name", "reviews")
    assert code == 0, out
    assert "added reviews@1: data/datasets/reviews/v1.tsv, md5 " in out
    assert f"{ROWS} rows" in out and f"19/19 expectations passed on {ROWS} rows" in out
    frame = read_frame(project / "data/datasets/reviews/v1.tsv", PARAMS.data)
    assert list(zip(frame["text"], frame["label"], strict=True)) == rows


def test_retrain_refuses_a_csv_with_an_unbalanced_quote_naming_the_line(
    tmp_path, home, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(yaml.safe_dump(PARAMS.model_dump(mode="json")))
    write(tmp_path / "export.csv", quoted_rows(), ",")
    code, out = invoke("retrain", "--data", "export.csv")
    assert code == 1, out
    assert "export.csv: every record in the file read as one row: observed 164: 300 rec" in out
    assert "no records merged or altered by quotes: observed 28: line 5 ('\"" in out
    assert "and 23 more (lines " in out
    assert "line 5 ('\"" in out  # the fourth row, the first to begin with a quote
    assert "set data.quoting: none in params.yaml" in out
    assert "Nothing was trained, registered or promoted." in out
    assert list(home.iterdir()) == []


def test_stage_validate_refuses_it_as_an_expectation_and_data_quoting_reads_it_whole(
    tmp_path, home, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    rows = quoted_rows()
    write(tmp_path / "export.csv", rows, ",")
    params = PARAMS.updated({"data.path": "export.csv"})
    Path("params.yaml").write_text(yaml.safe_dump(params.model_dump(mode="json")))

    code, out = invoke("stage", "validate")
    assert code == 1, out
    assert "dataset export.csv failed validation" in out
    assert (
        "no records merged or altered by quotes: expect_column_max_to_be_between("
        "quote_damaged_records) observed" in out
    )
    assert "every record in the file read as one row: expect_column_max_to_be_between(" in out
    assert "line 5 ('\"" in out and "data.quoting: none" in out
    pages = sorted(p.name for p in Path("build/validation").glob("*.html"))
    assert pages == ["0-rows.html", "1-statistics.html", "2-records.html", "index.html"]

    Path("params.yaml").write_text(
        yaml.safe_dump(params.updated({"data.quoting": "none"}).model_dump(mode="json"))
    )
    code, out = invoke("stage", "validate")
    assert code == 0, out
    assert f"validation: 19/19 expectations passed on {ROWS} rows" in out


def test_the_suite_names_each_record_check_for_the_data_and_the_test_file(tmp_path):
    good = write(
        tmp_path / "good.csv", [(t.replace('"', ""), label) for t, label in quoted_rows()], ","
    )
    report = validate_datasets(read_frame(good), PARAMS.data, PARAMS.validation)
    assert report.success, report.to_markdown()
    records = [c for c in report.checks if c.title in RECORD_TITLES]
    assert [c.column for c in records] == [
        "records_not_read",
        "ragged_records",
        "quote_damaged_records",
    ]
    assert records[0].detail == (
        f"observed 0 (allowed 0): {ROWS} records in {ROWS + 1} lines (the header), {ROWS} rows "
        "read; decoded as utf-8 (valid UTF-8)"
    )
    test = tmp_path / "test.tsv"
    test.write_text("text\tlabel\nfine\tpositive\ntoo\tmany\tfields\n")
    report = validate_datasets(read_frame(good), PARAMS.data, PARAMS.validation, read_frame(test))
    failed = {(c.title, c.scope): c.detail for c in report.failures()}
    detail = failed[("every record has the header's 2 fields", "test file")]
    assert detail.startswith("observed 1 (allowed 0): line 3 ('too\\tmany\\tfields'): 3 fields")
    message = str(DataValidationError("good.csv", report))
    assert (
        "every record has the header's 2 fields [test file]: expect_column_max_to_be_between("
        in (message)
    )

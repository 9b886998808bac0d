"""Bad input, one test per kind: each malformed file (made here) ends the retrain before any
training, with exit 1 and a message naming the file, the failed expectation and what was
observed; the registry, its aliases, the MLflow runs, the dataset catalog and the DVC cache and
remote are exactly as they were."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.helpers import forked
from tests.helpers.dvc import make_dvc_project
from tests.helpers.models import TINY_MODEL
from tests.helpers.stores import copy_home

pytestmark = pytest.mark.slow

NAME = TINY_MODEL


@pytest.fixture(scope="module")
def project(tmp_path_factory, monkeypatch_module, tiny_production, tiny_params):
    """A DVC project with one dataset version, and stores with a model in production (a copy of
    the session's tiny model: no test here gets as far as training or comparing)."""
    from modelyard.adapters import datasets as sources
    from modelyard.data.synthetic import ReviewSpec, write_reviews

    base = tmp_path_factory.mktemp("bad-data")
    root = make_dvc_project(base / "project", base / "remote")
    monkeypatch_module.chdir(root)
    copy_home(tiny_production.home, base / "home")
    monkeypatch_module.setenv("MODELYARD_HOME", str(base / "home"))
    # Messages are matched whole: no terminal-width wrap inside a (long, xdist worker's) path.
    monkeypatch_module.setenv("COLUMNS", "500")
    params = tiny_params.updated(
        {
            "model.name": NAME,
            "data.path": "data/datasets/reviews/v1.csv",
            "validation.min_rows_per_class": 10,
        }
    )
    params_path = root / "params.yaml"
    params_path.write_text(yaml.safe_dump(params.model_dump(mode="json")))
    good = write_reviews(base / "good.csv", ReviewSpec(rows=1200, seed=11))
    sources.add(root, good, "reviews", params)
    return {
        "root": root,
        "params": params_path,
        "good": good,
        "base": base,
        "uri": f"sqlite:///{(base / 'home').resolve()}/mlflow.db",
    }


def snapshot(project) -> dict:
    from mlflow import MlflowClient

    from modelyard.adapters.catalog import Catalog

    client = MlflowClient(tracking_uri=project["uri"], registry_uri=project["uri"])
    versions = sorted(
        (v.name, str(v.version), tuple(sorted(v.aliases)), tuple(sorted(v.tags.items())))
        for v in client.search_model_versions()
    )
    experiment = client.get_experiment_by_name("modelyard").experiment_id

    def files(folder: Path) -> list[tuple[str, int]]:
        return sorted(
            (str(p.relative_to(folder)), p.stat().st_size) for p in folder.rglob("*") if p.is_file()
        )

    return {
        "versions": versions,
        "runs": sorted(r.info.run_id for r in client.search_runs([experiment])),
        "catalog": [e.to_dict() for e in Catalog(project["root"]).entries()],
        "cache": files(project["root"] / ".dvc" / "cache"),
        "remote": files(project["base"] / "remote"),
        "pointers": files(project["root"] / "data"),
    }


def retrain_cli(project, *args: str) -> tuple[int, str]:
    from typer.testing import CliRunner

    from modelyard.cli import app

    result = CliRunner().invoke(app, ["retrain", "--params", str(project["params"]), *args])
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), result.exception
    return result.exit_code, " ".join(result.output.split())  # rich wraps long lines


def rows() -> pd.DataFrame:
    from modelyard.data.synthetic import ReviewSpec, generate_reviews

    return pd.DataFrame(generate_reviews(ReviewSpec(rows=300, seed=5)), columns=["text", "label"])


def write(path: Path, frame: pd.DataFrame, **kwargs) -> Path:
    frame.to_csv(path, index=False, **kwargs)
    return path


def _empty(d: Path) -> Path:
    (d / "empty.csv").write_bytes(b"")
    return d / "empty.csv"


def _header_only(d: Path) -> Path:
    (d / "header.csv").write_text("text,label\n")
    return d / "header.csv"


def _truncated_in_a_quote(d: Path) -> Path:
    text = write(d / "full.csv", rows(), quoting=1).read_text()
    (d / "truncated.csv").write_text(text[: len(text) // 2])
    return d / "truncated.csv"


def _truncated_mid_row(d: Path) -> Path:
    lines = write(d / "full.csv", rows()).read_text().splitlines()
    (d / "cut.csv").write_text("\n".join(lines[:-1]) + "\n" + lines[-1].rsplit(",", 1)[0][:20])
    return d / "cut.csv"


def _parquet_named_csv(d: Path) -> Path:
    rows().to_parquet(d / "real.parquet")
    (d / "reviews.csv").write_bytes((d / "real.parquet").read_bytes())
    return d / "reviews.csv"


def _csv_named_parquet(d: Path) -> Path:
    return write(d / "reviews.parquet", rows())


def _jsonl_that_is_csv(d: Path) -> Path:
    return write(d / "reviews.jsonl", rows())


def _missing_column(d: Path) -> Path:
    return write(d / "nolabel.csv", rows().rename(columns={"label": "sentiment"}))


def _wrong_delimiter(d: Path) -> Path:
    return write(d / "semicolons.csv", rows(), sep=";")


def _tabs_named_csv(d: Path) -> Path:
    frame = rows().assign(text=lambda f: f["text"].str.replace(",", ""))
    return write(d / "tabs.csv", frame, sep="\t")


def _labels_outside_the_set(d: Path) -> Path:
    frame = rows()
    frame.loc[frame.index[:7], "label"] = "very positive"
    return write(d / "labels.csv", frame)


def _single_class(d: Path) -> Path:
    return write(d / "single.csv", rows().assign(label="positive"))


def _mostly_duplicates(d: Path) -> Path:
    frame = rows()
    return write(d / "dupes.csv", pd.concat([frame.head(60)] * 5))


def _conflicting_labels(d: Path) -> Path:
    frame = rows()
    flipped = frame.head(30).assign(
        label=frame.head(30)["label"].map(
            {"positive": "negative", "negative": "neutral", "neutral": "positive"}
        )
    )
    return write(d / "conflicts.csv", pd.concat([frame, flipped]))


def _undecodable_bytes_and_control_chars(d: Path) -> Path:
    """A UTF-8 file (its accents decode) with a few bytes that do not."""
    path = write(
        d / "encoding.csv", rows().assign(text=lambda f: f["text"].str.replace("The ", "Thé "))
    )
    data = path.read_bytes().replace(b"good", b"g\xff\xfeod", 3).replace(b"bad", b"b\x07ad", 2)
    path.write_bytes(data)
    return path


def _another_encoding(d: Path) -> Path:
    frame = rows().assign(
        text=lambda f: f["text"].str.replace("The ", "Thé ").str.replace("'", "’")
    )
    return write(d / "cp1252.csv", frame, encoding="cp1252")


def _unbalanced_quote(d: Path) -> Path:
    """Texts exported without quoting, one beginning with a double quote (line 5)."""
    frame = rows().assign(text=lambda f: f["text"].str.replace(",", ""))
    frame.loc[3, "text"] = '"' + frame.loc[3, "text"]
    frame.loc[9, "text"] = frame.loc[9, "text"].replace(" ", ' "so-called" ', 1)
    path = d / "quotes.csv"
    lines = [
        "text,label",
        *(f"{t},{label}" for t, label in zip(frame["text"], frame["label"], strict=True)),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _ragged_row(d: Path) -> Path:
    path = write(
        d / "ragged.tsv", rows().assign(text=lambda f: f["text"].str.replace('"', "")), sep="\t"
    )
    lines = path.read_text().splitlines()
    lines[6] += "\textra field"
    path.write_text("\n".join(lines) + "\n")
    return path


def _blank_text(d: Path) -> Path:
    frame = rows()
    frame.loc[frame.index[:4], "text"] = "   "
    return write(d / "blank.csv", frame)


def _numbers_as_text(d: Path) -> Path:
    return write(d / "numbers.csv", rows().assign(text=range(300)))


def _text_too_long(d: Path) -> Path:
    frame = rows()
    frame.loc[frame.index[0], "text"] = "word " * 2000
    return write(d / "long.csv", frame)


def _imbalanced(d: Path) -> Path:
    frame = rows()
    few = frame[frame["label"] == "neutral"].head(10)
    return write(d / "imbalanced.csv", pd.concat([frame[frame["label"] != "neutral"], few]))


CASES = {
    # kind: (make the file, what the message must say)
    "empty": (_empty, ["empty.csv: the file is empty (0 bytes)"]),
    "header only": (
        _header_only,
        [
            "header.csv failed validation",
            "at least 100 rows: expect_table_row_count_to_be_between() observed 0",
        ],
    ),
    "truncated inside a quote": (
        _truncated_in_a_quote,
        ["truncated.csv: cannot be parsed as csv", "EOF inside string", "is the file truncated?"],
    ),
    # Columns and empty or non-text cells are refused by the CLI before Prefect starts, naming
    # the lines; the rest by the flow's expectation suite.
    "truncated mid-row": (
        _truncated_mid_row,
        [
            "cut.csv: every record has the header's 2 fields: observed 1: line 301 ('I bought "
            "this toaste'): 1 field, the header has 2 (the file's last line: is the file "
            "truncated?)"
        ],
    ),
    "parquet named .csv": (
        _parquet_named_csv,
        ["reviews.csv: claims to be CSV but is a Parquet file"],
    ),
    "csv named .parquet": (
        _csv_named_parquet,
        ["reviews.parquet: not a Parquet file (no PAR1 magic number; it is text)"],
    ),
    "csv named .jsonl": (
        _jsonl_that_is_csv,
        ["reviews.jsonl: not JSON Lines (each line must be a JSON object"],
    ),
    "missing column": (
        _missing_column,
        ["nolabel.csv has no column 'label' (columns: ['text', 'sentiment'])"],
    ),
    "wrong delimiter": (
        _wrong_delimiter,
        [
            "semicolons.csv: every record has the header's 1 field: observed",
            "the header 'text;label' looks delimited by ';', not by what the suffix '.csv' says "
            "(data.delimiter: ';' in params.yaml)",
        ],
    ),
    "an unbalanced quote": (
        _unbalanced_quote,
        [
            "quotes.csv: every record in the file read as one row: observed 6:",
            "no records merged or altered by quotes: observed 1: line 5 ('\"",
            "a quoted field opens here and closes on line 11, followed by more text",
            "set data.quoting: none in params.yaml",
        ],
    ),
    "a ragged row": (
        _ragged_row,
        [
            "ragged.tsv: every record has the header's 2 fields: observed 1: line 7 (",
            "3 fields, the header has 2; with data.quoting: none a field cannot hold the "
            "delimiter (a tab) or a line break",
        ],
    ),
    "wrong delimiter, no stray commas": (
        _tabs_named_csv,
        [
            "tabs.csv has no columns 'text' and 'label' (columns: ['text\\tlabel']); the header is "
            "one column 'text\\tlabel': the file looks delimited by a tab"
        ],
    ),
    "labels outside the set": (
        _labels_outside_the_set,
        [
            "labels.csv failed validation",
            "labels in the configured set ['negative', 'neutral', 'positive']: "
            "expect_column_values_to_be_in_set(label) observed 7 of 300 rows, "
            "e.g. ['very positive'",
        ],
    ),
    "single class": (
        _single_class,
        [
            "single.csv failed validation",
            "every configured class present: expect_column_distinct_values_to_contain_set(label) "
            "observed classes ['positive'], missing ['negative', 'neutral']",
            "rows per class [statistics]: expect_column_min_to_be_between(rows_in_smallest_class) "
            "observed 0 (allowed ≥ 10)",
        ],
    ),
    "mostly duplicates": (
        _mostly_duplicates,
        [
            "dupes.csv failed validation",
            "duplicate rows [statistics]: expect_column_max_to_be_between(duplicate_fraction) "
            "observed 0.8 (allowed ≤ 0.05): 240 rows repeat an earlier row",
        ],
    ),
    "conflicting labels": (
        _conflicting_labels,
        [
            "conflicts.csv failed validation",
            "same text with conflicting labels [statistics]",
            "observed 0.181818 (allowed ≤ 0.01): 60 rows share their text with a row of another "
            "label",
        ],
    ),
    "undecodable bytes and control characters": (
        _undecodable_bytes_and_control_chars,
        [
            "encoding.csv failed validation",
            "no undecodable bytes or control characters: "
            "expect_column_values_to_not_match_regex(text) observed 5 of 300 rows",
        ],
    ),
    "another encoding": (
        _another_encoding,
        [
            "cp1252.csv: not UTF-8 (",
            "charset-normalizer detects cp1252",
            "(data.encoding: cp1252) or save the file as UTF-8",
        ],
    ),
    "blank text": (
        _blank_text,
        ["blank.csv: 4 rows with no text in column 'text' (empty or blank): lines 2, 3, 4, 5"],
    ),
    "numbers in the text column": (
        _numbers_as_text,
        [
            "numbers.csv: 300 rows whose 'text' is not text (a number or another value): lines 2, "
            "3, 4,",
            "and 280 more",
        ],
    ),
    "text too long": (
        _text_too_long,
        [
            "long.csv failed validation",
            "text length within 1..5000 characters: "
            "expect_column_value_lengths_to_be_between(text) observed 1 of 300 rows",
        ],
    ),
    "class imbalance": (
        _imbalanced,
        [
            "imbalanced.csv failed validation",
            "class imbalance (largest/smallest) [statistics]",
            "(allowed ≤ 10): 'negative' has",
        ],
    ),
}


@pytest.mark.parametrize("kind", list(CASES))
def test_bad_file_is_refused_before_training_and_changes_nothing(kind, project, tmp_path):
    make, expected = CASES[kind]
    bad = make(tmp_path)
    before = snapshot(project)
    code, output = retrain_cli(project, "--data", str(bad))
    assert code == 1, output
    for fragment in expected:
        assert fragment in output, f"{fragment!r} not in {output!r}"
    assert "Nothing was trained, registered or promoted" in output
    assert "Traceback" not in output
    assert snapshot(project) == before


def test_leaking_test_file_is_refused(project, tmp_path):
    test = write(tmp_path / "test.csv", pd.read_csv(project["good"]).head(40))
    before = snapshot(project)
    code, output = retrain_cli(project, "--data", "reviews@1", "--set", f"data.test_path={test}")
    assert code == 1
    assert "reviews@1 (data/datasets/reviews/v1.csv) with test file" in output
    assert (
        "test texts also in training data (leakage) [statistics]: "
        "expect_column_max_to_be_between(leakage_fraction) observed 1 (allowed ≤ 0): "
        "40 of 40 test rows also in the training file"
    ) in output
    assert snapshot(project) == before


def test_unknown_dataset_version_is_refused(project):
    before = snapshot(project)
    code, output = retrain_cli(project, "--data", "reviews@7")
    assert code == 1
    assert "reviews@7: no such version, md5 prefix or git revision (versions: 1 (" in output
    code, output = retrain_cli(project, "--data", "nosuch@1")
    assert code == 1 and "no dataset named 'nosuch'" in output and "datasets: reviews" in output
    assert snapshot(project) == before


def test_data_add_refuses_a_bad_file_and_stores_nothing(project, tmp_path):
    from typer.testing import CliRunner

    from modelyard.cli import app

    before = snapshot(project)
    for make in (_labels_outside_the_set, _parquet_named_csv, _mostly_duplicates):
        bad = make(tmp_path)
        result = CliRunner().invoke(
            app, ["data", "add", str(bad), "--name", "reviews", "--params", str(project["params"])]
        )
        output = " ".join(result.output.split())
        assert result.exit_code == 1 and bad.name in output, output
        assert "Nothing was added or changed" in output
    assert snapshot(project) == before
    assert not (project["root"] / "data" / "datasets" / "reviews" / "v2.csv").exists()


@pytest.mark.parametrize("make", [_labels_outside_the_set, _parquet_named_csv])
def test_the_real_command_prints_no_traceback(make, project, prefect_api, tmp_path):
    """The command in a process of its own (tests.helpers.forked), against the same Prefect
    API: what a user sees is the message, never a traceback."""
    bad = make(tmp_path)
    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    result = forked.run(
        ["retrain", "--params", str(project["params"]), "--data", str(bad)],
        cwd=project["root"],
        env=env,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]
    assert bad.name in output and "Nothing was trained, registered or promoted" in output
    assert "Traceback" not in output, output[-3000:]
    if make is _labels_outside_the_set:  # the other is refused before the flow starts
        assert "Finished in state Failed" in output

"""`modelyard predict` and `modelyard retrain` refuse bad input before any machinery: exit 1, a
message naming the file, columns and rows, no traceback, nothing written — no output, no parts,
no MLflow store, no Prefect server, no model loaded."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys

import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.helpers.dvc import make_dvc_project
from tests.helpers.paths import REPO

PARAMS = str(REPO / "params.yaml")


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("MODELYARD_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    return home


def invoke(*args: str) -> tuple[int, str]:
    from modelyard.cli import app

    result = CliRunner().invoke(app, list(args))
    assert "Traceback" not in result.output
    return result.exit_code, " ".join(result.output.split())


def nothing_written(home, tmp_path) -> None:
    assert list(home.iterdir()) == []  # no MLflow store, no platform database, no parts
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("out")]


def write(tmp_path, name: str, content: bytes | str):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


CASES = {
    "empty cells": (
        "in.csv",
        'id,text\n1,great phone\n2,\n3,awful\n4,"  "\n',
        [
            "in.csv: 2 rows with no text in column 'text' (empty or blank): lines 3, 5",
            "--skip-invalid",
        ],
    ),
    "non-text cells": (
        "in.jsonl",
        '{"text": "fine"}\n{"text": 42}\n{"text": null}\n',
        [
            "1 row whose 'text' is not text (a number or another value): line 2",
            "1 row with no text in column 'text' (empty or blank): line 3",
        ],
    ),
    "missing column": (
        "in.csv",
        "id,body\n1,fine\n",
        ["in.csv has no column 'text' (columns: ['id', 'body']); choose one with --text-column"],
    ),
    "wrong delimiter": ("in.csv", "id;text\n1;fine\n", ["the file looks delimited by ';'"]),
    "no rows": ("in.csv", "id,text\n", ["in.csv has no rows"]),
    "empty file": ("in.csv", "", ["the file is empty (0 bytes)"]),
    "not a csv": (
        "in.csv",
        gzip.compress(b"id,text\n1,a\n"),
        ["claims to be CSV but is gzip-compressed"],
    ),
    "unsupported": ("in.xlsx", "x", ["unsupported file type '.xlsx'"]),
    "a ragged record": (
        "in.tsv",
        "id\ttext\n1\tgreat\n2\tfine\textra\n",
        ["in.tsv: every record has the header's 2 fields: observed 1: line 3 ('2\\tfine\\textra')"],
    ),
    "a quote that swallows records": (
        "in.csv",
        'id,text\n1,"great\n2,fine" they said\n',
        ["in.csv: every record in the file read as one row: observed 1", "data.quoting: none"],
    ),
    "another encoding": (
        "in.csv",
        "id,text\n1,café crème\n".encode("cp1252"),
        ["in.csv: not UTF-8", "charset-normalizer detects", "or save the file as UTF-8"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_predict_refuses_bad_files(home, tmp_path, case):
    name, content, words = CASES[case]
    write(tmp_path, name, content)
    code, out = invoke("predict", "--params", PARAMS, "--input", name, "--output", "out.csv")
    assert code == 1, out
    for word in [*words, "Nothing was scored or written."]:
        assert word in out, out
    nothing_written(home, tmp_path)


def test_predict_reads_its_input_as_data_says(tmp_path):
    """A TSV's quotes are characters; another encoding is read once params name it."""
    from modelyard.adapters.batch import check_input
    from modelyard.config import DataParams

    tsv = write(tmp_path, "in.tsv", 'id\ttext\n1\t"great\n2\tfine"\n3\tok\n')
    screened = check_input(str(tsv), "sqlite://", "text", False)
    assert screened.frame["text"].tolist() == ['"great', 'fine"', "ok"]
    latin = write(tmp_path, "in.csv", "id,text\n1,café crème\n".encode("cp1252"))
    screened = check_input(str(latin), "sqlite://", "text", False, DataParams(encoding="cp1252"))
    assert screened.frame["text"].tolist() == ["café crème"]


def test_predict_refuses_a_missing_file_and_an_unreadable_one(home, tmp_path):
    code, out = invoke("predict", "--params", PARAMS, "--input", "gone.csv", "--output", "out.csv")
    assert code == 1 and "input gone.csv does not exist" in out
    locked = write(tmp_path, "locked.csv", "text\nfine\n")
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):
            pytest.skip("running as a user who reads every file (root)")
        code, out = invoke(
            "predict", "--params", PARAMS, "--input", "locked.csv", "--output", "out.csv"
        )
        assert code == 1 and "locked.csv cannot be read (permission denied)" in out
    finally:
        locked.chmod(0o644)
    nothing_written(home, tmp_path)


def test_predict_refuses_empty_texts_in_a_table(home, tmp_path, monkeypatch):
    from sqlalchemy import create_engine

    database = tmp_path / "other.db"
    engine = create_engine(f"sqlite:///{database}")
    pd.DataFrame({"text": ["a", None, "b"]}).to_sql("incoming", engine, index=False)
    engine.dispose()
    monkeypatch.setenv("MODELYARD_DATABASE_URL", f"sqlite:///{database}")
    code, out = invoke(
        "predict", "--params", PARAMS, "--input", "sql:incoming", "--output", "out.csv"
    )
    assert code == 1 and "sql:incoming: 1 row with no text in column 'text'" in out
    assert "row 2" in out
    nothing_written(home, tmp_path)


def test_skipping_every_row_leaves_nothing_to_score(home, tmp_path):
    write(tmp_path, "in.csv", 'id,text\n1,\n2," "\n')
    code, out = invoke(
        "predict", "--params", PARAMS, "--input", "in.csv", "--output", "out.csv", "--skip-invalid"
    )
    assert code == 1 and "in.csv has no rows left once the rows without text are skipped" in out
    nothing_written(home, tmp_path)


def test_a_refusal_in_its_own_process_starts_nothing(home, tmp_path):
    """As a user runs it: exit 1, the message, no traceback, no Prefect server, no store."""
    write(tmp_path, "bad.csv", "id,text\n1,great\n2,\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "modelyard",
            "predict",
            "--params",
            PARAMS,
            "--input",
            "bad.csv",
            "--output",
            "out.csv",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "MODELYARD_HOME": str(home), "COLUMNS": "200"},
    )
    assert result.returncode == 1
    assert "bad.csv: 1 row with no text in column 'text' (empty or blank): line 3" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "prefect" not in (result.stderr + result.stdout).lower()
    nothing_written(home, tmp_path)


@pytest.fixture
def project(tmp_path, monkeypatch, home):
    """A DVC project whose dataset `reviews` has version 1 (DVC-tracked, described)."""
    from modelyard.adapters.catalog import version_path, write_meta
    from modelyard.adapters.dvc import DvcRepo

    root = make_dvc_project(tmp_path / "project", tmp_path / "remote")
    target = version_path(root, "reviews", 1, ".csv")
    target.parent.mkdir(parents=True)
    target.write_text("text,label\ngreat,positive\n")
    DvcRepo(root).add(target)
    write_meta(target.with_name("v1.csv.dvc"), {"name": "reviews", "version": 1, "rows": 1})
    monkeypatch.chdir(root)
    return root


def test_the_workspace_catalog_lists_what_dvc_lists(project):
    from modelyard.adapters.catalog import Catalog
    from modelyard.adapters.workspace_catalog import WorkspaceCatalog

    fast, dvc = WorkspaceCatalog(project), Catalog(project)
    assert fast.names() == dvc.names() == ["reviews"]
    assert fast.versions("reviews") == dvc.versions("reviews")
    assert fast.versions("reviews")[0].rows == 1 and fast.versions("nosuch") == []


@pytest.mark.parametrize(
    "args, words",
    [
        (
            ["--data", "reviews@99"],
            ["reviews@99: no such version, md5 prefix or git revision (versions: 1 ("],
        ),
        (["--data", "nosuch@1"], ["no dataset named 'nosuch'", "(datasets: reviews)"]),
        (["--data", "reviews@99", "--remote"], ["reviews@99: no such version"]),
        (["--data", "gone.csv"], ["gone.csv: no such file"]),
    ],
)
def test_retrain_refuses_unknown_versions_and_files(project, home, args, words):
    code, out = invoke("retrain", "--params", PARAMS, *args)
    assert code == 1, out
    for word in [*words, "Nothing was trained, registered or promoted."]:
        assert word in out
    assert list(home.iterdir()) == []


@pytest.mark.parametrize(
    "content, words",
    [
        (
            'text,label\ngreat,positive\n,negative\n"two\nlines",neutral\nawful,\n',
            [
                "bad.csv: 1 row with no text in column 'text' (empty or blank): line 3",
                "bad.csv: 1 row with no label in column 'label': line 6",
            ],
        ),
        (
            "body,label\nfine,positive\n",
            ["bad.csv has no column 'text' (columns: ['body', 'label']); data.text_column"],
        ),
    ],
)
def test_retrain_refuses_bad_rows_naming_them(home, tmp_path, content, words):
    write(tmp_path, "bad.csv", content)
    code, out = invoke("retrain", "--params", PARAMS, "--data", "bad.csv")
    assert code == 1, out
    for word in [*words, "Nothing was trained, registered or promoted."]:
        assert word in out
    assert list(home.iterdir()) == []


def test_good_input_passes_the_check(project, home):
    """What is refused above is all that is: a known version with good rows passes (and is
    fetched into the dataset cache the flow reads it from); with --remote, a file this machine
    does not have is left to the worker."""
    from pathlib import Path

    from modelyard.adapters.training_input import check_training_input
    from modelyard.config import Settings, load_params

    params, cache = load_params(PARAMS), Settings().dataset_cache()
    check_training_input(params, "reviews@1", None, False, Path.cwd(), cache)
    check_training_input(params, "reviews@latest", None, True, Path.cwd(), cache)
    check_training_input(params, "/on/the/worker.csv", None, True, Path.cwd(), cache)
    assert [p.suffix for p in (home / ".modelyard" / "datasets").iterdir()] == [".csv"]

"""No command destroys stored state: every way to write batch output (`modelyard predict`, the
batch-predict flow) is refused on each of the platform's own tables, with or without --replace,
and on an existing table or file without it; the refusal comes before Prefect or a model, and
every stored row and byte is unchanged. The writer itself swaps an output in atomically, and
the audit trail refuses UPDATE and DELETE in the database itself (SQLite and PostgreSQL).

Writing over an existing output *with* --replace needs a model: tests/e2e/test_batch_predict.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from modelyard.adapters.batch import SQL, TEMPORARY_PREFIX, BatchError, finish
from modelyard.store.models import platform_tables
from tests.helpers.paths import REPO
from tests.helpers.postgres import fresh_database
from tests.helpers.registry import FakeRegistry

USER_TABLE = "scored"
USER_FILE = "out.csv"
A_DIRECTORY = "folder.csv"


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def database(request, tmp_path_factory):
    """A migrated platform database with rows in its tables, and a table of the user's."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db')}/modelyard.db"
        yield _populated(url)
        return
    with fresh_database() as url:
        yield _populated(url)


def _populated(url: str) -> str:
    from sqlalchemy import insert

    from modelyard.store.audit import AuditLog
    from modelyard.store.models import Feedback, MonitorRun, Prediction, RetentionRun

    log, registry = AuditLog.from_url(url), FakeRegistry()
    for version in ("1", "2"):
        log.move(registry, "m", "production", version, kind="promote", actor="a", reason="r")
    now = datetime.now(UTC)
    with log.engine.begin() as connection:
        connection.execute(
            insert(Prediction),
            [
                {
                    "id": "p1",
                    "created_at": now,
                    "model": "m",
                    "version": "2",
                    "text": "fine",
                    "text_sha256": "0" * 64,
                    "label": "a",
                    "probabilities": {"a": 1.0},
                    "latency_ms": 1.0,
                }
            ],
        )
        connection.execute(
            insert(Feedback), [{"prediction_id": "p1", "label": "a", "created_at": now}]
        )
        connection.execute(
            insert(MonitorRun),
            [
                {
                    "model": "m",
                    "version": "2",
                    "window_start": now,
                    "window_end": now,
                    "predictions": 1,
                    "labelled": 1,
                    "degraded": False,
                    "report": {},
                    "created_at": now,
                }
            ],
        )
        connection.execute(
            insert(RetentionRun),
            [
                {
                    "cutoff": now,
                    "predictions_deleted": 0,
                    "feedback_deleted": 0,
                    "actor": "a",
                    "ran_at": now,
                }
            ],
        )
        pd.DataFrame({"text": ["kept", "as is"]}).to_sql(USER_TABLE, connection, index=False)
    log.engine.dispose()
    return url


def snapshot(url: str) -> dict[str, list[str]]:
    """Every table's rows (as text, sorted)."""
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            quote = connection.dialect.identifier_preparer.quote
            return {
                table: sorted(map(repr, connection.execute(text(f"SELECT * FROM {quote(table)}"))))
                for table in inspect(connection).get_table_names()
            }
    finally:
        engine.dispose()


@pytest.fixture
def home(database, tmp_path, monkeypatch):
    """MODELYARD_HOME on `database`, with an input, an existing output file and a directory."""
    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path))
    monkeypatch.setenv("MODELYARD_DATABASE_URL", database)
    monkeypatch.chdir(tmp_path)
    pd.DataFrame({"text": ["good", "bad"]}).to_csv(tmp_path / "in.csv", index=False)
    (tmp_path / USER_FILE).write_bytes(b"text,label\nmine,keep\n")
    (tmp_path / A_DIRECTORY).mkdir()
    return tmp_path


def _cli(home: Path, output: str, replace: bool) -> str:
    from modelyard.cli import app

    result = CliRunner().invoke(
        app,
        [
            "predict",
            "--params",
            str(REPO / "params.yaml"),
            "--input",
            str(home / "in.csv"),
            "--output",
            output,
            *(["--replace"] if replace else []),
        ],
    )
    assert result.exit_code == 1, result.output
    return " ".join(result.output.split())


def _flow(home: Path, output: str, replace: bool) -> str:
    """The flow's own body (as a deployment runs it), without a Prefect server."""
    from flows.batch_predict import batch_predict

    with pytest.raises(BatchError) as refused:
        batch_predict.fn(
            input=str(home / "in.csv"),
            output=output,
            params_path=str(REPO / "params.yaml"),
            replace=replace,
        )
    return str(refused.value)


PLATFORM = sorted(platform_tables())
CASES = [
    (f"{SQL}{table}", replace, "is one of the platform's own tables")
    for table in PLATFORM
    for replace in (False, True)
] + [
    (f"{SQL}{PLATFORM[0].upper()}", True, "is one of the platform's own tables"),
    (f"{SQL}{TEMPORARY_PREFIX}x", True, "reserved"),
    (f"{SQL}{USER_TABLE}", False, f"output table '{USER_TABLE}' already exists"),
    (USER_FILE, False, f"output {USER_FILE} already exists"),
    (A_DIRECTORY, True, "is a directory"),
]


def test_the_platform_tables_come_from_the_schema():
    assert {
        "alias_moves",
        "predictions",
        "feedback",
        "monitor_runs",
        "retention_runs",
        "alembic_version",
    } <= set(PLATFORM)


@pytest.mark.parametrize("write", [_cli, _flow], ids=["predict", "batch-predict-flow"])
@pytest.mark.parametrize("output, replace, reason", CASES)
def test_every_writer_refuses_and_nothing_stored_changes(
    home, database, write, output, replace, reason
):
    before, file_before = snapshot(database), (home / USER_FILE).read_bytes()
    message = write(home, output, replace)
    assert reason in message, message
    if "already exists" in reason:
        assert "--replace" in message  # the refusal names its fix
    assert snapshot(database) == before
    assert (home / USER_FILE).read_bytes() == file_before
    assert not list(home.glob("*.parts")) and not (home / ".modelyard").exists()


def test_the_refusal_comes_before_prefect_or_a_model(home, database):
    """`modelyard predict` as a user runs it: refused with exit 1, having imported neither
    Prefect nor MLflow nor torch."""
    code = (
        "import sys\n"
        "from modelyard.cli import app\n"
        "try:\n"
        f"    app(['predict', '--params', {str(REPO / 'params.yaml')!r}, '--input', 'in.csv',"
        " '--output', 'sql:alias_moves', '--replace'])\n"
        "except SystemExit as exit:\n"
        "    print('exit', exit.code)\n"
        "print('loaded', sorted(m for m in ('prefect', 'mlflow', 'torch') if m in "
        "sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=home,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"},
    )
    assert done.stdout.split("\n")[:2] == ["exit 1", "loaded []"], done.stdout + done.stderr
    assert "'alias_moves' is one of the platform's own tables" in " ".join(done.stderr.split())


def _parts(directory: Path, rows: int) -> Path:
    """Scored parts as score_chunks leaves them, two chunks."""
    directory.mkdir(parents=True)
    frame = pd.DataFrame({"text": [f"t{i}" for i in range(rows)], "label": "a"})
    half = rows // 2
    frame.iloc[:half].to_parquet(directory / "part-000000.parquet", index=False)
    frame.iloc[half:].to_parquet(directory / "part-000001.parquet", index=False)
    return directory


def test_a_file_that_appears_during_the_run_is_kept_and_the_parts_stay(tmp_path):
    output = tmp_path / "out.jsonl"
    parts = _parts(tmp_path / "out.jsonl.parts", 6)
    output.write_bytes(b"written meanwhile\n")
    with pytest.raises(BatchError, match="already exists: pass --replace"):
        finish(parts, str(output), "sqlite://")
    assert output.read_bytes() == b"written meanwhile\n"
    assert len(list(parts.glob("part-*"))) == 2  # a re-run with --replace resumes them
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl", "out.jsonl.parts"]
    assert finish(parts, str(output), "sqlite://", replace=True) == 6
    assert len(pd.read_json(output, lines=True)) == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


def test_a_table_is_swapped_in_atomically_or_not_at_all(database, tmp_path, monkeypatch):
    """A write that dies half-way leaves the old table as it was and no temporary table; a
    table that appeared meanwhile is kept unless replacing; with replace, one swap."""
    from sqlalchemy import create_engine

    table = f"swapped_{tmp_path.name[-8:].lower()}".replace("-", "_")  # the test's own
    engine = create_engine(database)
    with engine.begin() as connection:
        pd.DataFrame({"text": ["appeared", "meanwhile"]}).to_sql(table, connection, index=False)
    engine.dispose()
    before = snapshot(database)
    parts = _parts(tmp_path / "parts", 8)
    with pytest.raises(BatchError, match=f"'{table}' already exists"):
        finish(parts, f"{SQL}{table}", database)
    for platform_table in PLATFORM:
        with pytest.raises(BatchError, match="platform's own tables"):
            finish(parts, f"{SQL}{platform_table}", database, replace=True)

    original = pd.DataFrame.to_sql

    def dies_after_writing(self, *args, **kwargs):
        original(self, *args, **kwargs)
        raise RuntimeError("power cut")

    monkeypatch.setattr(pd.DataFrame, "to_sql", dies_after_writing)
    with pytest.raises(RuntimeError, match="power cut"):
        finish(parts, f"{SQL}{table}", database, replace=True)
    monkeypatch.undo()
    assert snapshot(database) == before  # no temporary table either

    assert finish(parts, f"{SQL}{table}", database, replace=True) == 8
    after = snapshot(database)
    assert len(after[table]) == 8 and not parts.exists()
    assert {k: v for k, v in after.items() if k != table} == {
        k: v for k, v in before.items() if k != table
    }

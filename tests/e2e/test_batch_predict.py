"""The batch-predict flow and `modelyard predict` on a real registry: files and SQL tables in
and out, a run crashed mid-way resumed without redoing written chunks (and with the version it
started with, though production moved meanwhile), bad input refused before any work."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from tests.helpers.models import TINY_LABELS as LABELS
from tests.helpers.models import TINY_TEXTS as TEXTS
from tests.helpers.stores import copy_home

pytestmark = pytest.mark.slow

NAME = "batch-model"


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    """MODELYARD_HOME with two registered tiny versions, production → 1 (built once)."""
    from modelyard.config import load_params
    from modelyard.registry.mlflow_registry import MlflowRegistry
    from tests.helpers.models import register_tiny_versions
    from tests.helpers.paths import REPO

    home = tmp_path_factory.mktemp("batch-home")
    registry = MlflowRegistry(
        f"sqlite:///{home}/mlflow.db", "modelyard", (home / "mlruns").as_uri()
    )
    register_tiny_versions(registry, NAME, home)
    params = load_params(REPO / "params.yaml").updated({"model.name": NAME})
    (home / "params.yaml").write_text(yaml.safe_dump(params.model_dump(mode="json")))
    rows = pd.DataFrame({"id": range(95), "text": [f"{TEXTS[i % 3]} #{i}" for i in range(95)]})
    rows.to_csv(home / "in.csv", index=False)
    return home


@pytest.fixture
def home(registered, tmp_path):
    """A copy of it for each test: tests move production and write outputs into it. (Its own
    MonkeyPatch: a test's `monkeypatch.undo()` keeps it.)"""
    copy = copy_home(registered, tmp_path / "home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODELYARD_HOME", str(copy))
        yield copy


def _predict(home, *args: str):
    from modelyard.cli import app

    result = CliRunner().invoke(app, ["predict", "--params", str(home / "params.yaml"), *args])
    return result.exit_code, " ".join(result.output.split())


def test_crashed_batch_resumes_without_redoing_chunks(prefect_api, home, monkeypatch):
    import tasks.batch
    from flows.batch_predict import batch_predict
    from modelyard.registry.mlflow_registry import MlflowRegistry

    scored: list[int] = []
    crash = [True]
    original = tasks.batch.score_chunks

    def recording(classifier, frame, manifest, parts, batch_size, on_chunk):
        """Records the chunks actually scored; the first run dies after its third."""

        def counting(index, rows, skipped):
            on_chunk(index, rows, skipped)
            if not skipped:
                scored.append(index)
                if crash[0] and len(scored) == 3:
                    raise RuntimeError("power cut")

        return original(classifier, frame, manifest, parts, batch_size, counting)

    out = home / "out.parquet"
    common = {
        "input": str(home / "in.csv"),
        "output": str(out),
        "params_path": str(home / "params.yaml"),
        "chunk_rows": 10,
    }
    monkeypatch.setattr(tasks.batch, "score_chunks", recording)
    with pytest.raises(RuntimeError, match="power cut"):
        batch_predict(**common)
    assert not out.exists() and len(list((home / "out.parquet.parts").glob("part-*"))) == 3

    scored.clear()
    crash[0] = False
    MlflowRegistry(f"sqlite:///{home}/mlflow.db", "modelyard").set_alias(NAME, "production", "2")
    result = batch_predict(**common)
    assert result["chunks_resumed"] == 3 and result["version"] == "1"  # pinned by the manifest
    assert scored == list(range(3, 10))  # chunks 0-2 were not redone
    frame = pd.read_parquet(out)
    assert len(frame) == 95 and list(frame["id"]) == list(range(95))
    assert set(frame["model_version"]) == {"1"} and set(frame["label"]) <= set(LABELS)
    assert not (home / "out.parquet.parts").exists()

    fresh = home / "fresh.parquet"
    batch_predict(**{**common, "output": str(fresh), "version": "1"})
    pd.testing.assert_frame_equal(frame, pd.read_parquet(fresh))


def test_cli_files_and_sql_tables(prefect_api, home):
    from sqlalchemy import create_engine

    from modelyard.registry.mlflow_registry import MlflowRegistry

    code, out = _predict(
        home, "--input", str(home / "in.csv"), "--output", str(home / "out.jsonl"), "--version", "2"
    )
    assert code == 0 and "95 rows scored by batch-model version 2" in out, out
    scored = pd.read_json(home / "out.jsonl", lines=True)
    assert {"label", "prob_negative", "prob_neutral", "prob_positive", "model_version"} <= set(
        scored.columns
    )

    engine = create_engine(f"sqlite:///{home}/modelyard.db")
    pd.read_csv(home / "in.csv").to_sql("incoming", engine, index=False)
    MlflowRegistry(f"sqlite:///{home}/mlflow.db", "modelyard").set_alias(NAME, "production", "2")
    code, out = _predict(home, "--input", "sql:incoming", "--output", "sql:scored")
    assert code == 0, out
    table = pd.read_sql_table("scored", engine)
    assert len(table) == 95 and set(table["model_version"]) == {"2"}  # production, unpinned
    engine.dispose()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--input", "missing.csv", "--output", "o.csv"], "missing.csv does not exist"),
        (["--input", "{home}/in.csv", "--output", "o.xlsx"], "the suffix must be one of"),
        (
            ["--input", "{home}/in.csv", "--output", "o.csv", "--text-column", "body"],
            "has no column 'body' (columns: ['id', 'text'])",
        ),
        (["--input", "sql:nope", "--output", "o.csv"], "input table 'nope' is not in"),
        (
            ["--input", "{home}/in.csv", "--output", "o.csv", "--alias", "nowhere"],
            "batch-model@nowhere does not exist",
        ),
    ],
)
def test_bad_input_is_refused_with_the_reason(prefect_api, home, args, message, tmp_path):
    code, out = _predict(home, *[a.format(home=home) for a in args])
    assert code == 1 and message in out, out
    assert not (tmp_path / "o.csv").exists()


def test_an_existing_output_is_replaced_only_when_asked(prefect_api, home):
    """A file or table that exists is refused (bytes and rows unchanged) and replaced, whole,
    with --replace; the audit trail is refused even to the flow with replace=True."""
    from sqlalchemy import inspect

    from flows.batch_predict import batch_predict
    from modelyard.adapters.batch import TEMPORARY_PREFIX, BatchError
    from modelyard.store.db import engine_for

    kept = home / "kept.csv"
    kept.write_bytes(b"text\nmine\n")
    engine = engine_for(f"sqlite:///{home}/modelyard.db")  # the platform's tables exist
    pd.DataFrame({"text": ["mine"]}).to_sql("kept", engine, index=False)
    for output in (str(kept), "sql:kept"):
        code, out = _predict(home, "--input", str(home / "in.csv"), "--output", output)
        assert code == 1 and "already exists" in out and "--replace" in out, out
        code, out = _predict(home, "--input", str(home / "in.csv"), "--output", output, "--replace")
        assert code == 0 and "95 rows scored" in out, out
    assert len(pd.read_csv(kept)) == 95 and len(pd.read_sql_table("kept", engine)) == 95
    assert not [p for p in home.iterdir() if p.name.startswith(".kept.csv")]  # no temp file
    assert not [t for t in inspect(engine).get_table_names() if t.startswith(TEMPORARY_PREFIX)]

    moves = pd.read_sql_table("alias_moves", engine)
    with pytest.raises(BatchError, match="'alias_moves' is one of the platform's own tables"):
        batch_predict(
            input=str(home / "in.csv"),
            output="sql:alias_moves",
            params_path=str(home / "params.yaml"),
            replace=True,
        )
    pd.testing.assert_frame_equal(pd.read_sql_table("alias_moves", engine), moves)
    engine.dispose()


def test_an_output_that_appears_mid_run_is_kept_and_the_run_resumes(prefect_api, home, monkeypatch):
    """Someone writes the output file while the batch is scoring: the finished run refuses to
    clobber it and keeps its parts; the same command with --replace resumes every chunk."""
    import tasks.batch
    from flows.batch_predict import batch_predict
    from modelyard.adapters.batch import BatchError

    out = home / "racing.parquet"
    original = tasks.batch.score_chunks

    def then_someone_writes(*args, **kwargs):
        done = original(*args, **kwargs)
        out.write_bytes(b"theirs")
        return done

    common = {
        "input": str(home / "in.csv"),
        "output": str(out),
        "params_path": str(home / "params.yaml"),
        "chunk_rows": 40,
    }
    monkeypatch.setattr(tasks.batch, "score_chunks", then_someone_writes)
    with pytest.raises(BatchError, match="racing.parquet already exists: pass --replace"):
        batch_predict(**common)
    monkeypatch.undo()
    assert out.read_bytes() == b"theirs"
    assert len(list((home / "racing.parquet.parts").glob("part-*"))) == 3
    result = batch_predict(**common, replace=True)
    assert result["chunks_resumed"] == 3 and len(pd.read_parquet(out)) == 95


def test_serve_command_serves_production(home):
    """`modelyard serve` as a user starts it: its own process, the project's settings."""
    import os
    import subprocess
    import sys
    import time

    import httpx

    from tests.helpers.servers import free_port

    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "modelyard",
            "serve",
            "--params",
            str(home / "params.yaml"),
            "--port",
            str(port),
        ],
        env={**os.environ, "MODELYARD_HOME": str(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stderr.read()[-3000:]
            assert time.monotonic() < deadline, "not ready within 120 s"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        meta = httpx.get(f"http://127.0.0.1:{port}/metadata").json()
        assert meta["model"] == NAME and meta["alias"] == "production"
        answer = httpx.post(f"http://127.0.0.1:{port}/predict", json={"text": "superb"}).json()
        assert answer["model_version"] == meta["version"]
        from modelyard.cli.demo import send

        answered, stored = send(f"http://127.0.0.1:{port}", 48, True, 0.5)  # the README demo
        assert answered == 48 and 0 < stored < 48
    finally:
        server.terminate()
        server.wait(30)

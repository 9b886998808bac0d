"""The audit trail on SQLite and on PostgreSQL: Alembic up and down, moves, history, what was
serving when, rollback; and the `modelyard models` commands over a real MLflow registry."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from modelyard.store import db
from modelyard.store.audit import AuditLog
from tests.helpers.postgres import fresh_database
from tests.helpers.registry import FakeRegistry
from tests.helpers.wait import wait_until


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/modelyard.db"
        return
    with fresh_database() as url:
        yield url


def tables(url: str) -> set[str]:
    from sqlalchemy import create_engine, inspect

    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


ALL_TABLES = {"alias_moves", "predictions", "feedback", "monitor_runs", "retention_runs"}


def test_alembic_upgrade_and_downgrade(url):
    db.upgrade(url)
    assert tables(url) >= ALL_TABLES
    db.downgrade(url)
    assert not ALL_TABLES & tables(url)
    db.upgrade(url)
    assert tables(url) >= ALL_TABLES


def test_the_audit_trail_is_append_only_in_the_database(url):
    """Raw SQL, not just our code: UPDATE and DELETE on alias_moves abort (and TRUNCATE on
    PostgreSQL); inserting still works; downgrading below 0005 lifts it, upgrading restores it."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import DBAPIError

    log, registry = AuditLog.from_url(url), FakeRegistry()
    log.move(registry, "m", "production", "1", kind="promote", actor="a", reason="first")
    engine = create_engine(url)
    rewrites = [
        "UPDATE alias_moves SET reason = 'rewritten'",
        "DELETE FROM alias_moves",
        *(["TRUNCATE alias_moves"] if engine.dialect.name == "postgresql" else []),
    ]

    def refused(statement: str) -> bool:
        try:
            with engine.begin() as connection:
                connection.execute(text(statement))
        except DBAPIError as error:
            assert "alias_moves is append-only" in str(error)
            return True
        return False

    assert [refused(statement) for statement in rewrites] == [True] * len(rewrites)
    log.move(registry, "m", "production", "2", kind="promote", actor="a", reason="second")
    assert [(m.to_version, m.reason) for m in log.history("m")] == [("1", "first"), ("2", "second")]
    db.downgrade(url, "0004")
    assert refused("UPDATE alias_moves SET reason = 'x' WHERE to_version = '2'") is False
    db.upgrade(url)
    assert refused("DELETE FROM alias_moves") is True
    engine.dispose()
    log.engine.dispose()


def _after(instant: datetime) -> datetime:
    """The clock's first reading later than `instant` (its resolution is finite: two readings
    in a row may be equal)."""
    return wait_until(
        lambda: (now := datetime.now(UTC)) > instant and now,
        f"the clock never passed {instant}",
        timeout_s=10,
        interval_s=0.001,
    )


def test_moves_history_serving_at_and_rollback_target(url):
    log, registry = AuditLog.from_url(url), FakeRegistry()
    first = log.move(
        registry,
        "m",
        "production",
        "1",
        kind="promote",
        actor="flow-run:a",
        reason="first",
        gate_report="mlflow-run:r1/gate/decision.md",
    )
    assert first is not None and first.from_version is None
    assert (
        log.move(
            registry, "m", "production", "1", kind="promote", actor="flow-run:a", reason="retried"
        )
        is None
    )  # a retry: no second row
    between = datetime.now(UTC)
    _after(between)  # the next move is stamped later than `between`
    log.move(registry, "m", "production", "2", kind="promote", actor="flow-run:b", reason="better")
    log.move(registry, "m", "staging", "3", kind="promote", actor="flow-run:c", reason="staged")
    assert [(m.alias, m.from_version, m.to_version) for m in log.history("m")] == [
        ("production", None, "1"),
        ("production", "1", "2"),
        ("staging", None, "3"),
    ]
    assert log.serving_at("m", between) == "1"
    assert log.serving_at("m", datetime.now(UTC)) == "2"
    assert log.serving_at("m", datetime(2000, 1, 1, tzinfo=UTC)) is None
    assert log.rollback_target("m", "2") == "1"
    log.move(registry, "m", "production", "1", kind="rollback", actor="user:x", reason="bad")
    assert log.rollback_target("m", "1") is None  # v1 replaced nothing: the end of the line
    log.engine.dispose()


def test_a_failed_registry_move_writes_no_row(url):
    class Broken(FakeRegistry):
        def set_alias(self, name: str, alias: str, version: str) -> None:
            raise RuntimeError("registry unreachable")

    log = AuditLog.from_url(url)
    with pytest.raises(RuntimeError, match="unreachable"):
        log.move(Broken(), "m", "production", "1", kind="promote", actor="a", reason="r")
    assert log.history("m") == []
    log.engine.dispose()


def test_a_move_lost_between_registry_and_row_is_recorded_by_the_retry(url):
    """The mover died after the registry moved and before its row committed: the retry finds
    the alias already there and writes the missing row, once."""
    log, registry = AuditLog.from_url(url), FakeRegistry()
    log.move(registry, "m", "production", "1", kind="promote", actor="a", reason="first")
    registry.set_alias("m", "production", "2")  # moved; the row never made it
    retried = log.move(registry, "m", "production", "2", kind="promote", actor="b", reason="better")
    assert retried is not None and (retried.from_version, retried.to_version) == ("1", "2")
    assert "recorded on retry" in retried.reason
    assert (
        log.move(registry, "m", "production", "2", kind="promote", actor="b", reason="better")
        is None
    )
    assert [(m.from_version, m.to_version) for m in log.history("m")] == [(None, "1"), ("1", "2")]
    log.engine.dispose()


def test_promotion_lock_is_exclusive_per_model(url):
    """Two holders of the same model's lock never overlap; another model's lock is free."""
    import threading

    from modelyard.store.lock import LockTimeout

    log = AuditLog.from_url(url)
    other = AuditLog.from_url(url)  # another engine: as another process would have
    inside, release, events = threading.Event(), threading.Event(), []

    def hold() -> None:
        with log.promotion_lock("m"):
            events.append("first in")
            inside.set()
            assert release.wait(60)  # held until the checks below are done
            events.append("first out")

    def second() -> None:
        with other.promotion_lock("m", timeout_s=60):
            events.append("second in")

    holder = threading.Thread(target=hold)
    holder.start()
    assert inside.wait(60)
    with (
        pytest.raises(LockTimeout, match="another promotion of this model"),
        other.promotion_lock("m", timeout_s=0.3),
    ):
        pass
    with other.promotion_lock("n", timeout_s=0.3):
        events.append("other model")
    waiter = threading.Thread(target=second)  # asks while the first still holds it
    waiter.start()
    release.set()
    holder.join(60)
    waiter.join(60)
    assert events == ["first in", "other model", "first out", "second in"]
    log.engine.dispose()
    other.engine.dispose()


def test_a_killed_holder_releases_the_promotion_lock(url, tmp_path):
    """SIGKILL leaves no stale lock: the kernel (flock) or the server (advisory lock, session
    gone) releases it."""
    import signal
    import subprocess
    import sys

    code = (
        "import sys, time\n"
        "from modelyard.store.audit import AuditLog\n"
        f"log = AuditLog.from_url({url!r})\n"
        "with log.promotion_lock('m'):\n"
        "    print('locked', flush=True)\n"
        "    time.sleep(600)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    assert child.stdout.readline().strip() == "locked"
    from modelyard.store.lock import LockTimeout

    log = AuditLog.from_url(url)
    with pytest.raises(LockTimeout), log.promotion_lock("m", timeout_s=0.3):
        pass
    child.send_signal(signal.SIGKILL)
    child.wait()
    with log.promotion_lock("m", timeout_s=10):
        pass
    log.engine.dispose()


def test_models_commands(tmp_path, monkeypatch):
    from mlflow import MlflowClient
    from typer.testing import CliRunner

    from modelyard.cli import app

    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")  # rich tables as wide as a real terminal's
    uri = f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model("reviews")
    source = tmp_path / "artifacts"
    source.mkdir()
    for _number, tags in ((1, {}), (2, {}), (3, {"rejected": "true"})):
        client.create_model_version("reviews", str(source), tags={"dataset_md5": "abc", **tags})
    runner = CliRunner()

    def run(*args: str):
        result = runner.invoke(app, ["models", *args])
        return result.exit_code, " ".join(result.output.split())

    assert run("promote", "reviews", "1", "--reason", "first model")[0] == 0
    before_two = datetime.now(UTC)
    _after(before_two)  # the next move is stamped later than `before_two`
    assert run("promote", "reviews", "2")[0] == 0
    code, out = run("promote", "reviews", "3")
    assert code == 1 and "the gate rejected it" in out
    listed = [word for word in run("list")[1].split() if word not in "│┃"]
    assert listed[-4:] == ["reviews", "3", "—", "2"]

    code, out = run("rollback", "reviews", "--reason", "latency regression")
    assert code == 0 and "version 2 -> 1" in out
    assert client.get_model_version_by_alias("reviews", "production").version in (1, "1")
    code, out = run("history", "reviews")
    assert code == 0 and "rollback" in out and "latency regression" in out
    assert out.count("production") == 3
    assert run("history", "reviews", "--at", before_two.isoformat())[1].endswith("version 1")
    code, out = run("rollback", "reviews")
    assert code == 1 and "replaced nothing in the audit trail" in out
    code, out = run("show", "reviews", "2")
    assert code == 0 and "dataset_md5 abc" in out


def test_retention_deletes_exactly_the_old_rows_and_records_it(url):
    from datetime import timedelta

    from sqlalchemy import func, insert, select

    from modelyard.store.db import engine_for
    from modelyard.store.models import Feedback, Prediction, RetentionRun
    from modelyard.store.retention import purge

    now = datetime.now(UTC)
    ages = {"old": 40, "edge-old": 30.01, "edge-new": 29.99, "new": 1}  # days
    engine = engine_for(url)
    with engine.begin() as connection:
        connection.execute(
            insert(Prediction),
            [
                {
                    "id": name,
                    "created_at": now - timedelta(days=age),
                    "model": "m",
                    "version": "1",
                    "text": None,
                    "text_sha256": "0" * 64,
                    "label": "a",
                    "probabilities": {"a": 1.0},
                    "latency_ms": 1.0,
                }
                for name, age in ages.items()
            ],
        )
        connection.execute(
            insert(Feedback),
            [
                {"prediction_id": name, "label": "a", "created_at": now - timedelta(days=age)}
                for name, age in ages.items()
            ],
        )
    done = purge(url, 30, "user:tester", now)
    assert (done.predictions, done.feedback) == (2, 2)
    with engine.connect() as connection:
        left = set(connection.scalars(select(Prediction.id)))
        feedback_left = set(connection.scalars(select(Feedback.prediction_id)))
        runs = connection.execute(
            select(
                RetentionRun.predictions_deleted, RetentionRun.feedback_deleted, RetentionRun.actor
            )
        ).all()
        assert connection.scalar(select(func.count()).select_from(RetentionRun)) == 1
    engine.dispose()
    assert left == feedback_left == {"edge-new", "new"}
    assert [tuple(r) for r in runs] == [(2, 2, "user:tester")]

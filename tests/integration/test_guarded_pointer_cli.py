"""The guarded production pointer over a real MLflow registry (SQLite store in a temporary home)
and the real audit trail, through the CLI: approvers, `--as`, refusals audited, a move made
outside ModelYard named by `models show` and `doctor`, adopted or put back by an approver."""

from __future__ import annotations

import pytest

NAME = "guarded"


@pytest.fixture
def store(tmp_path, monkeypatch):
    """Versions 1-3; production moved to 1 by ann (an approver); params name ann and cy."""
    from mlflow import MlflowClient
    from typer.testing import CliRunner

    from modelyard.cli import app
    from modelyard.store.audit import AuditLog

    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    params = tmp_path / "params.yaml"
    params.write_text("promotion:\n  approvers: [ann, cy]\n")
    uri = f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model(NAME)
    source = tmp_path / "artifacts"
    source.mkdir()
    for _ in range(3):
        client.create_model_version(NAME, str(source), tags={"dataset_md5": "abc"})
    runner = CliRunner()

    guarded = {"promote", "rollback", "approve", "reject"}

    def run(*args: str) -> tuple[int, str]:
        """`modelyard ARGS` (with the params file where the command reads approvers)."""
        extra = ["--params", str(params)] if args[0] == "models" and args[1] in guarded else []
        result = runner.invoke(app, [*args, *extra])
        return result.exit_code, " ".join(result.output.split())

    assert run("models", "promote", NAME, "1", "--as", "ann")[0] == 0
    audit = AuditLog.from_url(f"sqlite:///{tmp_path.resolve()}/modelyard.db")
    yield run, client, audit
    audit.engine.dispose()


def production(client) -> str:
    return str(client.get_model_version_by_alias(NAME, "production").version)


def test_an_approver_moves_production_and_is_named(store):
    run, client, audit = store
    code, out = run("models", "promote", NAME, "2", "--as", "cy", "--reason", "better")
    assert code == 0 and "version 1 -> 2" in out, out
    assert production(client) == "2"
    last = audit.latest(NAME, "production")
    assert (last.kind, last.from_version, last.to_version, last.actor) == (
        "manual",
        "1",
        "2",
        "user:cy",
    )


def test_anyone_else_is_refused_nothing_moves_and_the_refusal_is_audited(store):
    run, client, audit = store
    for command, what in [
        (("promote", NAME, "2"), "promote"),
        (("rollback", NAME, "--to", "2"), "roll back"),
    ]:
        before = len(audit.history(NAME))
        code, out = run("models", *command, "--as", "bob")
        assert code == 1 and "Traceback" not in out
        assert f"{NAME}@production stays at version 1: bob may not" in out
        assert "promotion.approvers allows only ann, cy" in out and "(refusal audited)" in out
        assert production(client) == "1"
        history = audit.history(NAME)
        assert len(history) == before + 1
        note = history[-1]
        assert (note.kind, note.from_version, note.to_version, note.actor) == (
            "refused",
            "1",
            "1",
            "user:bob",
        )
        assert note.reason.startswith(f"refused: bob may not {what}")
    code, out = run("models", "approve", NAME, "2", "--as", "dee")
    assert code == 1 and f"dee may not approve {NAME} version 2" in out, out
    assert audit.latest(NAME, "production").actor == "user:dee"


def _monitored(client, audit, monkeypatch):
    """The monitor flow's (version to watch, note) for production."""
    import logging

    import tasks.monitor
    from modelyard.registry.mlflow_registry import MlflowRegistry

    monkeypatch.setattr(tasks.monitor, "get_run_logger", lambda: logging.getLogger("test"))
    registry = MlflowRegistry(client.tracking_uri, "modelyard")
    return tasks.monitor.served_version.fn(registry, str(audit.engine.url), NAME, "production")


def test_a_move_outside_modelyard_is_named_then_adopted_or_put_back(store, monkeypatch):
    run, client, audit = store
    client.set_registered_model_alias(NAME, "production", "3")  # the MLflow UI/API
    said = (
        f"{NAME}@production points at version 3 but the audit trail's last move says version 1: "
        "moved outside ModelYard (MLflow UI/API)"
    )
    code, out = run("models", "show", NAME, "3")
    assert code == 0 and said in out, out
    code, out = run("doctor")
    assert "production pointer" in out and "FAIL" in out and "moved outside ModelYard" in out
    assert _monitored(client, audit, monkeypatch) == ("1", said)  # what the servers serve

    code, out = run("models", "rollback", NAME, "--as", "ann")  # back to the recorded version
    assert code == 0 and "version 3 -> 1" in out, out
    assert production(client) == "1" and audit.latest(NAME, "production").to_version == "1"

    client.set_registered_model_alias(NAME, "production", "3")
    code, out = run("models", "promote", NAME, "3", "--as", "cy", "--reason", "hotfix")
    assert code == 0 and "version 1 -> 3" in out, out
    last = audit.latest(NAME, "production")
    assert (last.from_version, last.to_version, last.actor) == ("1", "3", "user:cy")
    assert "adopts a move made outside ModelYard" in last.reason
    code, out = run("models", "show", NAME, "3")
    assert "moved outside ModelYard" not in out

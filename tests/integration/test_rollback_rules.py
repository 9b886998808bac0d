"""`models rollback` and `models promote` go through the promotion rules, over a real MLflow
registry (SQLite store in a temporary home) and the real audit trail."""

from __future__ import annotations

import pytest

NAME = "reviews"
GATE_REPORT = "REJECT\nFAIL no_regression: accuracy 0.80 vs production 0.85"
TAGS = {
    "1": {},
    "2": {},
    "3": {"rejected": "true", "gate_decision": "reject", "gate_report": GATE_REPORT},
    "4": {"deploy": "failed", "deploy_error": "http://s:8000: still reports version 2"},
}


@pytest.fixture
def store(tmp_path, monkeypatch):
    """Versions 1-4 (3 rejected by the gate, 4 failed deployment); production moved 1 -> 2
    through the CLI, so the trail holds two rows."""
    from mlflow import MlflowClient
    from typer.testing import CliRunner

    from modelyard.cli import app
    from modelyard.store.audit import AuditLog

    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path))
    uri = f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model(NAME)
    source = tmp_path / "artifacts"
    source.mkdir()
    for tags in TAGS.values():
        client.create_model_version(NAME, str(source), tags={"dataset_md5": "abc", **tags})
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, ["models", *args])
        return result.exit_code, " ".join(result.output.split())

    assert run("promote", NAME, "1", "--reason", "first")[0] == 0
    assert run("promote", NAME, "2", "--reason", "second")[0] == 0
    audit = AuditLog.from_url(f"sqlite:///{tmp_path.resolve()}/modelyard.db")
    yield run, client, audit
    audit.engine.dispose()


def production(client) -> str:
    return str(client.get_model_version_by_alias(NAME, "production").version)


@pytest.mark.parametrize(
    "target, words",
    [
        ("3", ["the gate rejected it", "no_regression: accuracy 0.80 vs production 0.85"]),
        ("4", ["its deployment failed", "still reports version 2"]),
    ],
)
def test_rollback_refuses_rejected_and_failed_versions(store, target, words):
    run, client, audit = store
    code, out = run("rollback", NAME, "--to", target)
    assert code == 1
    for word in [
        f"{NAME}@production stays at version 2",
        f"version {target} may not take",
        *words,
        "--force --reason",
    ]:
        assert word in out
    assert "Traceback" not in out
    assert production(client) == "2" and len(audit.history(NAME)) == 2


def test_force_needs_a_reason_and_is_audited_as_forced(store):
    run, client, audit = store
    code, out = run("rollback", NAME, "--to", "3", "--force")
    assert code == 1 and "needs --reason" in out
    assert production(client) == "2" and len(audit.history(NAME)) == 2

    code, out = run("rollback", NAME, "--to", "3", "--force", "--reason", "v2 leaks addresses")
    assert code == 0, out
    assert f"{NAME}@production rolled back: version 2 -> 3" in out and "FORCED" in out
    assert production(client) == "3"
    last = audit.history(NAME)[-1]
    assert (last.kind, last.from_version, last.to_version) == ("rollback", "2", "3")
    assert last.reason.startswith("FORCED over: the gate rejected it")
    assert last.reason.endswith("reason: v2 leaks addresses")


def test_a_rollback_to_where_production_is_says_so_and_changes_nothing(store):
    run, client, audit = store
    for extra in ([], ["--force", "--reason", "again"]):
        code, out = run("rollback", NAME, "--to", "2", *extra)
        assert (
            code == 0
            and out == f"{NAME}@production is already version 2: nothing moved, nothing audited"
        )
    assert production(client) == "2" and len(audit.history(NAME)) == 2


def test_messages_name_exactly_the_versions_moved(store):
    run, _client, audit = store
    code, out = run("rollback", NAME, "--reason", "latency regression")
    assert code == 0 and out == f"{NAME}@production rolled back: version 2 -> 1"
    last = audit.history(NAME)[-1]
    assert (last.from_version, last.to_version, last.reason) == ("2", "1", "latency regression")
    code, out = run("promote", NAME, "2")
    assert code == 0 and out == f"{NAME}@production moved: version 1 -> 2"
    assert audit.history(NAME)[-1].reason == "manual promotion"


def test_the_default_target_obeys_the_rules_too(store):
    run, _client, audit = store
    assert run("promote", NAME, "4", "--force", "--reason", "hotfix, servers fixed")[0] == 0
    assert run("rollback", NAME, "--to", "2")[0] == 0  # 4 -> 2
    # Rolling back from 2 goes to what 2 replaced when it was promoted: version 1 (allowed).
    code, out = run("rollback", NAME)
    assert code == 0 and out.endswith("version 2 -> 1")
    assert len(audit.history(NAME)) == 5


def test_promote_shares_the_rules(store):
    run, client, audit = store
    code, out = run("promote", NAME, "3")
    assert code == 1 and "the gate rejected it" in out and production(client) == "2"
    code, out = run("promote", NAME, "4")
    assert code == 1 and "its deployment failed" in out
    # A failed deployment says nothing against staging, which serves no traffic.
    code, out = run("promote", NAME, "4", "--to", "staging")
    assert code == 0 and out == f"{NAME}@staging moved: version 4 (it named no version before)"
    code, out = run("promote", NAME, "2")
    assert code == 0 and "already version 2: nothing moved" in out
    code, out = run("promote", NAME, "7")
    assert code == 1 and f"{NAME} has no version 7" in out
    assert len(audit.history(NAME)) == 3

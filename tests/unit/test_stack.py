"""Production mode's decisions, without a stack: whose databases are whose, what the worker and
the model server are given, what a shell is told."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from modelyard.config import Settings
from modelyard.orchestration.stack import (
    ADMIN_TOKEN_ENV,
    DEPLOY_SERVERS_ENV,
    OWNER_MARK,
    StackConfig,
    _terminate,
    commands,
    default_prefix,
    export_lines,
    ownership_conflicts,
)


def _config(tmp_path: Path, tiny_params, **changes) -> StackConfig:
    params = tmp_path / "params.yaml"
    params.write_text(
        yaml.safe_dump(tiny_params.updated({"model.name": "m"}).model_dump(mode="json"))
    )
    return StackConfig(
        root=tmp_path / "p" / ".modelyard" / "stack",
        project=tmp_path / "p",
        params=params,
        model_port=8123,
        **changes,
    )


def test_each_checkout_gets_database_names_of_its_own():
    first, second = default_prefix("/home/a/modelyard"), default_prefix("/home/b/modelyard")
    assert first != second and first.startswith("modelyard_modelyard_")
    assert first == default_prefix("/home/a/modelyard")  # stable: the same checkout, same names
    odd = default_prefix("/srv/My Project (copy)")
    assert odd.replace("_", "").isalnum() and odd.islower() and len(odd) < 63


def test_explicit_prefix_names_the_databases(tmp_path, tiny_params):
    config = _config(tmp_path, tiny_params, prefix="team")
    assert config.database_names() == {
        "prefect": "team_prefect",
        "mlflow": "team_mlflow",
        "platform": "team",
    }
    assert config.database("prefect", "asyncpg").endswith("@127.0.0.1:5432/team_prefect")
    assert config.owner == str((tmp_path / "p").resolve())


def test_only_the_owner_uses_existing_databases():
    mine, theirs = OWNER_MARK + "/a", OWNER_MARK + "/b"
    existing = {"x": mine, "y": theirs, "z": None, "w": "some other comment"}
    assert ownership_conflicts(["x", "new"], existing, "/a") == []
    problems = ownership_conflicts(["x", "y", "z", "w"], existing, "/a")
    assert problems[0] == "database y belongs to the stack of /b"
    assert all("records no owner" in p and "COMMENT ON DATABASE" in p for p in problems[1:])
    assert len(problems) == 3


def test_the_worker_checks_the_stack_server_with_the_token_the_server_has(tmp_path, tiny_params):
    config = _config(tmp_path, tiny_params, admin_token="s3cret")
    client = config.client_env()
    assert json.loads(client[DEPLOY_SERVERS_ENV]) == {"m": ["http://127.0.0.1:8123"]}
    assert ADMIN_TOKEN_ENV not in client  # printed to the terminal: never the token
    specs = commands(config)
    for service in ("worker", "model"):
        assert specs[service][1][ADMIN_TOKEN_ENV] == "s3cret"
        assert specs[service][1][DEPLOY_SERVERS_ENV] == client[DEPLOY_SERVERS_ENV]
    # What the flow run in the worker reads from that environment.
    settings = Settings(deploy_servers=json.loads(client[DEPLOY_SERVERS_ENV]))
    assert settings.servers_following("m", ("http://other:8000/",)) == [
        "http://other:8000",
        "http://127.0.0.1:8123",
    ]
    assert settings.servers_following("m", ("http://127.0.0.1:8123/",)) == ["http://127.0.0.1:8123"]
    assert settings.servers_following("another-model", ()) == []
    without_server = _config(tmp_path, tiny_params, services=("prefect", "mlflow", "worker"))
    assert DEPLOY_SERVERS_ENV not in without_server.client_env()


def test_export_lines_survive_a_shell(tmp_path, tiny_params):
    env = _config(tmp_path, tiny_params).client_env()
    script = "\n".join(export_lines(env)) + "\nprintf '%s' \"$" + DEPLOY_SERVERS_ENV + '"'
    shown = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    assert shown.stdout == env[DEPLOY_SERVERS_ENV]


def test_a_stopped_service_is_reaped():
    """The supervisor reaps what it stops: left a zombie, a service kept its process group alive
    and every `make down` waited out the whole grace, 15 s a service
    (bench/supervisor_compare.py)."""
    service = subprocess.Popen(["sleep", "600"], start_new_session=True)
    _terminate(service.pid, grace_s=600)
    with pytest.raises(ChildProcessError):
        os.waitpid(service.pid, os.WNOHANG)  # already reaped: no zombie is left

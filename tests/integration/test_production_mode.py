"""Production mode for real: the stack `make up` starts (a Prefect server on PostgreSQL, an
MLflow tracking server on PostgreSQL, a Prefect worker on a `process` pool, the model server),
the retrain flow deployed on that pool and triggered through the Prefect API, and the result
checked where a team would look: the model version and its alias on the MLflow server, its
audit row in PostgreSQL. Then `make down`, and nothing it started is left."""

from __future__ import annotations

import os
import uuid

import httpx
import pytest
import yaml

from tests.conftest import REPO, free_port

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture
def postgres():
    import psycopg

    try:
        psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test",
                        connect_timeout=3).close()
    except psycopg.OperationalError as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI promises PostgreSQL on 127.0.0.1:5432 but: {error}")
        pytest.skip(f"no PostgreSQL on 127.0.0.1:5432 ({error})")
    prefix = f"modelyard_t{uuid.uuid4().hex[:8]}"
    yield "postgresql://postgres@127.0.0.1:5432/test", prefix
    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test",
                         autocommit=True) as admin:
        for name in (prefix, f"{prefix}_prefect", f"{prefix}_mlflow"):
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_stack_deploys_and_runs_the_retrain_flow(postgres, tmp_path, tiny_params, small_reviews,
                                                 monkeypatch):
    from mlflow import MlflowClient

    from modelyard import deployments
    from modelyard.stack import StackConfig, down, up
    from modelyard.store.audit import AuditLog

    server, prefix = postgres
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(tiny_params.updated({
        "model.name": "prod-mode", "data.path": str(small_reviews)}).model_dump(mode="json")))
    config = StackConfig(root=tmp_path / "stack", postgres=server, prefix=prefix,
                         prefect_port=free_port(), mlflow_port=free_port(),
                         model_port=free_port(), work_pool="cpu-test", params=params)
    urls = up(config)
    try:
        for name, url in urls.items():
            assert httpx.get(f"{url}/{'api/' if name == 'prefect' else ''}health").status_code \
                == 200, name
        for key, value in config.client_env().items():
            monkeypatch.setenv(key, value)
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings({PREFECT_API_URL: config.client_env()["PREFECT_API_URL"]}):
            from modelyard.doctor import run_checks

            checks = {check.name: check for check in run_checks(REPO / "params.yaml")}
            assert all(check.ok for check in checks.values()), checks
            assert checks["prefect"].detail.startswith(f"server {urls['prefect']}/api")
            assert checks["mlflow"].detail.startswith(f"server {urls['mlflow']}")
            ids = deployments.deploy(REPO, config.work_pool, names=("retrain",))
            assert set(ids) == {"retrain"}
            run = deployments.trigger("retrain", "retrain", {"params_path": str(params)},
                                      timeout_s=900)
        assert run.state.is_completed(), run.state

        client = MlflowClient(tracking_uri=urls["mlflow"], registry_uri=urls["mlflow"])
        version = client.get_model_version_by_alias("prod-mode", "production")
        assert str(version.version) == "1"
        assert version.tags["prefect_flow_run_id"] == str(run.id)
        audit = AuditLog.from_url(config.database("platform"))
        from modelyard.doctor import check_database

        assert "migrations at head" in check_database(config.database("platform")).detail
        moves = audit.history("prod-mode", "production")
        assert [(m.to_version, m.actor) for m in moves] == [("1", f"flow-run:{run.id}")]
        audit.engine.dispose()
        # The stack's model server follows production: told nothing, its poller finds version 1.
        import time

        deadline = time.monotonic() + 60
        while httpx.get(f"{urls['model']}/ready").status_code != 200:
            assert time.monotonic() < deadline, "the model server never loaded production"
            time.sleep(1)
        assert httpx.get(f"{urls['model']}/metadata").json()["version"] == "1"
    finally:
        state = (config.root / "state.json").read_text() if (
            config.root / "state.json").is_file() else "{}"
        assert down(config.root)
    import json

    for pid in json.loads(state).get("services", {}).values():
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)
    for url in urls.values():
        with pytest.raises(httpx.HTTPError):
            httpx.get(url, timeout=2)

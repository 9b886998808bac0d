"""Production mode for real: the stack `make up` starts (a Prefect server on PostgreSQL, an
MLflow tracking server on PostgreSQL, a Prefect worker on a `process` pool, the model server),
the retrain flow deployed on that pool and triggered through the Prefect API, and the result
checked where a team would look: the model version and its alias on the MLflow server, its
audit row in PostgreSQL, the stack's own model server serving it the moment the retrain returns.
`stack env` and a second `stack up` print the exports; another project on the same PostgreSQL
gets databases of its own and never another's. Then `make down`, and nothing it started is
left."""

from __future__ import annotations

import json
import os
import uuid

import httpx
import pytest
import yaml

from tests.helpers.dvc import reviews_project
from tests.helpers.paths import REPO
from tests.helpers.servers import stack_config

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def _cli(*args: str, env: dict[str, str] | None = None):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "modelyard", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def _exports_and_ownership(config, others: list[str], tmp_path) -> None:
    """`stack env` and a second `stack up` print the running stack's exports (never its admin
    token); a second project on the same PostgreSQL gets its own databases, is refused the
    first's (owner named), and cannot start on the first's ports."""
    from modelyard.orchestration.stack import (
        StackConfig,
        StackError,
        ensure_databases,
        export_lines,
        up,
    )

    exports = export_lines(config.client_env())
    token = json.loads((config.root / "config.json").read_text())["admin_token"]
    assert token and (config.root / "config.json").stat().st_mode & 0o077 == 0
    shown = _cli("stack", "env", "--root", str(config.root))
    assert shown.returncode == 0 and shown.stdout.splitlines() == exports, shown
    again = _cli("stack", "up", "--root", str(config.root))
    assert again.returncode == 0, again
    assert "already running" in again.stderr and "nothing started" in again.stderr
    assert [line.strip() for line in again.stdout.splitlines()][-len(exports) :] == exports
    assert token not in shown.stdout + again.stdout + again.stderr
    nothing = _cli("stack", "env", "--root", str(tmp_path / "none"))
    assert nothing.returncode == 1 and "no stack is running" in nothing.stderr

    other = tmp_path / "other-checkout"
    second = StackConfig(
        root=other / ".modelyard" / "stack",
        project=other,
        postgres=config.postgres,
        params=config.params,
    )
    names = list(second.database_names().values())
    assert not set(names) & set(config.database_names().values())
    others += names
    assert sorted(ensure_databases(second)) == sorted(names)
    assert ensure_databases(second) == []  # its own: used again, not refused
    import psycopg

    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test") as admin:
        owners = dict(
            admin.execute(
                "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database "
                "WHERE datname = ANY(%s)",
                [names + list(config.database_names().values())],
            )
        )
    assert {owners[name] for name in names} == {f"modelyard stack of {other.resolve()}"}
    assert {owners[name] for name in config.database_names().values()} == {
        f"modelyard stack of {config.root.resolve()}"
    }
    # Told to use the first stack's names, it is refused, the owner named, nothing created.
    with pytest.raises(StackError, match=f"belongs to the stack of {config.root.resolve()}"):
        ensure_databases(
            StackConfig(
                root=second.root,
                project=other,
                postgres=config.postgres,
                prefix=config.prefix,
                params=config.params,
            )
        )
    # On the first stack's ports it would find the first's services: refused before anything.
    with pytest.raises(StackError, match=f"prefect port {config.prefect_port}"):
        up(
            StackConfig(
                root=second.root,
                project=other,
                postgres=config.postgres,
                prefect_port=config.prefect_port,
                mlflow_port=config.mlflow_port,
                model_port=config.model_port,
                params=config.params,
            )
        )
    assert not (second.root / "supervisor.pid").exists()


def _feedback_to_retrain(config, project, params, deployment_id, client, monkeypatch) -> None:
    import subprocess
    import sys
    import time
    from datetime import UTC, datetime

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from sqlalchemy import insert

    from modelyard.adapters.feedback import add_feedback_version
    from modelyard.config import Settings, load_params
    from modelyard.data.synthetic import ReviewSpec, generate_reviews
    from modelyard.store.db import engine_for
    from modelyard.store.models import Feedback, Prediction

    database = config.database("platform")
    now = datetime.now(UTC)
    labelled = generate_reviews(ReviewSpec(rows=300, seed=123))
    engine = engine_for(database)
    with engine.begin() as connection:  # what the model server and /feedback would write
        connection.execute(
            insert(Prediction),
            [
                {
                    "id": f"00000000-0000-4000-8000-{i:012d}",
                    "created_at": now,
                    "model": "prod-mode",
                    "version": "1",
                    "text": text,
                    "text_sha256": "0" * 64,
                    "label": "neutral",
                    "probabilities": {"neutral": 1.0},
                    "latency_ms": 1.0,
                }
                for i, (text, _) in enumerate(labelled)
            ],
        )
        connection.execute(
            insert(Feedback),
            [
                {
                    "prediction_id": f"00000000-0000-4000-8000-{i:012d}",
                    "label": label,
                    "created_at": now,
                }
                for i, (_, label) in enumerate(labelled)
            ],
        )
    engine.dispose()
    monkeypatch.chdir(project)
    added, feedback = add_feedback_version(
        "reviews@1", "reviews", load_params(params), database, project, Settings().dataset_cache()
    )
    assert added.created and added.entry.ref == "reviews@2" and feedback.labelled == 300
    subprocess.run(["git", "add", "-A"], cwd=project, check=True, capture_output=True)
    subprocess.run(["git", "commit", "-qm", "reviews@2"], cwd=project, check=True)
    # A burst, as ten `data add` of the same version would send, from a process of its own:
    # Prefect's events worker is one per process and stays bound to the first API it sent to
    # (in a full test run, the e2e tests' server).
    burst = subprocess.run(
        [
            sys.executable,
            "-c",
            (
                "from prefect.events.worker import EventsWorker\n"
                "from modelyard.orchestration.events import emit_dataset_added\n"
                f"sent = [emit_dataset_added({added.entry.ref!r}, {added.entry.md5!r}) "
                "for _ in range(10)]\n"
                "EventsWorker.drain_all()\n"
                "assert all(sent), sent\n"
            ),
        ],
        env={**os.environ, **config.client_env()},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert burst.returncode == 0, burst.stderr[-3000:]

    deadline = time.monotonic() + 600
    with get_client(sync_client=True) as prefect:
        while True:
            runs = prefect.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
            )
            triggered = [r for r in runs if r.parameters.get("data_path") == "reviews@2"]
            if triggered and all(r.state and r.state.is_final() for r in triggered):
                break
            assert time.monotonic() < deadline, [(r.name, r.state) for r in triggered]
            time.sleep(2)
    completed = [r for r in triggered if r.state.is_completed()]
    assert len(completed) == 1, [(r.name, r.state) for r in triggered]
    version = client.get_model_version("prod-mode", "2")
    assert version.tags["dataset_md5"] == added.entry.md5
    assert version.tags["prefect_flow_run_id"] == str(completed[0].id)


def test_stack_deploys_and_runs_the_retrain_flow(
    postgres, tmp_path, tiny_params, small_reviews, monkeypatch
):
    from mlflow import MlflowClient

    from modelyard.orchestration import deployments
    from modelyard.orchestration.stack import down, up
    from modelyard.store.audit import AuditLog

    server, prefix, others = postgres
    project = reviews_project(tmp_path / "project", small_reviews, tiny_params)
    params = tmp_path / "params.yaml"
    # Two epochs and floors it passes: what is checked is where the runs and models end up,
    # not how good they are.
    params.write_text(
        yaml.safe_dump(
            tiny_params.updated(
                {
                    "model.name": "prod-mode",
                    "data.path": str(small_reviews),
                    "train.epochs": 2,
                    "gate.min_accuracy": 0.34,
                    "gate.min_macro_f1": 0.2,
                    "gate.min_class_recall": 0.0,
                }
            ).model_dump(mode="json")
        )
    )
    config = stack_config(tmp_path / "stack", server, prefix, params, work_pool="cpu-test")
    urls = up(config)
    try:
        for name, url in urls.items():
            assert (
                httpx.get(f"{url}/{'api/' if name == 'prefect' else ''}health").status_code == 200
            ), name
        # The stack's model server is one the deploy step of the runs it starts checks.
        from modelyard.orchestration.stack import DEPLOY_SERVERS_ENV

        assert json.loads(config.client_env()[DEPLOY_SERVERS_ENV]) == {"prod-mode": [urls["model"]]}
        _exports_and_ownership(config, others, tmp_path)
        for key, value in config.client_env().items():
            monkeypatch.setenv(key, value)
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings({PREFECT_API_URL: config.client_env()["PREFECT_API_URL"]}):
            from modelyard.orchestration.doctor import run_checks

            checks = {check.name: check for check in run_checks(REPO / "params.yaml")}
            assert all(check.ok for check in checks.values()), checks
            assert checks["prefect"].detail.startswith(f"server {urls['prefect']}/api")
            assert checks["mlflow"].detail.startswith(f"server {urls['mlflow']}")
            ids = deployments.deploy(
                REPO,
                config.work_pool,
                names=("retrain",),
                params_path=params,
                data_repo=str(project),
            )
            assert set(ids) == {"retrain"}
            from prefect.client.orchestration import get_client

            with get_client(sync_client=True) as prefect:
                deployment = prefect.read_deployment(ids["retrain"])
            assert [s.schedule.cron for s in deployment.schedules] == ["0 3 * * 1"]
            assert deployment.global_concurrency_limit.limit == 1
            assert deployment.concurrency_options.collision_strategy == "ENQUEUE"

            # `modelyard retrain --remote`: the deployment through the Prefect API, logs followed.
            import subprocess
            import sys

            remote = subprocess.run(
                [sys.executable, "-m", "modelyard", "retrain", "--remote", "--params", str(params)],
                env={**os.environ, **config.client_env()},
                capture_output=True,
                text=True,
                timeout=900,
                cwd=tmp_path,
            )
            out = " ".join((remote.stdout + remote.stderr).split())
            assert remote.returncode == 0, out[-3000:]
            assert (
                "on the retrain/retrain deployment" in out
                and "registered prod-mode version 1" in out
            )
            # The deploy step checked the stack's model server, so it serves version 1 now.
            assert f"{urls['model']}: serves version 1" in out
            assert httpx.get(f"{urls['model']}/metadata").json()["version"] == "1"
            import re

            run_id = re.search(r"flow run ([0-9a-f-]{36}) \(\S+\) on the retrain", out).group(1)
            with get_client(sync_client=True) as prefect:
                run = prefect.read_flow_run(uuid.UUID(run_id))
        assert run.state.is_completed(), run.state

        client = MlflowClient(tracking_uri=urls["mlflow"], registry_uri=urls["mlflow"])
        version = client.get_model_version_by_alias("prod-mode", "production")
        assert str(version.version) == "1"
        assert version.tags["prefect_flow_run_id"] == str(run.id)
        audit = AuditLog.from_url(config.database("platform"))
        from modelyard.orchestration.doctor import check_database

        assert "migrations at head" in check_database(config.database("platform")).detail
        moves = audit.history("prod-mode", "production")
        assert [(m.to_version, m.actor) for m in moves] == [("1", f"flow-run:{run.id}")]
        audit.engine.dispose()

        # Feedback becomes data, the new version's event starts a retrain on it — once, though
        # the event comes ten times.
        with temporary_settings({PREFECT_API_URL: config.client_env()["PREFECT_API_URL"]}):
            _feedback_to_retrain(config, project, params, ids["retrain"], client, monkeypatch)
        # Whatever that run decided, the run ended only once the server serves production.
        production = client.get_model_version_by_alias("prod-mode", "production").version
        assert httpx.get(f"{urls['model']}/metadata").json()["version"] == str(production)
    finally:
        state = (
            (config.root / "state.json").read_text()
            if (config.root / "state.json").is_file()
            else "{}"
        )
        assert down(config.root)

    for pid in json.loads(state).get("services", {}).values():
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)
    for url in urls.values():
        with pytest.raises(httpx.HTTPError):
            httpx.get(url, timeout=2)

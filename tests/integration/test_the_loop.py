"""The whole story of the README's demo, as a user plays it, against the real stack (a Prefect
server with its triggers, an MLflow server and the platform database on PostgreSQL, a worker,
the model server): a first model → traffic with feedback → a shift → the monitor calls the model
degraded → labelled feedback becomes the next dataset version → its retrain runs (queued, not
cancelled) → the gate compares on texts neither model trained on → production moves to the
model of the new version → the server follows; `models history` tells each step and why.

The shift is another domain whose sentiment lives in words the first training data lacks, so
the model trained on the feedback is genuinely better on it: measured here, not assumed."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time

import httpx
import pytest
import yaml

from tests.helpers.dvc import reviews_project
from tests.helpers.paths import REPO
from tests.helpers.servers import stack_config

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

NAME = "loop"


def _modelyard(*args: str, env: dict[str, str], cwd, timeout: int = 900) -> str:
    """A `modelyard` command as a user types it; its output (stdout + stderr), asserted ok."""
    done = subprocess.run(
        [sys.executable, "-m", "modelyard", *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, f"modelyard {' '.join(args)}:\n{out[-4000:]}"
    return out


def _logged(database: str, version: str, at_least: int) -> None:
    """Wait for the server's background writer to have logged the traffic just sent."""
    from sqlalchemy import func, select

    from modelyard.store.db import engine_for
    from modelyard.store.models import Prediction

    engine = engine_for(database)
    deadline = time.monotonic() + 120
    try:
        while True:
            with engine.connect() as connection:
                count = connection.execute(
                    select(func.count())
                    .select_from(Prediction)
                    .where(Prediction.model == NAME, Prediction.version == version)
                ).scalar_one()
            if count >= at_least:
                return
            assert time.monotonic() < deadline, f"{count} of {at_least} predictions logged"
            time.sleep(0.5)
    finally:
        engine.dispose()


def _wait_for_run(data_path: str, env: dict[str, str]):
    """The retrain deployment's run on `data_path`, once it has ended."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
    from prefect.settings import PREFECT_API_URL, temporary_settings

    deadline = time.monotonic() + 900
    with (
        temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}),
        get_client(sync_client=True) as prefect,
    ):
        while True:
            runs = [
                run
                for run in prefect.read_flow_runs(
                    deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["retrain"]))
                )
                if run.parameters.get("data_path") == data_path
            ]
            if runs and all(run.state and run.state.is_final() for run in runs):
                return runs
            assert time.monotonic() < deadline, [(run.name, run.state) for run in runs]
            time.sleep(2)


def _accuracy_on_shifted(client_uri: str, version: str, seed: int) -> float:
    from modelyard.cli.demo import shifted
    from modelyard.registry.mlflow_registry import MlflowRegistry

    rng = random.Random(seed)
    truth = [rng.choice(("negative", "neutral", "positive")) for _ in range(300)]
    texts = [shifted(label, rng) for label in truth]
    classifier = MlflowRegistry(client_uri, "modelyard").load_classifier(NAME, version=version)
    found = classifier.predict_proba(texts).argmax(axis=1)
    return sum(classifier.labels[i] == label for i, label in zip(found, truth, strict=True)) / 300


def test_the_readme_demo_closes_the_loop(postgres, tmp_path, tiny_params, small_reviews):
    from mlflow import MlflowClient

    from modelyard.orchestration import deployments
    from modelyard.orchestration.stack import down, up

    server, prefix, _ = postgres
    started = time.monotonic()
    project = reviews_project(tmp_path / "project", small_reviews, tiny_params)
    params = tmp_path / "params.yaml"
    params.write_text(
        yaml.safe_dump(
            tiny_params.updated(
                {
                    "model.name": NAME,
                    "data.path": "reviews@1",
                    "monitor.min_predictions": 100,
                    "monitor.sample_size": 200,
                    "monitor.min_feedback": 30,
                    "monitor.min_feedback_for_retrain": 100,
                    # The tiny model is noisy on in-distribution slices from one training to
                    # the next; the test is about the loop, so slices get room (the gate's
                    # rules have tests of their own).
                    "gate.max_regression": 0.05,
                    "gate.max_slice_regression": 0.15,
                    "gate.min_class_recall": 0.3,
                    # At tiny_params' 3e-3 one training in a few collapses to one class (seen: a
                    # v2 that predicted only "neutral"); at 1e-3 a 6-epoch one still lost
                    # "neutral" once (0.12).
                    "train.learning_rate": 1e-3,
                    "train.epochs": 8,
                }
            ).model_dump(mode="json")
        )
    )
    config = stack_config(tmp_path / "stack", server, prefix, params, work_pool="loop-test")
    urls = up(config)
    env = config.client_env()
    try:
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}):
            deployments.deploy(
                REPO,
                config.work_pool,
                names=("retrain",),
                params_path=params,
                data_repo=str(project),
            )

        # 1. A first model reaches production, and the stack's server serves it.
        first = _modelyard(
            "retrain",
            "--remote",
            "--params",
            str(params),
            "--data-repo",
            str(project),
            env=env,
            cwd=project,
        )
        assert f"{urls['model']}: serves version 1" in " ".join(first.split())
        database = config.database("platform")
        # The stack's server requires API keys: the traffic sends one, as a client team would.
        made = _modelyard(
            "keys", "create", "--scope", "predict", "--scope", "feedback", env=env, cwd=project
        )
        key = next(word for word in made.split() if word.startswith("myk_"))
        env = {**env, "MODELYARD_API_KEY": key}

        # 2. Ordinary traffic with feedback: healthy.
        _modelyard(
            "demo-traffic",
            "--url",
            urls["model"],
            "--count",
            "200",
            "--feedback",
            "0.3",
            env=env,
            cwd=project,
        )
        _logged(database, "1", 200)
        healthy = _modelyard("monitor", "--params", str(params), env=env, cwd=project)
        assert f"{NAME} version 1: healthy" in healthy, healthy

        # 3. The shift, labelled in part; the monitor calls it, and the labels become data.
        # Enough of it labelled that the new domain is a real share of the next test split.
        _modelyard(
            "demo-traffic",
            "--url",
            urls["model"],
            "--count",
            "800",
            "--shifted",
            "--feedback",
            "0.8",
            env=env,
            cwd=project,
        )
        _logged(database, "1", 1000)
        degraded = _modelyard("monitor", "--params", str(params), env=env, cwd=project)
        assert f"{NAME} version 1: DEGRADED" in degraded, degraded
        assert "action: new-data" in degraded and "dataset version reviews@2" in degraded
        assert "event modelyard.dataset.added sent" in degraded
        assert "started retrain/retrain run" in degraded, degraded

        # 4. Its retrain runs to the end (queued if need be, never cancelled) and wins fairly.
        (run,) = _wait_for_run("reviews@2", env)
        assert run.state.is_completed(), run.state
        client = MlflowClient(tracking_uri=urls["mlflow"], registry_uri=urls["mlflow"])
        production = client.get_model_version_by_alias(NAME, "production")
        assert str(production.version) == "2", client.get_model_version(NAME, "2").tags.get(
            "gate_report"
        )

        from modelyard.adapters.catalog import Catalog

        (grown,) = [e for e in Catalog(project).versions("reviews") if e.version == 2]
        assert production.tags["dataset_md5"] == grown.md5
        report = production.tags["gate_report"]
        assert "split inherited from production version 1" in report
        assert "0 held out because production version 1 trained or validated on them" in report

        # 5. The server follows; the new model is genuinely better on the shifted traffic.
        assert httpx.get(f"{urls['model']}/metadata").json()["version"] == "2"
        before, after = (_accuracy_on_shifted(urls["mlflow"], v, seed=5) for v in ("1", "2"))
        assert after >= before + 0.2, (before, after)

        # 6. The audit trail tells the story, each step with its reason.
        wide = {**env, "COLUMNS": "250"}  # a terminal wide enough for the table not to fold
        history = " ".join(_modelyard("models", "history", NAME, env=wide, cwd=project).split())
        assert "passed the gate" in history and "flow-run:" in history
        print(
            f"the loop closed in {time.monotonic() - started:.0f} s: production v1 -> v2; "
            f"accuracy on shifted traffic {before:.3f} -> {after:.3f}"
        )
    finally:
        assert down(config.root)

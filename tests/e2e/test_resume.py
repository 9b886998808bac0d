"""A retrain killed with SIGKILL mid-training resumes from its last checkpoint when started again
with the same inputs, and ends as one MLflow run and one model version."""

from __future__ import annotations

import os
import signal
import time

import pytest
import yaml

from modelyard.registry.mlflow_registry import MlflowRegistry
from modelyard.registry.training_log import recorded_attempts
from tests.helpers import forked

pytestmark = pytest.mark.slow


def test_killed_retrain_resumes_from_its_checkpoint(
    prefect_api, tmp_path, tiny_params, small_reviews
):
    from mlflow import MlflowClient

    home = tmp_path / "home"
    params = tiny_params.updated(
        {
            "model.name": "resumed",
            "data.path": str(small_reviews),
            "train.checkpoint_every": 10,
            "train.epochs": 3,
        }
    )
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params.model_dump(mode="json")))
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "MODELYARD_HOME": str(home)}
    command = ["retrain", "--params", str(path)]
    runs = home / ".modelyard" / "runs"

    first = forked.start(
        command, env=env, cwd=tmp_path, log=tmp_path / "first.log", new_session=True
    )
    deadline = time.monotonic() + 300
    while not list(runs.glob("*/checkpoints/step-*.pt")):
        assert first.poll() is None, "the first run ended before its first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint within 300 s"
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)  # no clean-up of any kind: as a power cut
    first.wait()
    saved = sorted(runs.glob("*/checkpoints/step-*.pt"))
    last_step = int(saved[-1].stem.split("-")[1])
    assert last_step >= 10

    uri = f"sqlite:///{home.resolve()}/mlflow.db"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.get_experiment_by_name("modelyard").experiment_id
    (killed,) = client.search_runs([experiment])
    assert killed.info.status == "RUNNING"  # nobody was left to close it

    second = forked.run(command, env=env, cwd=tmp_path, timeout=600)
    output = second.stdout + second.stderr
    assert second.returncode == 0, output[-3000:]
    assert f"resumed from the checkpoint at step {last_step}" in output
    assert f"resumed from step {last_step}" in " ".join(output.split())  # the summary says so

    (run,) = client.search_runs([experiment])
    assert run.info.run_id == killed.info.run_id and run.info.status == "FINISHED"
    assert run.data.metrics["train/resumed_from_step"] == last_step
    assert run.data.metrics["train/steps"] == 3 * 33
    assert len(client.search_model_versions("name='resumed'")) == 1
    # The killed attempt's compute is part of what the version cost.
    # One record per attempt (the killed one's last interim figures), read back for the total.
    registry = MlflowRegistry(uri, "modelyard")
    attempts = [a["device_hours"] for a in recorded_attempts(registry, run.info.run_id)]
    assert len(attempts) == 2 and all(value > 0 for value in attempts)
    assert run.data.metrics["compute/total/attempts"] == 2
    assert run.data.metrics["compute/total/device_hours"] == pytest.approx(sum(attempts))
    assert run.data.metrics["compute/total/cost"] > run.data.metrics["compute/cost"] > 0
    assert not list(runs.iterdir())  # the run directory is gone once the run is complete

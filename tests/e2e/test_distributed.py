"""torchrun with two CPU processes (gloo) inside the retrain flow: the model trains, rank 0 alone
logs, and exactly one MLflow run and one model version come out."""

from __future__ import annotations

import pytest
import yaml

pytestmark = pytest.mark.slow


def test_two_gloo_processes_train_one_model_in_one_run(
    prefect_api, tmp_path, monkeypatch, tiny_params, small_reviews
):
    from mlflow import MlflowClient

    from flows.retrain import retrain

    home = tmp_path / "home"
    monkeypatch.setenv("MODELYARD_HOME", str(home))
    params = tiny_params.updated(
        {"model.name": "ddp", "data.path": str(small_reviews), "train.nproc": 2, "train.epochs": 6}
    )
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params.model_dump(mode="json")))

    summary = retrain(params_path=str(path))
    # 1,049 training texts, batches of 32 → 33 batches; 16 per rank and epoch.
    assert summary.training.steps == 6 * 16
    assert summary.candidate["accuracy"] > 0.5  # it learned (chance is 1/3)

    uri = f"sqlite:///{home.resolve()}/mlflow.db"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("modelyard").experiment_id])
    assert run.info.status == "FINISHED"
    history = client.get_metric_history(run.info.run_id, "train/loss")
    assert sorted(m.step for m in history) == list(range(1, 6 * 16 + 1))  # once per step
    assert len(client.get_metric_history(run.info.run_id, "val/macro_f1")) == 6
    assert len(client.search_model_versions("name='ddp'")) == 1
    # The compute of both processes: two devices' worth of CPU, positive figures.
    metrics = run.data.metrics
    assert metrics["compute/devices"] >= 2 and summary.training.compute.figures["devices"] >= 2
    for key in (
        "compute/seconds",
        "compute/device_hours",
        "compute/energy_kwh",
        "compute/cost",
        "compute/samples_per_second",
        "compute/total/cost",
    ):
        assert metrics[key] > 0, key
    # No stray experiment or run from another rank (MLflow's own "Default" always exists).
    assert {e.name for e in client.search_experiments()} == {"Default", "modelyard"}

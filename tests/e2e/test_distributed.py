"""torchrun inside the retrain flow, on CPUs (gloo): two processes on one machine, and two
"machines" (two torchrun process groups on this one, meeting at a c10d rendezvous on
127.0.0.1) with the same global batch. Each trains one model in one MLflow run, rank 0 alone
logging, and both train the same model."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.slow

# 1,049 training texts, batches of 32 → 33 batches; 16 per rank and epoch.
EPOCHS, STEPS_PER_EPOCH = 6, 16
JOINER_WAIT_S = 300


@dataclass(frozen=True)
class Retrained:
    home: Path
    params: Path
    summary: Any

    def client(self) -> Any:
        from mlflow import MlflowClient

        uri = f"sqlite:///{self.home.resolve()}/mlflow.db"
        return MlflowClient(tracking_uri=uri, registry_uri=uri)

    def only_run(self) -> Any:
        client = self.client()
        (run,) = client.search_runs([client.get_experiment_by_name("modelyard").experiment_id])
        return run

    def weights(self) -> dict[str, Any]:
        """The weights of the model the run logged (and registered), in the home's mlruns/."""
        from safetensors.torch import load_file

        (saved,) = sorted(self.home.glob("mlruns/**/model.safetensors"))
        return load_file(saved)


def _params(folder: Path, tiny_params, small_reviews, **train: int) -> Path:
    params = tiny_params.updated(
        {
            "model.name": "ddp",
            "data.path": str(small_reviews),
            "train.epochs": EPOCHS,
            **{f"train.{key}": value for key, value in train.items()},
        }
    )
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params.model_dump(mode="json")))
    return path


def _retrain(folder: Path, params: Path, **env: str) -> Retrained:
    from flows.retrain import retrain

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODELYARD_HOME", str(folder))
        for name, value in env.items():
            patch.setenv(name, value)
        summary = retrain(params_path=str(params))
    return Retrained(folder, params, summary)


@pytest.fixture(scope="module")
def one_machine(prefect_api, tmp_path_factory, tiny_params, small_reviews) -> Retrained:
    """The retrain flow with train.nproc 2 (global batch 64), in a home of its own."""
    folder = tmp_path_factory.mktemp("one-machine")
    return _retrain(folder, _params(folder, tiny_params, small_reviews, nproc=2))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_two_gloo_processes_train_one_model_in_one_run(one_machine):
    summary = one_machine.summary
    assert summary.training.steps == EPOCHS * STEPS_PER_EPOCH
    assert summary.candidate["accuracy"] > 0.5  # it learned (chance is 1/3)

    client = one_machine.client()
    run = one_machine.only_run()
    assert run.info.status == "FINISHED"
    history = client.get_metric_history(run.info.run_id, "train/loss")
    assert sorted(m.step for m in history) == list(range(1, EPOCHS * STEPS_PER_EPOCH + 1))
    assert len(client.get_metric_history(run.info.run_id, "val/macro_f1")) == EPOCHS
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


def _join(params: Path, endpoint: str, log: Path) -> subprocess.Popen[bytes]:
    """Node 1: `modelyard train --node-rank 1`, as a second machine would run it (no data)."""
    command = [sys.executable, "-m", "modelyard", "train", "--params", str(params)]
    command += ["--nproc", "1", "--nnodes", "2", "--node-rank", "1", "--rdzv-endpoint", endpoint]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("MODELYARD_HOME", None)
    with log.open("wb") as out:  # its own session: killing it ends its torchrun too
        return subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )


def test_two_nodes_train_the_same_model_as_one_node_with_the_same_global_batch(
    one_machine, tmp_path, tiny_params, small_reviews
):
    """Node 0 runs the retrain flow (train.nnodes 2, one process); node 1 joins with `modelyard
    train --node-rank 1` from another folder, with neither the data nor the params: global
    batch 2 × 32, as `one_machine`'s two processes."""
    params = _params(tmp_path, tiny_params, small_reviews, nproc=1, nnodes=2)
    endpoint = f"127.0.0.1:{_free_port()}"
    log = tmp_path / "node-1.log"
    joiner = _join(tmp_path / "absent.yaml", endpoint, log)
    try:
        two = _retrain(tmp_path / "home", params, MODELYARD_RDZV_ENDPOINT=endpoint)
        code = joiner.wait(timeout=JOINER_WAIT_S)  # it ends with the training
    finally:
        if joiner.poll() is None:
            os.killpg(joiner.pid, signal.SIGKILL)
        joiner.wait()
    assert code == 0, log.read_text()[-4000:]
    assert "node 1 of 2: trained its share" in log.read_text()

    client = two.client()
    run = two.only_run()  # one run: node 1 logged nothing
    assert run.info.status == "FINISHED"
    assert len(client.search_model_versions("name='ddp'")) == 1
    history = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "train/loss")}
    assert sorted(history) == list(range(1, EPOCHS * STEPS_PER_EPOCH + 1))  # once per step
    assert {e.name for e in client.search_experiments()} == {"Default", "modelyard"}

    # The same training as one machine's two processes: losses, metrics, weights.
    one = one_machine.client().get_metric_history(one_machine.only_run().info.run_id, "train/loss")
    assert [history[m.step] for m in sorted(one, key=lambda m: m.step)] == pytest.approx(
        [m.value for m in sorted(one, key=lambda m: m.step)], rel=1e-4, abs=1e-5
    )
    assert two.summary.candidate == pytest.approx(one_machine.summary.candidate, abs=1e-6)
    assert two.summary.version == "1"
    expected, got = one_machine.weights(), two.weights()
    assert expected.keys() == got.keys()
    for name, tensor in expected.items():
        assert (got[name] - tensor).abs().max().item() < 1e-4, name

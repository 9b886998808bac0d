"""No warning a user cannot act on: a tiny training with its compute meter, logging the model to
MLflow and loading it back (as ModelYard and as a plain pyfunc consumer) say nothing of MLflow's
type-hint advice or CodeCarbon's "multiple instances" note; a server started before its alias
exists says so once, and again only when what it sees changes."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import httpx
import yaml

from modelyard.config import ServingParams
from modelyard.registry.mlflow_registry import PRODUCTION, MlflowRegistry
from modelyard.serving.app import create_app
from tests.helpers.models import register_tiny_versions
from tests.helpers.paths import REPO
from tests.helpers.servers import ServerThread

UNACTIONABLE = ("Add type hints to the `predict` method", "Multiple instances of codecarbon")
NOT_YET = "does not exist in the registry yet"
TOKEN = "quiet-token"
DONE = "quiet-output: done"

# Run in a fresh interpreter: the warnings in question fire on first import (MLflow checks the
# pyfunc class when it is defined; importing codecarbon resets its logger), which an earlier test
# in this process may already have done. Every warning is shown, not once per location.
_SCRIPT = """
import sys, warnings
warnings.simplefilter("always")
from pathlib import Path
import mlflow.pyfunc, pandas as pd
from modelyard.config import load_params
from modelyard.data.dataset import TEXT, read_frame, split, to_canonical
from modelyard.registry.mlflow_registry import MlflowRegistry
from modelyard.registry.pyfunc import predictions_frame
from modelyard.training.cost import ComputeMeter
from modelyard.training.fit import fit
from modelyard.inference import TextClassifier

params_path, data_path, root = (Path(arg) for arg in sys.argv[1:4])
params = load_params(params_path)
splits = split(to_canonical(read_frame(data_path), params.data), params.data)
meter = ComputeMeter(params.cost, "cpu").start()
trained = fit(splits, params, root / "model", progress=False)
meter.stop(len(splits.train))
texts = splits.test[TEXT].head(3).tolist()
uri = f"sqlite:///{root}/mlflow.db"
registry = MlflowRegistry(uri, "quiet", (root / "mlruns").as_uri())
run_id = registry.start_run("quiet", {})
model_uri = registry.log_model(run_id, trained.model_dir, pd.DataFrame({"text": texts}),
                               predictions_frame(TextClassifier.load(trained.model_dir), texts))
registry.end_run(run_id)
registry.register(model_uri, "quiet", run_id, {})
registry.load_classifier("quiet", version="1")
mlflow.set_tracking_uri(uri)
print(mlflow.pyfunc.load_model("models:/quiet/1").predict(pd.DataFrame({"text": texts})))
print(DONE)
""".replace("DONE", repr(DONE))


def test_training_logging_and_loading_a_model_warn_nothing_unactionable(
    tiny_params, small_reviews, tmp_path
):
    params_path = tmp_path / "params.yaml"
    params = tiny_params.updated({"train.epochs": 1, "cost.energy": True})
    params_path.write_text(yaml.safe_dump(params.model_dump(mode="json")))
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(params_path), str(small_reviews), str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0 and DONE in result.stdout, result.stderr[-3000:]
    output = result.stdout + result.stderr
    for message in UNACTIONABLE:
        assert message not in output, output[-3000:]


def test_a_server_before_its_first_model_says_so_once_then_on_change(tmp_path, caplog):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    name = "quiet-served"
    registry = MlflowRegistry(uri, "quiet-serving", (tmp_path / "mlruns").as_uri())
    app = create_app(
        lambda: MlflowRegistry(uri, "quiet-serving"),
        name,
        ServingParams(poll_interval_s=3600),
        f"sqlite:///{tmp_path}/log.db",
        TOKEN,
    )

    def not_yet() -> list[str]:
        return [
            r.getMessage()
            for r in caplog.records
            if r.name == "modelyard.serving" and "could not follow" in r.getMessage()
        ]

    auth = {"authorization": f"Bearer {TOKEN}"}
    caplog.set_level(logging.INFO, logger="modelyard.serving")
    with ServerThread(app) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        # The server checked once on start; each reload is one more poll of a missing alias.
        for _ in range(3):
            assert http.post("/admin/reload", headers=auth).status_code == 503
        assert len(not_yet()) == 1 and NOT_YET in not_yet()[0]

        register_tiny_versions(registry, name, tmp_path)  # production -> 1
        answer = http.post("/admin/reload", headers=auth).json()
        assert answer["switched"] and answer["version"] == "1"
        assert http.post("/admin/reload", headers=auth).json()["switched"] is False
        assert len(not_yet()) == 1

        # The alias disappears: a change, said once more while the loaded model keeps serving.
        registry.client.delete_registered_model_alias(name, PRODUCTION)
        for _ in range(3):
            assert http.post("/admin/reload", headers=auth).json()["version"] == "1"
        assert len(not_yet()) == 2 and NOT_YET in not_yet()[1]

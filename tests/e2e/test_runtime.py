"""The exported runtime of a model the retrain flow produced (issue 20.1): the session's tiny
model was exported to ONNX (fp32, int8) once it passed the gate, each variant checked against
the PyTorch model on the test split; the report is in the gate report and the MLflow run, the
choice on the version's `runtime` tag, and every consumer of `models:/NAME@production` (plain
MLflow in a fresh process, the server's and the monitor's loader) answers with that variant."""

from __future__ import annotations

import json

import pytest

from modelyard import tags
from modelyard.inference.runtime import EAGER, ONNX, ONNX_INT8
from tests.helpers.models import TINY_MODEL, TINY_TEXTS, json_from_fresh_process

pytestmark = pytest.mark.slow

NAME = TINY_MODEL
TEXTS = [*TINY_TEXTS, "not bad at all", "broke after a week", "it is fine i guess", "meh"]


@pytest.fixture(scope="module")
def stores(tiny_production):
    from mlflow import MlflowClient

    uri = f"sqlite:///{tiny_production.home.resolve()}/mlflow.db"
    return tiny_production.home, uri, MlflowClient(uri, uri)


def test_the_parity_report_is_in_the_gate_report_and_the_run(stores):
    _, _, client = stores
    version = client.get_model_version(NAME, "1")
    chosen = version.tags[tags.RUNTIME]
    assert chosen in {EAGER, ONNX, ONNX_INT8}
    assert f"info runtime: chosen cpu: {chosen}" in version.tags[tags.GATE_REPORT]
    assert "**Runtimes**" in version.description
    metrics = client.get_run(version.run_id).data.metrics
    # fp32 ONNX computes what PyTorch does: it passes on the tiny model whatever the machine.
    assert metrics[f"{tags.RUNTIME_GROUP}cpu/{ONNX}/passed"] == 1.0
    assert metrics[f"{tags.RUNTIME_GROUP}cpu/{ONNX}/agreement"] >= 0.995
    for name in (EAGER, ONNX, ONNX_INT8):
        assert metrics[f"{tags.RUNTIME_GROUP}cpu/{name}/texts_per_s_batch32"] > 0
        assert f"{tags.RUNTIME_GROUP}cpu/{name}/size_mb" in metrics
    report = client.download_artifacts(version.run_id, tags.RUNTIME_REPORT_FILE)
    with open(report) as file:
        assert json.load(file)["chosen"] == {"cpu": chosen}


def test_production_loads_the_recorded_runtime_in_a_fresh_process(stores):
    import mlflow.pyfunc

    from modelyard.registry.mlflow_registry import _fluent_uris

    home, uri, _ = stores
    code = (
        "import json, mlflow\n"
        f"mlflow.set_tracking_uri({uri!r})\n"
        f"model = mlflow.pyfunc.load_model('models:/{NAME}@production')\n"
        f"out = model.predict({TEXTS!r})\n"
        "print(json.dumps({'runtime': model.unwrap_python_model().classifier.runtime,\n"
        "                  'labels': list(out['label'])}))\n"
    )
    fresh = json_from_fresh_process(code, home)
    chosen = stores[2].get_model_version(NAME, "1").tags[tags.RUNTIME]
    assert fresh["runtime"] == chosen

    # This process's MLflow default stays as it was (the adapter's own scoping of the URI).
    with _fluent_uris(uri):
        same = mlflow.pyfunc.load_model(f"models:/{NAME}/1", model_config={tags.RUNTIME: chosen})
        eager = mlflow.pyfunc.load_model(f"models:/{NAME}/1", model_config={tags.RUNTIME: EAGER})
    assert eager.unwrap_python_model().classifier.runtime == EAGER
    assert list(same.predict(TEXTS)["label"]) == fresh["labels"]
    agree = sum(a == b for a, b in zip(eager.predict(TEXTS)["label"], fresh["labels"], strict=True))
    assert agree >= len(TEXTS) - 1  # int8 may move a text on the boundary; fp32 none


def test_the_server_and_the_monitor_load_the_version_as_tagged(stores):
    from modelyard.registry.mlflow_registry import MlflowRegistry

    home, uri, client = stores
    registry = MlflowRegistry(uri, "tiny-runtime-check", (home / "mlruns").as_uri())
    chosen = client.get_model_version(NAME, "1").tags[tags.RUNTIME]
    # `modelyard serve` (load_version → load_pyfunc) and the monitor / batch prediction
    # (load_classifier) both read the version's tag.
    assert registry.load_pyfunc(NAME, version="1").classifier.runtime == chosen
    assert registry.load_classifier(NAME, alias=tags.PRODUCTION).runtime == chosen

"""The MLflow adapter on a temporary SQLite store: runs, dataset digest, pyfunc model, registry."""

import json
import os
import time
from pathlib import Path

import pandas as pd
import pytest

from modelyard.config import ModelParams, TinyBackbone
from modelyard.data.dataset import Splits
from modelyard.data.identity import dataset_version
from modelyard.inference import TextClassifier
from modelyard.registry.mlflow_registry import PRODUCTION, STAGING, MlflowRegistry
from modelyard.registry.pyfunc import predictions_frame
from modelyard.registry.tracking import DataOrigin, rows_md5, split_inputs
from modelyard.training.model import build_model
from tests.helpers.models import predict_in_fresh_process

LABELS = ["negative", "neutral", "positive"]
TEXTS = ["the battery is awful", "it does the job", "superb sound, would buy again"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root}/mlflow.db"
    return uri, MlflowRegistry(uri, "registry-tests", (root / "mlruns").as_uri())


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    params = ModelParams(backbone="tiny", max_length=32, tiny=TinyBackbone(vocab_size=120))
    model, tokenizer = build_model(params, LABELS, TEXTS * 20)
    return TextClassifier(model, tokenizer, "cpu").save(tmp_path_factory.mktemp("model") / "m")


@pytest.fixture(scope="module")
def logged(store, model_dir, tmp_path_factory):
    _, registry = store
    data = tmp_path_factory.mktemp("data") / "d.csv"
    frame = pd.DataFrame({"text": TEXTS, "label": LABELS})
    frame.to_csv(data, index=False)
    version = dataset_version(data)
    run_id = registry.start_run("test-run", {"modelyard.dataset_md5": version.md5})
    registry.log_params(run_id, {"train.epochs": 1})
    registry.log_metrics(run_id, {"val_accuracy": 0.5}, step=1)
    splits = Splits(frame.iloc[:1], frame.iloc[1:2], frame.iloc[2:])
    for entry in split_inputs(DataOrigin.of_file(version), splits):
        registry.log_dataset(run_id, entry)
    example = frame[["text"]]
    outputs = predictions_frame(TextClassifier.load(model_dir), TEXTS)
    model_uri = registry.log_model(run_id, model_dir, example, outputs)
    registry.end_run(run_id)
    return run_id, model_uri, version


def test_run_has_params_metrics_and_dataset_digest(store, logged):
    _, registry = store
    run_id, _, version = logged
    run = registry.client.get_run(run_id)
    assert run.data.params["train.epochs"] == "1"
    assert run.data.metrics["val_accuracy"] == 0.5
    # One input per split, each its own name, rows and digest; the file's md5 an input tag.
    inputs = {i.dataset.name: i for i in run.inputs.dataset_inputs}
    assert sorted(inputs) == [f"d@{version.short}/{s}" for s in ("test", "train", "validation")]
    assert len({i.dataset.digest for i in inputs.values()}) == 3
    train = inputs[f"d@{version.short}/train"]
    tags = {t.key: t.value for t in train.tags}
    assert tags["mlflow.data.context"] == "train" and tags["modelyard.file_md5"] == version.md5
    assert train.dataset.digest == rows_md5(pd.DataFrame({"text": TEXTS[:1], "label": LABELS[:1]}))
    assert json.loads(train.dataset.profile)["num_rows"] == 1
    source = json.loads(train.dataset.source)["uri"]
    assert train.dataset.source_type == "local" and Path(source).is_file()
    assert run.info.status == "FINISHED"


def test_register_tag_and_alias(store, logged):
    _, registry = store
    run_id, model_uri, version = logged
    name = "registry-test-model"
    assert registry.alias_version(name, PRODUCTION) is None
    v1 = registry.register(model_uri, name, run_id, {"dataset_md5": version.md5})
    v2 = registry.register(model_uri, name, run_id, {"dataset_md5": version.md5})
    assert (v1, v2) == ("1", "2")
    registry.set_alias(name, STAGING, v2)
    registry.set_alias(name, PRODUCTION, v1)
    registry.set_version_tags(name, v2, {"rejected": "true"})
    assert registry.alias_version(name, PRODUCTION) == "1"
    assert registry.alias_version(name, STAGING) == "2"
    info = registry.version_info(name, v2)
    assert info.tags == {"dataset_md5": version.md5, "rejected": "true"}
    assert info.aliases == [STAGING] and info.run_id == run_id
    # Every alias in one tag: MLflow's list of models hides all but one per version.
    tags = registry.client.get_registered_model(name).tags
    assert tags["aliases"] == "@production v1 · @staging v2"
    # The logged model names both versions (its page links them instead of "Not registered").
    logged_model = registry.client.get_logged_model(model_uri.removeprefix("models:/"))
    # (Other tests of this module may register the same logged model under their own names.)
    listed = json.loads(logged_model.tags["mlflow.modelVersions"])
    assert [v for v in listed if v["name"] == name] == [
        {"name": name, "version": "1"},
        {"name": name, "version": "2"},
    ]
    registry.describe_model(name, "what it is")
    registry.describe_model(name, "not this: a description, once there, is kept")
    registry.describe_version(name, v1, "**Gate: PROMOTE**")
    assert registry.client.get_registered_model(name).description == "what it is"
    assert registry.client.get_model_version(name, v1).description == "**Gate: PROMOTE**"


def test_production_model_predicts_like_the_saved_directory(store, logged, model_dir):
    _, registry = store
    run_id, model_uri, _ = logged
    name = "registry-load-model"
    registry.set_alias(name, PRODUCTION, registry.register(model_uri, name, run_id, {}))
    loaded = registry.load_classifier(name, PRODUCTION)
    local = TextClassifier.load(model_dir)
    assert loaded.labels == LABELS
    assert loaded.predict_proba(TEXTS) == pytest.approx(local.predict_proba(TEXTS), abs=1e-6)


def test_the_store_does_not_become_the_process_default(store, logged):
    """Logging and loading leave no MLflow URI behind: the next flow in this process (a worker)
    must use its own settings, not the last store touched."""
    import os

    import mlflow

    for variable in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        assert variable not in os.environ
    assert mlflow.get_tracking_uri() != store[0]


def test_pyfunc_loads_in_a_fresh_process(store, logged, tmp_path):
    uri, registry = store
    run_id, model_uri, _ = logged
    name = "registry-pyfunc-model"
    registry.set_alias(name, PRODUCTION, registry.register(model_uri, name, run_id, {}))
    out = predict_in_fresh_process(uri, f"models:/{name}@production", ["fine", "awful"], tmp_path)
    assert out["columns"] == ["label", *[f"prob_{label}" for label in LABELS]]
    assert all(label in LABELS for label in out["labels"])
    # One unnamed string column: MLflow passes a plain list through, and a frame's first column.
    assert out["inputs"] == [0]
    as_list = predict_in_fresh_process(uri, f"models:/{name}/1", ["fine", "awful"], tmp_path, None)
    assert as_list["labels"] == out["labels"]


_OPEN_WHEN_TOLD = """
import os, pathlib, time
from modelyard.registry.mlflow_registry import open_client
here = pathlib.Path(os.environ["BARRIER"])
(here / f"ready-{os.getpid()}").touch()
deadline = time.monotonic() + 120
while not (here / "go").exists() and time.monotonic() < deadline:
    time.sleep(0.01)
open_client(os.environ["URI"]).search_registered_models()
"""


def test_processes_opening_one_fresh_store_at_once_all_succeed(tmp_path):
    """MLflow migrates a fresh SQLite store on first use; processes doing it at once (a retrain
    and `models approve`, two retrains) fail half-way ("duplicate column name") unless opening
    is serialised. Four processes are released together onto one store."""
    from tests.helpers import forked

    barrier, uri = tmp_path / "barrier", f"sqlite:///{tmp_path}/mlflow.db"
    barrier.mkdir()
    env = {**os.environ, "BARRIER": str(barrier), "URI": uri}
    processes = [
        forked.start([], env=env, cwd=tmp_path, log=tmp_path / f"{i}.log", code=_OPEN_WHEN_TOLD)
        for i in range(4)
    ]
    deadline = time.monotonic() + 120
    while len(list(barrier.glob("ready-*"))) < 4:
        assert time.monotonic() < deadline, "the processes never got ready"
        assert all(p.poll() is None for p in processes), [p.output()[-2000:] for p in processes]
        time.sleep(0.01)
    (barrier / "go").touch()
    for process in processes:
        process.wait(timeout=120)
        assert process.returncode == 0, process.output()[-3000:]

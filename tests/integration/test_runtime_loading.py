"""Versions without an export keep loading as they always did (eager PyTorch), and a version
whose `runtime` tag names a variant that cannot be built here falls back to eager instead of
failing to load (issue 20.1). Untrained tiny models: nothing is exported or trained here."""

from __future__ import annotations

import logging

import pytest

from modelyard import tags
from modelyard.inference.runtime import EAGER, ONNX, load_runtime
from modelyard.registry.mlflow_registry import MlflowRegistry
from tests.helpers.models import TINY_TEXTS, register_tiny_versions

NAME = "runtime-loading"


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow")
    found = MlflowRegistry(f"sqlite:///{root}/mlflow.db", "runtime", (root / "mlruns").as_uri())
    register_tiny_versions(found, NAME, root)
    return found


def test_a_version_without_an_export_loads_eager(registry):
    model = registry.load_pyfunc(NAME, alias=tags.PRODUCTION)
    assert model.classifier.runtime == EAGER
    assert tags.RUNTIME not in registry.version_info(NAME, "1").tags
    assert len(model.predict(None, TINY_TEXTS)) == len(TINY_TEXTS)


def test_a_runtime_tag_without_its_file_falls_back_to_eager(registry, caplog):
    registry.set_version_tags(NAME, "2", {tags.RUNTIME: ONNX})
    with caplog.at_level(logging.WARNING, logger="modelyard.inference"):
        model = registry.load_pyfunc(NAME, version="2")
    assert model.classifier.runtime == EAGER
    assert "runtime onnx unavailable" in caplog.text and "was not exported" in caplog.text
    assert len(model.predict(None, TINY_TEXTS)["label"]) == len(TINY_TEXTS)


def test_an_unknown_runtime_falls_back_to_eager(tmp_path, registry, caplog):
    from modelyard.inference import TextClassifier

    directory = registry.load_classifier(NAME, version="1").save(tmp_path / "m")
    with caplog.at_level(logging.WARNING, logger="modelyard.inference"):
        loaded = load_runtime(directory, "tensorrt", "cpu")
    assert type(loaded) is TextClassifier and "unknown runtime 'tensorrt'" in caplog.text

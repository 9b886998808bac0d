"""The monitor flow on a model the retrain flow produced: a window of in-distribution traffic is
healthy, a window of shifted traffic (and wrong answers per the feedback) is degraded; each run
leaves a row and an artifact, and a degraded one emits the event and responds: an alert when
too few labels are new, nothing twice for the same labels, the next dataset version when there
are enough."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import numpy as np
import pytest
import yaml

from modelyard.data.synthetic import ReviewSpec, generate_reviews
from tests.helpers.models import TINY_MODEL
from tests.helpers.stores import copy_home

pytestmark = pytest.mark.slow

NAME = TINY_MODEL


@pytest.fixture
def trained(tiny_production, tmp_path):
    """A copy of the session's tiny model and its stores for each test (the monitor writes to
    them), with monitor settings small enough for a test's traffic."""
    from modelyard.config import load_params

    home = copy_home(tiny_production.home, tmp_path / "home")
    params = load_params(tiny_production.params).updated(
        {
            "monitor.min_predictions": 100,
            "monitor.sample_size": 200,
            "monitor.min_feedback": 30,
            "monitor.min_feedback_for_retrain": 150,
        }
    )
    path = home / "params.yaml"
    path.write_text(yaml.safe_dump(params.model_dump(mode="json")))
    with pytest.MonkeyPatch.context() as patch:  # its own: a test's monkeypatch may undo
        patch.setenv("MODELYARD_HOME", str(home))
        yield home, path, f"sqlite:///{home.resolve()}/modelyard.db"


def _log(home, database: str, texts: list[str], truth: list[str] | None) -> None:
    """Predictions as the server logs them (the production model's own answers), and feedback."""
    from sqlalchemy import delete, insert

    from modelyard.registry.mlflow_registry import MlflowRegistry
    from modelyard.store.db import engine_for
    from modelyard.store.models import Feedback, Prediction

    classifier = MlflowRegistry(
        f"sqlite:///{home.resolve()}/mlflow.db", "modelyard"
    ).load_classifier(NAME, version="1")
    probabilities = classifier.predict_proba(texts)
    labels = classifier.labels
    now = datetime.now(UTC)
    rows = [
        {
            "id": str(uuid.uuid4()),
            "created_at": now,
            "model": NAME,
            "version": "1",
            "text": text,
            "text_sha256": "x" * 64,
            "label": labels[int(p.argmax())],
            "probabilities": dict(zip(labels, map(float, p), strict=True)),
            "latency_ms": 1.0,
        }
        for text, p in zip(texts, probabilities, strict=True)
    ]
    engine = engine_for(database)
    with engine.begin() as connection:
        connection.execute(delete(Prediction))
        connection.execute(delete(Feedback))
        connection.execute(insert(Prediction), rows)
        if truth is not None:
            connection.execute(
                insert(Feedback),
                [
                    {"prediction_id": row["id"], "label": label, "created_at": now}
                    for row, label in zip(rows, truth, strict=False)
                ],
            )
    engine.dispose()


def _shifted(seed: int) -> list[str]:
    """400 texts of another domain (words the training data never had)."""
    rng = np.random.default_rng(seed)
    words = ["firmware", "latency", "kubernetes", "cluster", "invoice", "quota", "timeout"]
    return [" ".join(rng.choice(words, size=int(rng.integers(20, 40)))) for _ in range(400)]


def _runs(database: str) -> list[tuple[bool, int]]:
    """(degraded, predictions) of each monitor run recorded, oldest first."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT degraded, predictions FROM monitor_runs ORDER BY id")
        ).all()
    engine.dispose()
    return [(bool(degraded), predictions) for degraded, predictions in rows]


def test_in_distribution_traffic_is_healthy(trained):
    from flows.monitor import monitor

    home, params, database = trained
    reviews = generate_reviews(ReviewSpec(rows=400, seed=99))
    _log(home, database, [t for t, _ in reviews], [label for _, label in reviews][:100])
    report = monitor(params_path=str(params))
    assert not report["degraded"], report
    assert {t["name"] for t in report["tests"]} == {
        "text_length",
        "oov_rate",
        "embedding_mmd",
        "predicted_class_mix",
        "confidence",
    }
    assert report["quality"]["labelled"] == 100 and not report["quality"]["alarm"]
    assert [degraded for degraded, _ in _runs(database)] == [False]  # its run, recorded


def test_shifted_traffic_is_degraded_and_recorded(trained):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.monitor import monitor

    home, params, database = trained
    _log(home, database, _shifted(seed=1), ["neutral"] * 100)
    report = monitor(params_path=str(params))
    assert report["degraded"]
    alarms = {t["name"] for t in report["tests"] if t["alarm"]}
    assert {"text_length", "oov_rate", "embedding_mmd"} <= alarms
    assert _runs(database) == [(True, 400)]
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[f"monitor-{TINY_MODEL}"]))
        )
    assert any("DEGRADED" in a.data for a in artifacts)
    assert report["action"]["kind"] == "alert"  # 100 new labels, fewer than the 150 it needs


def test_a_repeated_alarm_with_no_new_labels_is_not_acted_on_again(trained):
    from flows.monitor import monitor

    home, params, database = trained
    _log(home, database, _shifted(seed=1), ["neutral"] * 100)
    first = monitor(params_path=str(params))
    assert first["degraded"] and first["action"]["kind"] == "alert"
    again = monitor(params_path=str(params))
    assert again["degraded"] and again["action"]["kind"] == "repeat"
    assert "no new labelled feedback since" in again["action"]["reason"]


def test_enough_feedback_becomes_the_next_dataset_version(trained, tmp_path, monkeypatch):
    """Degraded with enough new labels, in a project checkout: the feedback is merged into the
    production model's training data as the next dataset version, announced to the trigger."""
    from flows.monitor import monitor
    from modelyard.adapters.catalog import Catalog
    from tests.helpers.dvc import make_dvc_project

    home, params, database = trained
    project = make_dvc_project(tmp_path / "project", tmp_path / "remote")
    monkeypatch.chdir(project)
    labels = ["negative", "neutral", "positive"]
    _log(home, database, _shifted(seed=2), [labels[i % 3] for i in range(400)])
    report = monitor(params_path=str(params))
    action = report["action"]
    assert report["degraded"] and action["kind"] == "new-data", action
    assert action["new_feedback"] == 400 and action["dataset"] == "reviews@1"
    assert action["event"] == "modelyard.dataset.added"
    (entry,) = Catalog(project).versions("reviews")
    assert entry.rows == 1500 + 400

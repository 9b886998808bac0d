"""`privacy.mode: redacted` end to end: an e-mail address, a card number and an international
phone number planted in what users send never reach the platform database, a dataset version
built from feedback (file, DVC cache and remote), or the MLflow store (the model's input
example); an order number beside them is kept. Every store is searched byte by byte, not through
the code that wrote it."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pandas as pd

from modelyard.config import PrivacyParams, ServingParams
from modelyard.registry.mlflow_registry import MlflowRegistry
from modelyard.serving.app import create_app
from tests.helpers.dvc import make_dvc_project
from tests.helpers.models import register_tiny_versions
from tests.helpers.servers import ServerThread

EMAIL, CARD, PHONE = "jane.doe@example.com", "4111 1111 1111 1111", "+44 7700 900123"
PLANTED = [
    EMAIL.encode(),
    CARD.encode(),
    CARD.replace(" ", "").encode(),
    PHONE.encode(),
    b"7700 900123",
    b"7700900123",
]


def _leaks(root: Path) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path}: {p.decode()}" for p in PLANTED if p in data]
    return found


def test_redacted_mode_stores_no_planted_personal_data(
    tmp_path, tiny_params, small_reviews, monkeypatch
):
    from modelyard.adapters.feedback import add_feedback_version
    from modelyard.data.dataset import Splits
    from tasks.registry import log_model

    stores = tmp_path / "stores"
    stores.mkdir()
    uri, database = f"sqlite:///{stores}/mlflow.db", f"sqlite:///{stores}/modelyard.db"
    registry = MlflowRegistry(uri, "privacy", (stores / "mlruns").as_uri())
    register_tiny_versions(registry, "private", stores, seeds=(1,))
    privacy = PrivacyParams(mode="redacted")

    # 1. The prediction log, through a real server; feedback on those predictions.
    app = create_app(
        lambda: MlflowRegistry(uri, "privacy"),
        "private",
        ServingParams(poll_interval_s=3600),
        database,
        None,
        privacy,
    )
    texts = [
        f"Great speaker, invoice to {EMAIL}",
        f"Refund to card {CARD} please",
        f"Call me at {PHONE} about order 114-3941689-8772042",
    ]
    with ServerThread(app) as server, httpx.Client(base_url=server.url) as http:
        answers = [
            a
            for _ in range(2)  # 60 texts per request: under the 64 limit
            for a in http.post("/predict", json={"texts": texts * 20}).json()["predictions"]
        ]
        for answer in answers:
            http.post("/feedback", json={"prediction_id": answer["id"], "label": "positive"})
        deadline = time.monotonic() + 30
        from sqlalchemy import create_engine, text

        while True:
            engine = create_engine(database)
            with engine.connect() as connection:
                stored = [r[0] for r in connection.execute(text("SELECT text FROM predictions"))]
            engine.dispose()
            if len(stored) == 120:
                break
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert "Great speaker, invoice to [EMAIL]" in stored
    assert "Refund to card [CARD] please" in stored
    assert "Call me at [PHONE] about order 114-3941689-8772042" in stored

    # 2. A dataset version built from that feedback.
    project = make_dvc_project(tmp_path / "project", tmp_path / "remote")
    monkeypatch.chdir(project)
    params = tiny_params.updated(
        {
            "model.name": "private",
            "privacy.mode": "redacted",
            "validation.max_duplicate_fraction": 0.2,
        }
    )
    added, feedback = add_feedback_version(
        str(small_reviews), "reviews", params, database, project, tmp_path / "cache"
    )
    assert added.created and feedback.labelled == 120
    version_file = (project / added.entry.path).read_text()
    assert "invoice to [EMAIL]" in version_file and "[CARD]" in version_file

    # 3. The MLflow store: a model whose input example comes from texts with personal data.
    test = pd.DataFrame({"text": texts, "label": ["positive"] * 3})
    run_id = registry.start_run("privacy", {})
    log_model.fn(registry, run_id, stores / "model-1", Splits(test, test, test), privacy)
    registry.end_run(run_id)

    assert _leaks(stores) == [] and _leaks(project) == [] and _leaks(tmp_path / "remote") == []

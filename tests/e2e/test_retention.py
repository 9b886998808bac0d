"""The retention flow applies privacy.retention_days (and does nothing when it is unset)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import yaml

pytestmark = pytest.mark.slow


def test_retention_flow(prefect_api, tmp_path, monkeypatch, real_params):
    from sqlalchemy import insert

    from flows.retention import retention
    from modelyard.store.db import engine_for
    from modelyard.store.models import Prediction

    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path))
    now = datetime.now(UTC)
    engine = engine_for(f"sqlite:///{tmp_path.resolve()}/modelyard.db")
    with engine.begin() as connection:
        connection.execute(
            insert(Prediction),
            [
                {
                    "id": name,
                    "created_at": now - timedelta(days=age),
                    "model": "m",
                    "version": "1",
                    "text": "t",
                    "text_sha256": "0" * 64,
                    "label": "a",
                    "probabilities": {"a": 1.0},
                    "latency_ms": 1.0,
                }
                for name, age in (("old", 100), ("new", 1))
            ],
        )
    engine.dispose()
    unset = tmp_path / "unset.yaml"
    unset.write_text(yaml.safe_dump(real_params.model_dump(mode="json")))
    assert retention(params_path=str(unset))["deleted"] is False
    thirty = tmp_path / "thirty.yaml"
    thirty.write_text(
        yaml.safe_dump(real_params.updated({"privacy.retention_days": 30}).model_dump(mode="json"))
    )
    result = retention(params_path=str(thirty))
    assert (result["predictions"], result["feedback"]) == (1, 0)

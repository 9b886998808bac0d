"""The guarded production pointer at the server: a move of `production` made outside ModelYard
(a direct MlflowClient call, as the MLflow UI or API would make it) is not followed — the
server keeps, or at startup loads, the version the audit trail records and reports the move on
/metadata and /metrics — while a move made through `models promote` is followed. Two tiny
registered versions (untrained), a real registry, a real platform database, real HTTP."""

from __future__ import annotations

from contextlib import contextmanager

import httpx
import pytest

from modelyard.config import ServingParams
from modelyard.registry.mlflow_registry import PRODUCTION, MlflowRegistry
from modelyard.serving.app import create_app
from tests.helpers.models import tiny_store
from tests.helpers.servers import ServerThread

NAME = "guarded-served"
TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Versions 1 and 2; production → 1, recorded in the platform database's audit trail."""
    from modelyard.store.audit import AuditLog

    root = tmp_path_factory.mktemp("guarded-serving")
    registry, _ = tiny_store(root, "guarded-serving", NAME)
    database = f"sqlite:///{root}/platform.db"
    audit = AuditLog.from_url(database)
    audit.move(registry, NAME, PRODUCTION, "1", kind="manual", actor="user:ann", reason="first")
    yield registry, audit, database
    audit.engine.dispose()


@contextmanager
def serving(registry, database):
    app = create_app(
        lambda: MlflowRegistry(registry.tracking_uri, "guarded-serving"),
        NAME,
        ServingParams(poll_interval_s=3600),
        database,
        TOKEN,
    )
    with ServerThread(app) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        yield http


def seen(http) -> tuple[str, dict | None, float]:
    """(version served, /metadata's tampered, the modelyard_registry_tampered gauge), after a
    reload (the poll, now)."""
    reload = http.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
    assert reload.status_code == 200 and reload.json()["error"] is None, reload.text
    meta = http.get("/metadata").json()
    gauge = next(
        float(line.rsplit(" ", 1)[1])
        for line in http.get("/metrics").text.splitlines()
        if line.startswith("modelyard_registry_tampered ")
    )
    return meta["version"], meta["tampered"], gauge


def test_a_move_outside_modelyard_is_not_followed_and_a_recorded_one_is(store):
    from mlflow import MlflowClient

    from modelyard.adapters.manual_moves import promote_by_hand, roll_back

    registry, audit, database = store
    with serving(registry, database) as http:
        assert seen(http) == ("1", None, 0.0)
        client = MlflowClient(tracking_uri=registry.tracking_uri)
        client.set_registered_model_alias(NAME, PRODUCTION, "2")  # the MLflow UI/API
        version, tampered, gauge = seen(http)
        assert (version, gauge) == ("1", 1.0)
        assert (tampered["registry"], tampered["recorded"]) == ("2", "1")
        assert "moved outside ModelYard" in tampered["message"]
        with serving(registry, database) as fresh:  # a server starting now loads the recorded one
            assert seen(fresh)[:2] == ("1", tampered)

        roll_back(registry, audit, NAME, None, "user:ann", "put back", False, ("ann",))
        assert seen(http) == ("1", None, 0.0)
        promote_by_hand(registry, audit, NAME, PRODUCTION, "2", "user:ann", "ok", False, ("ann",))
        assert seen(http) == ("2", None, 0.0)  # an approver's promote is followed
    assert audit.latest(NAME, PRODUCTION).actor == "user:ann"

"""The retrain flow's last step against real model servers: a server that picks up the new
production passes; one that keeps answering with the old version fails the deployment, and
`production` goes back (audited) before the flow fails with the reason."""

from __future__ import annotations

import pytest
import yaml

from tests.helpers.servers import ServerThread

pytestmark = pytest.mark.slow

NAME = "deployed"
TOKEN = "deploy-token"


@pytest.fixture(scope="module")
def env(tmp_path_factory, monkeypatch_module, tiny_params, small_reviews):
    home = tmp_path_factory.mktemp("deploy-home")
    monkeypatch_module.setenv("MODELYARD_HOME", str(home))
    monkeypatch_module.setenv("MODELYARD_ADMIN_TOKEN", TOKEN)
    params = tiny_params.updated(
        {
            "model.name": NAME,
            "data.path": str(small_reviews),
            "gate.min_class_recall": 0.0,
            "gate.max_slice_regression": 0.5,
            "deploy.timeout_s": 3,
        }
    )
    return {
        "home": home,
        "params": params,
        "uri": f"sqlite:///{home.resolve()}/mlflow.db",
        "db": f"sqlite:///{home.resolve()}/modelyard.db",
    }


def _retrain(env, name: str, **overrides):
    from flows.retrain import retrain

    path = env["home"] / f"{name}.yaml"
    path.write_text(yaml.safe_dump(env["params"].updated(overrides).model_dump(mode="json")))
    return retrain(params_path=str(path), return_state=True)


def _server(env, alias: str) -> ServerThread:
    from modelyard.config import ServingParams
    from modelyard.registry.mlflow_registry import MlflowRegistry
    from modelyard.serving.app import create_app

    app = create_app(
        lambda: MlflowRegistry(env["uri"], "modelyard"),
        NAME,
        ServingParams(alias=alias, poll_interval_s=3600),
        env["db"],
        TOKEN,
    )
    return ServerThread(app)


def test_failed_deployment_rolls_production_back(prefect_api, env):
    from mlflow import MlflowClient

    from modelyard.store.audit import AuditLog

    client = MlflowClient(tracking_uri=env["uri"], registry_uri=env["uri"])
    first = _retrain(env, "first", **{"train.epochs": 3})  # weaker: the next one improves on it
    assert first.is_completed() and first.result().production_version_after == "1"
    client.set_registered_model_alias(NAME, "pinned", "1")

    with _server(env, "production") as follower, _server(env, "pinned") as stuck:
        failed = _retrain(env, "second", **{"deploy.servers": [follower.url, stuck.url]})
        assert failed.is_failed()
        message = " ".join(failed.message.split())
        assert f"deployment of {NAME} version 2 failed" in message
        assert f"{stuck.url}: still reports version 1 after 3 s, not version 2" in message
        assert follower.url not in message  # that one did pick up version 2
        assert "production rolled back to version 1" in message
        assert str(client.get_model_version_by_alias(NAME, "production").version) == "1"
        assert client.get_model_version(NAME, "2").tags["deploy"] == "failed"
        moves = AuditLog.from_url(env["db"]).history(NAME, "production")
        assert [(m.kind, m.from_version, m.to_version) for m in moves] == [
            ("promote", None, "1"),
            ("promote", "1", "2"),
            ("rollback", "2", "1"),
        ]
        assert moves[-1].actor.startswith("flow-run:") and "deploy check failed" in moves[-1].reason
        import httpx

        assert httpx.get(f"{follower.url}/metadata").json()["version"] == "1"  # told to reload

        passed = _retrain(env, "third", **{"deploy.servers": [follower.url]})
        assert passed.is_completed(), passed.message
        assert passed.result().production_version_after == "3"
        assert httpx.get(f"{follower.url}/metadata").json()["version"] == "3"

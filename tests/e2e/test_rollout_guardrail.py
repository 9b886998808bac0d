"""A canary whose challenger fails, end to end: a real server (uvicorn in a thread) on a copy of
the session's tiny model (version 1 in production, its weights registered again as version 2,
the challenger of a 50% canary), real HTTP traffic with varied X-Rollout-Key, the prediction log
the server writes, and the rollout flow against a real (temporary) Prefect API: the error
guardrail aborts the rollout within five of the challenger's requests, the challenger alias is
removed, production stays, and the server stops routing to the challenger."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from modelyard.serving.challenger import ROLLOUT_KEY_HEADER, canary_share
from tests.helpers.models import TINY_MODEL, TINY_TEXTS
from tests.helpers.servers import ServerThread
from tests.helpers.stores import TrainedHome, copy_home
from tests.helpers.wait import wait_until

pytestmark = pytest.mark.slow

NAME = TINY_MODEL
TOKEN = "guardrail-admin"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# The error guardrail's promise (modelyard.rollout): a challenger failing every request against
# an error-free champion with as many requests is aborted after this many of its own.
BOUND = 5


@pytest.fixture
def home(tiny_production: TrainedHome, tmp_path: Path) -> Iterator[Path]:
    """A copy of the session's stores, MODELYARD_HOME pointing at it: version 1's weights
    registered again as version 2, the `challenger` of an open canary at weight 0.5 (audited,
    as a retrain with `rollout.strategy: canary` opens it), and params with that policy."""
    from modelyard.adapters.rollout_actions import Opening, Stores
    from modelyard.config import Settings, load_params

    home = copy_home(tiny_production.home, tmp_path / "home")
    policy = {"rollout.strategy": "canary", "rollout.canary_weight": 0.5}
    params = load_params(tiny_production.params).updated({**policy, "rollout.min_requests": 50})
    (home / "params.yaml").write_text(yaml.safe_dump(params.model_dump(mode="json")))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODELYARD_HOME", str(home))
        stores = Stores.from_settings(Settings())
        found = stores.registry.client.get_model_version(NAME, "1")
        tags = stores.registry.version_info(NAME, "1").tags
        assert stores.registry.register(found.source, NAME, found.run_id, tags) == "2"
        opening = Opening(stores, NAME, "2", "canary", 0.5, "test:opened")
        with stores.audit.promotion_lock(NAME):
            opening("1", "passed the gate", _Quiet())
        assert opening.opened is not None, opening.refusal
        stores.audit.engine.dispose()
        yield home


class _Quiet:
    def info(self, msg: str, *args: object) -> None:
        pass


class _Failing:
    """A classifier whose every prediction raises: the challenger made to fail."""

    labels = ("negative", "neutral", "positive")
    runtime = "eager"

    def predict_proba(self, texts: list[str], batch_size: int = 32) -> Any:
        raise RuntimeError("the challenger broke")


def _app(home: Path) -> Any:
    """The model server on the copy's stores (MODELYARD_HOME), following production."""
    from modelyard.config import PrivacyParams, ServingParams, Settings
    from modelyard.registry.mlflow_registry import MlflowRegistry
    from modelyard.serving.app import create_app

    settings = Settings()
    return create_app(
        lambda: MlflowRegistry.from_settings(settings),
        NAME,
        ServingParams(poll_interval_s=3600),  # it moves on the admin reload, not on a timer
        settings.resolved_database_url(),
        TOKEN,
        PrivacyParams(mode="full"),
    )


def _reload(http: httpx.Client) -> dict[str, Any]:
    answer = http.post("/admin/reload", headers=AUTH)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _logged(home: Path) -> int:
    from sqlalchemy import create_engine, func, select

    from modelyard.store.models import Prediction

    engine = create_engine(f"sqlite:///{home / 'modelyard.db'}")
    try:
        with engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(Prediction)).scalar())
    finally:
        engine.dispose()


def _keys(challenger: bool) -> Iterator[str]:
    """Distinct client keys the canary at 0.5 routes to the challenger (or to production)."""
    every = (f"user-{i}" for i in itertools.count())
    return (key for key in every if (canary_share(key) < 0.5) == challenger)


def _send(http: httpx.Client, key: str, text: str) -> httpx.Response:
    return http.post("/predict", json={"text": text}, headers={ROLLOUT_KEY_HEADER: key})


def _until_aborted(http: httpx.Client, home: Path) -> tuple[int, Any]:
    """Pairs of requests, one for production and one for the challenger (an even mix, as a 50%
    canary gets), each of a new key, and the rollout flow run after every pair from the
    (BOUND - 1)th on, once the log holds it (as its schedule would, often; before, the evidence
    only grows towards the same verdict): (the challenger's requests when the flow ended the
    rollout, the flow's result)."""
    from flows.rollout import rollout
    from modelyard.rollout import Outcome

    champion_keys, challenger_keys = _keys(challenger=False), _keys(challenger=True)
    for sent in range(1, 2 * BOUND + 1):
        text = TINY_TEXTS[sent % len(TINY_TEXTS)]
        answered = _send(http, next(champion_keys), text)
        assert answered.status_code == 200 and answered.json()["model_version"] == "1"
        failed = _send(http, next(challenger_keys), text)  # the challenger's share: an error
        assert failed.status_code == 500 and "the challenger broke" in failed.text, failed.text
        if sent < BOUND - 1:
            continue
        rows = 2 * sent  # the log writer is asynchronous: the flow reads what it has written
        wait_until(lambda rows=rows: _logged(home) >= rows, f"fewer than {rows} rows logged")
        done = rollout(params_path=str(home / "params.yaml"), model=NAME)
        if done.outcome is not Outcome.CONTINUE:
            return sent, done
    raise AssertionError(f"the rollout was still open after {2 * BOUND} failed requests")


def test_a_failing_canary_is_rolled_back_by_the_error_guardrail(prefect_api, home):
    from modelyard.adapters.rollout_actions import Decided, Stores
    from modelyard.config import Settings
    from modelyard.rollout import Outcome
    from modelyard.store.rollouts import RolloutState

    app = _app(home)
    with ServerThread(app) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        assert _reload(http)["challenger"] == "2"
        follower = app.state.serving.challenger
        follower.current = replace(follower.current, classifier=_Failing())
        sent, done = _until_aborted(http, home)
        assert (done.outcome, done.production) == (Outcome.ABORT, "1"), done
        assert sent == BOUND  # aborted at the 5th of the challenger's requests, not the 50th
        assert "The challenger failed 5 of 5 requests (100.0%) against the champion's 0 of 5" in (
            done.summary
        )
        assert "even before 50 requests each" in done.summary
        stores = Stores.from_settings(Settings())
        (closed,) = stores.rollouts.history(NAME)
        assert closed.state is RolloutState.ABORTED and stores.rollouts.current(NAME) is None
        recorded = Decided.from_dict(closed.evidence)
        assert recorded is not None and recorded.outcome is Outcome.ABORT
        figures = recorded.statistics
        assert (figures["challenger_requests"], figures["challenger_errors"]) == (sent, sent)
        assert (figures["champion_requests"], figures["champion_errors"]) == (sent, 0)
        assert stores.registry.alias_version(NAME, "challenger") is None
        assert stores.registry.alias_version(NAME, "production") == "1"
        assert [m.to_version for m in stores.audit.history(NAME, "production")] == ["1"]
        last = stores.audit.history(NAME)[-1]
        assert (last.alias, last.kind, last.from_version, last.to_version) == (
            "challenger",
            "rollout",
            "2",
            "",
        )
        # The server holds the challenger until its next poll of the rollout: the reload.
        assert _reload(http)["challenger"] is None
        assert http.get("/metadata").json()["rollout"] is None
        back = _send(http, next(_keys(challenger=True)), "after the abort")
        assert back.status_code == 200 and back.json()["model_version"] == "1", back.text

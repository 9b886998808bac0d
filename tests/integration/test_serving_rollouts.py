"""Rollouts on real servers (uvicorn in a thread), a real MLflow registry with two tiny model
versions and a real platform database holding the rollout record: a shadow logs both versions'
predictions under one request id while production answers; a canary routes each key to the same
version on two replicas and names the version that answered; a version that fails gets error
rows; a closed rollout is no longer followed, and its shadow process is gone, as it is when the
server stops; /metadata and /metrics show the rollout; a `modelyard serve` killed mid-traffic
is followed by a server with the same rollout and routing."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from modelyard.config import PrivacyParams, ServingParams, load_params
from modelyard.inference import TextClassifier
from modelyard.registry.mlflow_registry import MlflowRegistry
from modelyard.serving.app import create_app
from modelyard.serving.challenger import ROLLOUT_KEY_HEADER, canary_share
from modelyard.store.rollouts import RolloutState, RolloutStore
from modelyard.tags import PRODUCTION, STAGING
from tests.helpers.models import TINY_TEXTS as TEXTS
from tests.helpers.models import tiny_store
from tests.helpers.paths import REPO
from tests.helpers.servers import ServerThread, free_port, running
from tests.helpers.wait import wait_until

NAME = "rolled-out"
TOKEN = "rollout-admin"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Two registered versions of a tiny model: production → 1, staging → 1."""
    root = tmp_path_factory.mktemp("rollouts")
    registry, uri = tiny_store(root, "rollout-tests", NAME)
    registry.set_alias(NAME, STAGING, "1")
    return uri, root


@contextmanager
def serving(store, database: str, alias: str = PRODUCTION) -> Iterator[tuple[str, Any]]:
    """A real server on a free port following `alias`: (base URL, app)."""
    uri, _ = store
    app = create_app(
        lambda: MlflowRegistry(uri, "rollout-tests"),
        NAME,
        ServingParams(alias=alias, poll_interval_s=3600),
        database,
        TOKEN,
        PrivacyParams(mode="full"),
    )
    with ServerThread(app) as server:
        yield server.url, app


def _database(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/platform-{uuid.uuid4().hex[:6]}.db"


def _open(database: str, strategy: str, weight: float = 0.0) -> int:
    return RolloutStore.from_url(database).open(NAME, "1", "2", strategy, weight, "test").id


def _reload(http: httpx.Client) -> dict[str, Any]:
    answer = http.post("/admin/reload", headers=AUTH)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _rows(database: str) -> list[dict[str, Any]]:
    from sqlalchemy import create_engine, text

    engine = create_engine(database)
    try:
        with engine.connect() as connection:
            query = text("SELECT * FROM predictions")
            return [dict(row._mapping) for row in connection.execute(query)]
    finally:
        engine.dispose()


def _wait_rows(database: str, count: int) -> list[dict[str, Any]]:
    def enough() -> list[dict[str, Any]] | None:
        rows = _rows(database)
        return rows if len(rows) >= count else None

    return wait_until(enough, f"fewer than {count} prediction rows", timeout_s=60)


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def _labels(store, version: str, texts: list[str]) -> list[str]:
    return TextClassifier.load(store[1] / f"model-{version}").predict(texts)


def test_shadow_logs_both_versions_under_one_request_id(store, tmp_path):
    database = _database(tmp_path)
    with serving(store, database) as (url, app), httpx.Client(base_url=url, timeout=60) as http:
        rollout_id = _open(database, "shadow")
        assert _reload(http)["challenger"] == "2"
        meta = http.get("/metadata").json()
        assert (meta["version"], meta["rollout"]["id"]) == ("1", rollout_id)
        assert meta["rollout"]["strategy"] == "shadow" and meta["rollout"]["challenger_loaded"]
        answered = http.post("/predict", json={"texts": TEXTS}).json()
        assert {p["model_version"] for p in answered["predictions"]} == {"1"}
        rows = _wait_rows(database, 2 * len(TEXTS))
        served = {row["id"]: row for row in rows if row["role"] == "served"}
        shadow = {row["request_id"]: row for row in rows if row["role"] == "shadow"}
        ids = [p["id"] for p in answered["predictions"]]
        assert set(served) == set(shadow) == set(ids)
        assert all(served[i]["request_id"] == i and served[i]["version"] == "1" for i in ids)
        assert [shadow[i]["version"] for i in ids] == ["2"] * len(TEXTS)
        assert [shadow[i]["text"] for i in ids] == TEXTS
        assert [shadow[i]["label"] for i in ids] == _labels(store, "2", TEXTS)
        assert [p["label"] for p in answered["predictions"]] == _labels(store, "1", TEXTS)
        metrics = http.get("/metrics").text
        served_count = 'modelyard_version_predictions_total{role="served",version="1"}'
        assert _metric(metrics, served_count) == len(TEXTS)
        shadow_count = 'modelyard_version_predictions_total{role="shadow",version="2"}'
        assert _metric(metrics, shadow_count) == len(TEXTS)
        assert _metric(metrics, "modelyard_shadow_scored") == len(TEXTS)
        assert _metric(metrics, "modelyard_shadow_dropped") == 0
        assert _metric(metrics, "modelyard_shadow_queue_depth") == 0
        assert _metric(metrics, "modelyard_rollout_open") == 1
        assert _metric(metrics, "modelyard_challenger_version") == 2
        assert 'modelyard_version_seconds_count{role="shadow",version="2"}' in metrics

        shadow_state = app.state.serving.shadow
        child = shadow_state.child_pid  # the challenger scored in a process of its own
        assert child is not None and child != os.getpid() and running(child)

        RolloutStore.from_url(database).close(rollout_id, RolloutState.ABORTED, "test", "done")
        assert _reload(http)["challenger"] is None
        assert http.get("/metadata").json()["rollout"] is None
        assert http.post("/predict", json={"text": "after"}).status_code == 200
        # Offered on the request path before the answer: nothing was, the rollout is closed.
        assert shadow_state.scored + shadow_state.depth == len(TEXTS)
        wait_until(lambda: not running(child), "the shadow process outlived the rollout", 60)
        assert shadow_state.child_pid is None


def test_the_shadow_process_ends_with_the_server(store, tmp_path):
    database = _database(tmp_path)
    with serving(store, database) as (url, app), httpx.Client(base_url=url, timeout=60) as http:
        _open(database, "shadow")
        assert _reload(http)["challenger"] == "2"
        answered = http.post("/predict", json={"texts": TEXTS}).json()
        rows = _wait_rows(database, 2 * len(TEXTS))  # the process answered: it is up
        child = app.state.serving.shadow.child_pid
        assert child is not None and running(child)
    # The rollout is still open: only the server's shutdown stopped the process.
    assert not running(child)
    ids = {p["id"] for p in answered["predictions"]}
    assert {row["request_id"] for row in rows if row["role"] == "shadow"} == ids


def _post(http: httpx.Client, key: str | None) -> dict[str, Any]:
    headers = {ROLLOUT_KEY_HEADER: key} if key is not None else {}
    answer = http.post("/predict", json={"texts": TEXTS[:2]}, headers=headers)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_canary_routes_a_key_the_same_way_on_every_replica(store, tmp_path):
    database = _database(tmp_path)
    keys = [f"user-{i}" for i in range(16)]
    expected = {key: "2" if canary_share(key) < 0.5 else "1" for key in keys}
    assert set(expected.values()) == {"1", "2"}  # both sides of the weight are tried
    with (
        serving(store, database) as (one, _),
        serving(store, database) as (two, _),
        httpx.Client(base_url=one, timeout=60) as first,
        httpx.Client(base_url=two, timeout=60) as second,
    ):
        _open(database, "canary", 0.5)
        assert _reload(first)["challenger"] == _reload(second)["challenger"] == "2"
        rollout = first.get("/metadata").json()["rollout"]
        assert (rollout["strategy"], rollout["weight"], rollout["challenger"]) == (
            "canary",
            0.5,
            "2",
        )
        answers = []
        for key in keys:
            for http in (first, second, first):
                body = _post(http, key)
                assert body["model_version"] == expected[key], key
                assert {p["model_version"] for p in body["predictions"]} == {expected[key]}
                answers.append(body)
        for _ in range(8):  # no key: routed by the request's first prediction id
            body = _post(first, None)
            share = canary_share(body["predictions"][0]["id"])
            assert body["model_version"] == ("2" if share < 0.5 else "1")
            answers.append(body)
        challenger_texts = 2 * sum(body["model_version"] == "2" for body in answers)
        metrics = first.get("/metrics").text + second.get("/metrics").text
    rows = {row["id"]: row for row in _wait_rows(database, 2 * len(answers))}
    for body in answers:
        for prediction in body["predictions"]:
            row = rows[prediction["id"]]
            assert (row["version"], row["role"]) == (body["model_version"], "served")
    count = 'modelyard_version_predictions_total{role="served",version="2"}'
    found = sum(
        float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines() if line.startswith(count)
    )
    assert found == challenger_texts
    assert _metric(metrics, "modelyard_rollout_weight") == 0.5


def test_a_failing_challenger_gets_error_rows(store, tmp_path):
    database = _database(tmp_path)
    with serving(store, database) as (url, app), httpx.Client(base_url=url, timeout=60) as http:
        _open(database, "canary", 0.5)
        _reload(http)
        follower = app.state.serving.challenger
        follower.current = replace(follower.current, classifier=_Failing())
        to_challenger = next(f"k{i}" for i in range(100) if canary_share(f"k{i}") < 0.5)
        to_champion = next(f"k{i}" for i in range(100) if canary_share(f"k{i}") >= 0.5)
        failed = http.post(
            "/predict", json={"texts": TEXTS[:2]}, headers={ROLLOUT_KEY_HEADER: to_challenger}
        )
        assert failed.status_code == 500 and "challenger broke" in failed.text
        assert _post(http, to_champion)["model_version"] == "1"
        metrics = http.get("/metrics").text
        assert _metric(metrics, 'modelyard_version_errors_total{role="served",version="2"}') == 2
    rows = _wait_rows(database, 4)
    errors = [row for row in rows if row["role"] == "error"]
    assert [(row["version"], row["label"], json.loads(row["probabilities"])) for row in errors] == [
        ("2", "", {}),
        ("2", "", {}),
    ]
    assert sorted(row["text"] for row in errors) == sorted(TEXTS[:2])
    assert all(row["request_id"] == row["id"] for row in errors)
    assert {row["version"] for row in rows if row["role"] == "served"} == {"1"}


class _Failing:
    labels = ("negative", "neutral", "positive")
    runtime = "eager"

    def predict_proba(self, texts: list[str], batch_size: int = 32) -> Any:
        raise RuntimeError("the challenger broke")


def test_promotion_switches_to_the_held_challenger_and_staging_ignores_rollouts(store, tmp_path):
    database = _database(tmp_path)
    registry = MlflowRegistry(store[0], "rollout-tests")
    with (
        serving(store, database) as (url, app),
        serving(store, database, alias=STAGING) as (staged, _),
        httpx.Client(base_url=url, timeout=60) as http,
    ):
        rollout_id = _open(database, "shadow")
        assert _reload(http)["challenger"] == "2"
        with httpx.Client(base_url=staged, timeout=60) as staging:
            assert _reload(staging)["challenger"] is None
            assert staging.get("/metadata").json()["rollout"] is None
        held = app.state.serving.challenger.current.classifier
        try:
            registry.set_alias(NAME, PRODUCTION, "2")  # the rollout promotes it, then closes
            RolloutStore.from_url(database).close(
                rollout_id, RolloutState.PROMOTED, "test", "better"
            )
            answer = _reload(http)
        finally:
            registry.set_alias(NAME, PRODUCTION, "1")
        assert (answer["switched"], answer["version"], answer["challenger"]) == (True, "2", None)
        assert app.state.serving.follower.current.classifier is held  # not loaded again
        meta = http.get("/metadata").json()
        assert (meta["version"], meta["alias"], meta["rollout"]) == ("2", PRODUCTION, None)
        assert _post(http, "anyone")["model_version"] == "2"


def _serve_params(tmp_path: Path) -> Path:
    """A params file for `modelyard serve`: the project's, serving this module's model."""
    params = load_params(REPO / "params.yaml").updated({"model.name": NAME})
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params.model_dump(mode="json")))
    return path


@contextmanager
def served_process(
    store: tuple[str, Path], database: str, params: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`modelyard serve` in its own process on the module's registry and `database`, once it
    holds the open rollout's challenger: (its base URL, the process); killed on exit."""
    port = free_port()
    env = {
        **os.environ,
        "MODELYARD_HOME": str(params.parent),
        "MODELYARD_TRACKING_URI": store[0],
        "MODELYARD_DATABASE_URL": database,
        "MODELYARD_ADMIN_TOKEN": TOKEN,
    }
    command = [sys.executable, "-m", "modelyard", "serve", "--params", str(params)]
    log = params.parent / f"serve-{port}.log"
    with log.open("wb") as sink:  # a file, not a pipe: nobody reads it while the server runs
        server = subprocess.Popen(
            [*command, "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=sink
        )
    url = f"http://127.0.0.1:{port}"

    def holding_the_challenger() -> bool:
        try:
            rollout = httpx.get(f"{url}/metadata", timeout=10).json().get("rollout")
        except (httpx.HTTPError, ValueError):
            return False
        return rollout is not None and bool(rollout["challenger_loaded"])

    try:
        alive = lambda: server.poll() is None  # noqa: E731
        try:
            wait_until(holding_the_challenger, "no challenger served", 120, 0.1, alive)
        except AssertionError as error:
            raise AssertionError(f"{error}; its log:\n{log.read_text()[-3000:]}") from None
        yield url, server
    finally:
        if server.poll() is None:
            server.kill()
        server.wait(30)


class Traffic:
    """Requests of rotating keys sent to a server from a thread until the block ends or the
    server goes away; `answered`: (key, the version that answered) of each answer."""

    def __init__(self, url: str, keys: list[str]) -> None:
        self.url, self.keys = url, keys
        self.answered: list[tuple[str, str]] = []
        self.failure: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._send, daemon=True)

    def _send(self) -> None:
        try:
            with httpx.Client(base_url=self.url, timeout=30) as http:
                for key in itertools.cycle(self.keys):
                    if self._stop.is_set():
                        return
                    self.answered.append((key, _post(http, key)["model_version"]))
        except httpx.HTTPError:
            return  # the server went away mid-request
        except BaseException as error:  # noqa: BLE001 - re-raised in the test's thread
            self.failure = error

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)
        if self.failure is not None:
            raise self.failure


def test_a_server_killed_mid_traffic_comes_back_with_the_same_rollout_and_routing(
    store: tuple[str, Path], tmp_path: Path
) -> None:
    """`modelyard serve` in its own process, killed (SIGKILL) while it answers a canary's
    traffic; the server started after it on the same stores holds the same open rollout and
    routes every key as the killed one did. (The second server runs in this process: a second
    `modelyard serve` costs another 15-30 s of start-up on two busy cores, and what is tested
    of it, its state read again from the stores, is the same.)"""
    database = _database(tmp_path)
    rollout_id = _open(database, "canary", 0.5)
    before = RolloutStore.from_url(database).get(rollout_id)
    keys = [f"user-{i}" for i in range(8)]
    with served_process(store, database, _serve_params(tmp_path)) as (url, server):
        shown = httpx.get(f"{url}/metadata").json()["rollout"]
        assert (shown["id"], shown["strategy"], shown["weight"]) == (rollout_id, "canary", 0.5)
        with Traffic(url, keys) as traffic:
            enough = lambda: len(traffic.answered) >= 3 * len(keys)  # noqa: E731
            wait_until(enough, "no answers", 60, 0.01, lambda: server.poll() is None)
            server.send_signal(signal.SIGKILL)  # no graceful shutdown, requests in flight
            assert server.wait(30) == -signal.SIGKILL
    routed = dict(traffic.answered)
    assert set(traffic.answered) == set(routed.items())  # one version per key
    assert routed == {k: "2" if canary_share(k) < 0.5 else "1" for k in keys}
    assert set(routed.values()) == {"1", "2"}  # both sides of the canary had traffic
    killed = RolloutStore.from_url(database).get(rollout_id)
    assert killed == before and killed is not None and killed.is_open

    with serving(store, database) as (url, _), httpx.Client(base_url=url, timeout=60) as http:
        # By itself (no reload): a server reads the open rollout when it starts.
        def loaded() -> bool:
            rollout = http.get("/metadata").json()["rollout"]  # None until its first poll
            return rollout is not None and bool(rollout["challenger_loaded"])

        wait_until(loaded, "the new server did not load the challenger", 60)
        assert http.get("/metadata").json()["rollout"] == shown
        assert {key: _post(http, key)["model_version"] for key in keys} == routed
    assert RolloutStore.from_url(database).get(rollout_id) == before

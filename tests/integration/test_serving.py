"""The model server over real HTTP (uvicorn in a thread), a real MLflow registry with two tiny
model versions, and a real database: endpoints valid and invalid, a hot swap under concurrent
load, the prediction log, and a database that is down."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import pytest

from modelyard.config import PrivacyParams, ServingParams
from modelyard.inference import TextClassifier
from modelyard.registry.mlflow_registry import PRODUCTION, MlflowRegistry
from modelyard.serving.app import create_app
from tests.helpers.models import TINY_LABELS as LABELS
from tests.helpers.models import TINY_TEXTS as TEXTS
from tests.helpers.models import tiny_store
from tests.helpers.servers import ServerThread
from tests.helpers.wait import wait_until

NAME = "served"
TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Two registered versions of a tiny model, production → 1."""
    root = tmp_path_factory.mktemp("serving")
    _, uri = tiny_store(
        root, "serving-tests", NAME, tags=lambda seed: {"dataset_md5": f"md5-of-seed-{seed}"}
    )
    return uri, root


@contextmanager
def serving(
    store,
    database_url: str | None = None,
    token: str | None = TOKEN,
    name: str = NAME,
    privacy: str = "full",
    **knobs,
):
    """A real server on a free port: (base URL, app)."""
    uri, root = store
    settings = ServingParams(**{"poll_interval_s": 3600, **knobs})
    app = create_app(
        lambda: MlflowRegistry(uri, "serving-tests"),
        name,
        settings,
        database_url or f"sqlite:///{root}/predictions-{uuid.uuid4().hex[:6]}.db",
        token,
        PrivacyParams(mode=privacy),
    )
    with ServerThread(app) as server:
        yield server.url, app


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def test_endpoints_valid_and_invalid(store):
    with serving(store) as (url, _), httpx.Client(base_url=url, timeout=30) as http:
        assert http.get("/health").json() == {"status": "ok"}
        assert http.get("/ready").json() == {"status": "ready", "version": "1"}
        meta = http.get("/metadata").json()
        assert (meta["model"], meta["version"], meta["alias"]) == (NAME, "1", "production")
        assert meta["dataset_md5"] == "md5-of-seed-1" and meta["labels"] == LABELS
        assert meta["runtime"] == "eager"  # a version registered without an export

        one = http.post("/predict", json={"text": "superb sound"})
        assert one.status_code == 200
        (prediction,) = one.json()["predictions"]
        assert prediction["label"] in LABELS and prediction["model_version"] == "1"
        assert sum(prediction["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        uuid.UUID(prediction["id"])
        many = http.post("/predict", json={"texts": TEXTS}).json()
        assert [p["label"] for p in many["predictions"]] == TextClassifier.load(
            store[1] / "model-1"
        ).predict(TEXTS)

        def refused(body, status, *words, **kwargs):
            response = (
                http.post("/predict", json=body, **kwargs)
                if body is not None
                else http.post("/predict", **kwargs)
            )
            assert response.status_code == status, response.text
            for word in words:
                assert word in response.text, response.text

        refused(
            None, 422, "JSON", content=b"{not json", headers={"content-type": "application/json"}
        )
        refused({"text": "a", "texts": ["b"]}, 422, "exactly one of")
        refused({}, 422, "exactly one of")
        refused({"texts": []}, 422, "empty")
        refused({"texts": ["a", 3]}, 422, "string")
        refused({"text": "a", "extra": 1}, 422, "extra")
        refused({"texts": ["x"] * 65}, 413, "65 texts", "limit is 64")
        refused({"text": "y" * 5001}, 413, "5001 characters", "limit is 5000")

        _admin_reload_needs_the_token(http)

        schema = http.get("/openapi.json").json()
        assert {"PredictRequest", "PredictResponse", "FeedbackRequest"} <= set(
            schema["components"]["schemas"]
        )
        metrics = http.get("/metrics").text
        assert _metric(metrics, 'modelyard_requests_total{route="/predict",status="413"}') == 2
        assert _metric(metrics, 'modelyard_requests_total{route="/predict",status="200"}') == 2
        assert _metric(metrics, "modelyard_model_version") == 1
        assert "modelyard_batch_size_bucket" in metrics
        assert 'modelyard_request_seconds_count{route="/predict",status="200"} 2.0' in metrics
        assert "modelyard_prediction_log_queue_depth" in metrics

    with serving(store, token=None) as (url, _):
        off = httpx.post(f"{url}/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
        assert off.status_code == 403 and "MODELYARD_ADMIN_TOKEN" in off.text


def _admin_reload_needs_the_token(http: httpx.Client) -> None:
    assert http.post("/admin/reload").status_code == 401
    wrong = http.post("/admin/reload", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    ok = http.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.json() == {
        "switched": False,
        "version": "1",
        "error": None,
        "challenger": None,  # no rollout is open
        "challenger_error": None,
    }


def test_no_model_yet_is_alive_but_not_ready(store):
    with serving(store, name="never-registered") as (url, _), httpx.Client(base_url=url) as http:
        assert http.get("/health").status_code == 200
        ready = http.get("/ready")
        assert ready.status_code == 503 and "does not exist in the registry" in ready.text
        assert http.post("/predict", json={"text": "x"}).status_code == 503


def _rows(url: str, table: str) -> list[dict]:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return [dict(r._mapping) for r in connection.execute(text(f"SELECT * FROM {table}"))]
    finally:
        engine.dispose()


def _wait_rows(url: str, table: str, count: int) -> list[dict]:
    def enough() -> list[dict] | None:
        try:
            rows = _rows(url, table)
        except Exception:  # noqa: BLE001 - the table appears with the first write
            return None
        return rows if len(rows) >= count else None

    return wait_until(enough, f"fewer than {count} rows in {table}", timeout_s=60, interval_s=0.1)


@pytest.mark.parametrize("mode", ["full", "hashed"])
def test_predictions_and_feedback_are_logged(store, tmp_path, mode):
    database = f"sqlite:///{tmp_path}/platform.db"
    with serving(store, database, privacy=mode) as (url, _), httpx.Client(base_url=url) as http:
        answered = http.post("/predict", json={"texts": TEXTS}).json()["predictions"]
        rows = {row["id"]: row for row in _wait_rows(database, "predictions", 3)}
        for text, prediction in zip(TEXTS, answered, strict=True):
            row = rows[prediction["id"]]
            assert (row["model"], row["version"], row["label"]) == (NAME, "1", prediction["label"])
            assert row["text"] == (text if mode == "full" else None)
            assert len(row["text_sha256"]) == 64 and row["latency_ms"] > 0
        stored = http.post(
            "/feedback", json={"prediction_id": answered[0]["id"], "label": "positive"}
        )
        assert stored.status_code == 201
        assert (
            http.post(
                "/feedback", json={"prediction_id": answered[0]["id"], "label": "great"}
            ).status_code
            == 422
        )
        assert (
            http.post("/feedback", json={"prediction_id": "nope", "label": "positive"}).status_code
            == 422
        )
        (feedback,) = _rows(database, "feedback")
        assert (feedback["prediction_id"], feedback["label"]) == (answered[0]["id"], "positive")


def test_requests_are_answered_while_the_database_is_down(store):
    """Nothing listens on port 1: every write fails. Predictions still answer at once; the
    bounded queue fills, the rest is dropped and counted; feedback says 503."""
    down = "postgresql+psycopg://postgres@127.0.0.1:1/test?connect_timeout=2"
    with (
        serving(store, down, log_queue_size=5) as (url, _app),
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        for _ in range(20):
            assert http.post("/predict", json={"text": "still here"}).status_code == 200
        # Answered without waiting on the database: 14 or more answers found the log's queue
        # full (its writer stuck on the dead server) and were still given.
        metrics = http.get("/metrics").text
        assert _metric(metrics, "modelyard_prediction_log_queue_depth") <= 5
        assert _metric(metrics, "modelyard_prediction_log_dropped") >= 14
        assert _metric(metrics, "modelyard_prediction_log_written") == 0
        feedback = http.post(
            "/feedback", json={"prediction_id": str(uuid.uuid4()), "label": "positive"}
        )
        assert feedback.status_code == 503 and "database is unavailable" in feedback.text


class _Traffic:
    """Clients predicting without pause until `stop` is set: each response as (sent at, status,
    the versions that answered its texts)."""

    def __init__(self, url: str) -> None:
        self.url, self.stop, self.lock = url, threading.Event(), threading.Lock()
        self.responses: list[tuple[float, int, list[str]]] = []

    def client(self) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as http:
            while not self.stop.is_set():
                sent = time.monotonic()
                response = http.post("/predict", json={"texts": TEXTS})
                versions = (
                    [p["model_version"] for p in response.json()["predictions"]]
                    if response.status_code == 200
                    else []
                )
                with self.lock:
                    self.responses.append((sent, response.status_code, versions))

    def answered_since(self, instant: float, count: int = 20) -> None:
        def enough() -> bool:
            with self.lock:
                return sum(sent > instant for sent, _, _ in self.responses) >= count

        wait_until(enough, f"fewer than {count} answered requests in this phase", timeout_s=120)


def test_hot_swap_under_concurrent_load_drops_nothing(store):
    """Eight clients predict without pause while production moves 1 → 2 (admin reload) and
    back to 1 (found by polling): every request succeeds, every response is answered by one
    version, and once a switch has returned, no response comes from the old version. Each phase
    lasts until enough responses were sent in it, whatever the machine's speed."""
    uri, _ = store
    registry = MlflowRegistry(uri, "serving-tests")
    with serving(store, poll_interval_s=0.5, max_wait_ms=2) as (url, _):
        traffic = _Traffic(url)
        answered_since = traffic.answered_since
        with ThreadPoolExecutor(8) as pool:
            for _ in range(8):
                pool.submit(traffic.client)
            try:  # the clients stop however this ends, or the pool never exits
                answered_since(0.0)
                registry.set_alias(NAME, PRODUCTION, "2")
                reload = httpx.post(
                    f"{url}/admin/reload", timeout=60, headers={"Authorization": f"Bearer {TOKEN}"}
                ).json()
                # Switched by this call, or by the poller (every 0.5 s) a moment before it: both
                # are the server following production; either way it serves 2 once this returns.
                assert (reload["version"], reload["error"]) == ("2", None), reload
                swapped_to_2 = time.monotonic()
                answered_since(swapped_to_2)
                moving_back = time.monotonic()
                registry.set_alias(NAME, PRODUCTION, "1")  # no reload call: the poller finds it
                wait_until(
                    lambda: httpx.get(f"{url}/metadata").json()["version"] == "1",
                    "the poller never switched back",
                    timeout_s=30,
                )
                swapped_to_1 = time.monotonic()
                answered_since(swapped_to_1)
            finally:
                traffic.stop.set()

    responses = traffic.responses
    assert {status for _, status, _ in responses} == {200}, "a request failed during a swap"
    for _, _, versions in responses:
        assert len(set(versions)) == 1 and versions[0] in {"1", "2"}
    seen = [v[0] for _, _, v in responses]
    assert "2" in seen and seen.count("1") > 0
    assert all(v[0] == "2" for sent, _, v in responses if swapped_to_2 < sent < moving_back)
    assert all(v[0] == "1" for sent, _, v in responses if sent > swapped_to_1)


def test_explain_endpoint(store):
    text = "superb sound, <broke> after a week"
    with serving(store) as (url, _), httpx.Client(base_url=url, timeout=60) as http:
        answer = http.post("/explain", json={"text": text})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["model_version"] == "1" and body["label"] == body["predicted"] in LABELS
        assert [t["token"] for t in body["tokens"]] == [
            text[t["start"] : t["end"]] for t in body["tokens"]
        ]
        assert "sound" in [t["token"] for t in body["tokens"]]
        assert "&lt;" in body["html"] and "<broke>" not in body["html"]
        # Log-odds attributions that add up to f(text) - f(baseline), up to delta.
        assert body["quantity"] == "log-odds" and "modelyard-legend" in body["html"]
        total = sum(t["attribution"] for t in body["tokens"])
        assert abs(total - (body["score"] - body["baseline_score"])) <= body["delta"] + 1e-4
        assert {t["kind"] for t in body["tokens"]} <= {"word", "stop word", "punctuation"}
        # Deterministic, and the same explanation the library gives.
        assert http.post("/explain", json={"text": text}).json()["tokens"] == body["tokens"]
        other = next(label for label in LABELS if label != body["predicted"])
        towards = http.post("/explain", json={"text": text, "label": other}).json()
        assert (towards["label"], towards["predicted"]) == (other, body["predicted"])

        assert http.post("/explain", json={"text": text, "label": "spam"}).status_code == 422
        assert http.post("/explain", json={"text": ""}).status_code == 422
        assert http.post("/explain", json={"texts": [text]}).status_code == 422
        two = http.post("/explain", json={"text": text, "review": text})
        assert two.status_code == 422 and "exactly one text" in two.text
        too_long = http.post("/explain", json={"text": "a" * 6000})
        assert too_long.status_code == 413 and "max_chars_per_text" in too_long.json()["detail"]


def _keys(*args: str) -> str:
    """`modelyard keys ARGS` (on MODELYARD_DATABASE_URL): its output, asserted ok."""
    from typer.testing import CliRunner

    from modelyard.cli import app as cli

    result = CliRunner().invoke(cli, ["keys", *args])
    assert result.exit_code == 0, result.output
    return result.output


def _made_key(*scopes: str) -> tuple[str, str]:
    """A key with `scopes`, made by `modelyard keys create`: (its id, the token)."""
    out = _keys("create", "--name", "+".join(scopes), *(f"--scope={s}" for s in scopes))
    token = next(word for word in out.split() if word.startswith("myk_"))
    return token.split("_")[1], token


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _feedback_with_keys(http, answered, predict_key: str, feedback_key: str) -> tuple[str, str]:
    """Feedback refused without a key and with a key lacking the scope; stored with the
    feedback key and with the admin token: the two prediction ids labelled."""
    first, second = (p["id"] for p in answered.json()["predictions"][:2])
    label = {"label": "positive"}
    assert http.post("/feedback", json={"prediction_id": first, **label}).status_code == 401
    denied = http.post(
        "/feedback", json={"prediction_id": first, **label}, headers=_auth(predict_key)
    )
    assert denied.status_code == 403
    for prediction_id, token in ((first, feedback_key), (second, TOKEN)):
        stored = http.post(
            "/feedback", json={"prediction_id": prediction_id, **label}, headers=_auth(token)
        )
        assert stored.status_code == 201, stored.text
    return first, second


def test_api_keys_and_their_scopes(store, tmp_path, monkeypatch):
    """Keys made by `modelyard keys create` (on the platform database the server uses): each
    opens its own endpoints only, the admin token opens all, a revoked key none; every feedback
    row names its key and `data from-feedback`'s reading can keep to chosen keys."""
    from modelyard.adapters.feedback import read_feedback

    database = f"sqlite:///{tmp_path}/platform.db"
    monkeypatch.setenv("MODELYARD_DATABASE_URL", database)
    (predictor, predict_key), (labeller, feedback_key) = _made_key("predict"), _made_key("feedback")
    _, admin_key = _made_key("admin")
    auth, keys = _auth, _keys

    with (
        serving(store, database, require_keys=True, key_cache_s=0) as (url, _),
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        body = {"texts": TEXTS}
        anonymous = http.post("/predict", json=body)
        assert anonymous.status_code == 401 and "scope `predict`" in anonymous.text
        assert anonymous.headers["www-authenticate"] == "Bearer"
        assert http.post("/explain", json={"text": "x"}).status_code == 401
        answered = http.post("/predict", json=body, headers=auth(predict_key))
        assert answered.status_code == 200
        assert http.post("/predict", json=body, headers=auth(TOKEN)).status_code == 200
        wrong = http.post("/predict", json=body, headers=auth(feedback_key))
        assert wrong.status_code == 403 and "lacks the scope `predict`" in wrong.text
        bogus = http.post("/predict", json=body, headers=auth(predict_key[:-2] + "xx"))
        assert bogus.status_code == 401 and "not a valid API key" in bogus.text

        first, second = _feedback_with_keys(http, answered, predict_key, feedback_key)

        assert http.post("/admin/reload", headers=auth(predict_key)).status_code == 403
        assert http.post("/admin/reload", headers=auth(admin_key)).status_code == 200
        assert http.post("/admin/reload", headers=auth(TOKEN)).status_code == 200

        assert f"revoked API key {predictor}" in keys("revoke", predictor)
        revoked = http.post("/predict", json=body, headers=auth(predict_key))
        assert revoked.status_code == 401 and "revoked" in revoked.text

    listed = keys("list")
    assert predictor in listed and labeller in listed and "myk_" not in listed
    rows = {row["prediction_id"]: row["key_id"] for row in _rows(database, "feedback")}
    assert rows == {first: labeller, second: None}
    _wait_rows(database, "predictions", 3)
    assert read_feedback(database, NAME).labelled == 2
    assert read_feedback(database, NAME, keys=(labeller,)).labelled == 1
    assert read_feedback(database, NAME, keys=("someone-else",)).labelled == 0

    # Keys not required (the embedded default): open without one, a wrong one still refused.
    with serving(store, database) as (url, _), httpx.Client(base_url=url, timeout=30) as http:
        assert http.post("/predict", json={"text": "open"}).status_code == 200
        assert (
            http.post("/predict", json={"text": "x"}, headers=auth(predict_key)).status_code == 401
        )


def test_text_that_is_not_text_is_refused_naming_field_and_index(store):
    """A lone surrogate, NUL or a noncharacter in any text field: 422 with the field, the index
    and the position, never a 500, and the server keeps answering."""
    with serving(store) as (url, _), httpx.Client(base_url=url, timeout=30) as http:

        def sent(path: str, raw: str):
            # Written by hand: a JSON encoder would refuse the lone surrogate itself.
            return http.post(
                path, content=raw.encode(), headers={"content-type": "application/json"}
            )

        texts = sent("/predict", '{"texts": ["fine", "bad \\ud800 text"]}')
        assert texts.status_code == 422, texts.text
        (problem,) = texts.json()["detail"]
        assert problem["loc"] == ["body", "texts", 1] and "character 4 is U+D800" in problem["msg"]
        one = sent("/predict", '{"text": "nul \\u0000"}')
        assert one.status_code == 422 and one.json()["detail"][0]["loc"] == ["body", "text"]
        assert "U+0000" in one.text
        column = sent("/predict", '{"review": ["ok", "\\udfff"]}')
        assert column.status_code == 422 and "`review`[1]: character 0 is U+DFFF" in column.text
        assert sent("/explain", '{"text": "\\ufffe"}').status_code == 422
        label = sent("/feedback", f'{{"prediction_id": "{uuid.uuid4()}", "label": "\\ud83d"}}')
        assert label.status_code == 422 and label.json()["detail"][0]["loc"] == ["body", "label"]
        # A surrogate pair is one real character: accepted.
        assert sent("/predict", '{"text": "party \\ud83c\\udf89"}').status_code == 200


class _Poisoned:
    """The served model, raising on any batch that holds POISON; a batch holding HOLD waits for
    `hold` first (to line requests up behind it, or to keep one in flight)."""

    def __init__(self, inner) -> None:
        self.inner, self.calls, self.hold = inner, [], threading.Event()

    @property
    def labels(self):
        return self.inner.labels

    def predict_proba(self, texts, batch_size=128):
        self.calls.append(list(texts))
        if "HOLD" in texts:
            self.hold.wait(120)
        if "POISON" in texts:
            raise RuntimeError("this text breaks the model")
        return self.inner.predict_proba(texts, batch_size)


def _poison(app) -> _Poisoned:
    from dataclasses import replace

    follower = app.state.serving.follower
    wait_until(lambda: follower.current is not None, "no model loaded", timeout_s=60)
    poisoned = _Poisoned(follower.current.classifier)
    follower.current = replace(follower.current, classifier=poisoned)
    return poisoned


def test_a_request_that_breaks_the_model_fails_alone(store):
    """Six good requests and a poisoned one wait behind a held batch, so all seven share the
    next: it fails, and only the poisoned request gets an error (its own); the rest their
    answers, as their texts alone would give them."""
    with serving(store) as (url, app), ThreadPoolExecutor(8) as pool:
        poisoned = _poison(app)
        batcher = app.state.serving.batcher

        def post(text: str) -> httpx.Response:
            return httpx.post(f"{url}/predict", json={"text": text}, timeout=120)

        held = pool.submit(post, "HOLD")
        wait_until(lambda: poisoned.calls, "the held batch never ran", timeout_s=60)
        texts = [*TEXTS, "POISON", *TEXTS]
        futures = [pool.submit(post, text) for text in texts]
        wait_until(lambda: batcher.waiting == 7, "the requests never queued", timeout_s=60)
        poisoned.hold.set()
        answers = [future.result() for future in futures]
        assert held.result().status_code == 200

    assert sorted(poisoned.calls[1]) == sorted(texts)  # they did share a batch
    bad = answers.pop(3)
    assert bad.status_code == 500 and "this text breaks the model" in bad.json()["detail"]
    assert [a.status_code for a in answers] == [200] * 6
    alone = TextClassifier.load(store[1] / "model-1").predict(TEXTS)
    assert [a.json()["predictions"][0]["label"] for a in answers] == alone * 2


def test_shutdown_answers_what_is_in_flight(store, tmp_path):
    """A request in flight when the server is told to stop is answered; new connections are
    refused meanwhile."""
    uri, _ = store
    app = create_app(
        lambda: MlflowRegistry(uri, "serving-tests"),
        NAME,
        ServingParams(poll_interval_s=3600),
        f"sqlite:///{tmp_path}/platform.db",
        None,
    )
    server = ServerThread(app)
    with server, ThreadPoolExecutor(1) as pool:
        poisoned = _poison(app)
        held = pool.submit(httpx.post, f"{server.url}/predict", json={"text": "HOLD"}, timeout=120)
        wait_until(lambda: poisoned.calls, "the request never reached the model", timeout_s=60)
        server.server.should_exit = True

        def refused() -> bool:
            try:
                httpx.get(f"{server.url}/health", timeout=5)
            except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError):
                # Refused, or accepted by the closing socket and reset: not served either way.
                return True
            return False

        wait_until(refused, "the server kept accepting connections", timeout_s=60)
        poisoned.hold.set()
        answer = held.result()
    assert answer.status_code == 200 and answer.json()["predictions"][0]["label"] in LABELS

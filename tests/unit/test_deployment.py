"""The deploy check against a server, without Prefect or a real server: httpx's mock transport
answers /metadata and /predict as a server following production would."""

from __future__ import annotations

import httpx
import pytest

from modelyard.adapters import deployment
from modelyard.adapters.deployment import check_server, reload_servers

LABELS = ["negative", "positive"]
REAL_CLIENT = httpx.Client


def serve(monkeypatch: pytest.MonkeyPatch, metadata: list[str], predict) -> list[str]:
    """Route every httpx call of the check to a handler: /metadata reports the versions of
    `metadata` in turn (the last one from then on), /predict answers with `predict(texts)`.
    Returns the paths requested, in order."""
    seen: list[str] = []
    versions = iter(metadata)
    current = {"version": None}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path == "/metadata":
            current["version"] = next(versions, current["version"])
            return httpx.Response(200, json={"version": current["version"]})
        if request.url.path == "/predict":
            return predict(request)
        return httpx.Response(200, json={})

    def client(**kwargs) -> httpx.Client:
        return REAL_CLIENT(transport=httpx.MockTransport(handler), **kwargs)

    monkeypatch.setattr(httpx, "Client", client)
    monkeypatch.setattr(deployment.time, "sleep", lambda _: None)  # poll without waiting
    return seen


def answers(version: str, label: str = "positive"):
    def predict(request: httpx.Request) -> httpx.Response:
        import json

        texts = json.loads(request.content)["texts"]
        return httpx.Response(
            200, json={"predictions": [{"label": label, "model_version": version} for _ in texts]}
        )

    return predict


def test_a_server_that_moves_to_the_version_and_answers_with_it_passes(monkeypatch):
    seen = serve(monkeypatch, ["1", "1", "2"], answers("2"))
    check = check_server("http://s:8000/", "2", ["a", "b"], LABELS, 60, token="t")
    assert check.ok and check.detail == "serves version 2; 2 smoke requests ok"
    assert seen == ["/admin/reload", "/metadata", "/metadata", "/metadata", "/predict"]


def test_a_server_still_on_the_old_version_fails_at_the_deadline(monkeypatch):
    serve(monkeypatch, ["1"], answers("1"))
    check = check_server("http://s:8000", "2", ["a"], LABELS, 0, token=None)
    assert not check.ok
    assert check.detail == "still reports version 1 after 0 s, not version 2"


def test_wrong_answers_fail_the_smoke_requests(monkeypatch):
    serve(monkeypatch, ["2"], answers("2", label="neutral"))
    check = check_server("http://s:8000", "2", ["a"], LABELS, 60, token=None)
    assert not check.ok and "is not a label of version 2" in check.detail
    serve(monkeypatch, ["2"], lambda request: httpx.Response(500, text="boom"))
    check = check_server("http://s:8000", "2", ["a"], LABELS, 60, token=None)
    assert check.detail == "smoke request answered HTTP 500: boom"
    serve(monkeypatch, ["2"], lambda request: httpx.Response(200, json={"predictions": []}))
    assert (
        check_server("http://s:8000", "2", ["a"], LABELS, 60, None).detail == "0 answers to 1 texts"
    )


def test_reload_is_only_asked_with_a_token(monkeypatch):
    posted: list[str] = []

    def post(url: str, **kwargs) -> None:
        posted.append(url)
        raise httpx.ConnectError("down")  # best effort: an unreachable server is skipped

    monkeypatch.setattr(httpx, "post", post)
    reload_servers(["http://a/", "http://b"], token=None)
    assert posted == []
    reload_servers(["http://a/", "http://b"], token="t")
    assert posted == ["http://a/admin/reload", "http://b/admin/reload"]

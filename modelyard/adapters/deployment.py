"""The last step of a retrain, against the servers and the registry: the servers that follow
`production` must report the new version and answer smoke requests with it; otherwise
`production` goes back (audited)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelyard.tags import PRODUCTION

if TYPE_CHECKING:
    import httpx

    from modelyard.registry.mlflow_registry import MlflowRegistry
    from modelyard.store.audit import AuditLog


@dataclass(frozen=True)
class ServerCheck:
    server: str
    ok: bool
    detail: str


def check_server(
    server: str,
    version: str,
    texts: list[str],
    labels: list[str],
    timeout_s: float,
    token: str | None,
) -> ServerCheck:
    """Ask `server` to reload (when a token is configured), wait for it to report `version` in
    /metadata, then send `texts` to /predict and check every answer."""
    import httpx

    with httpx.Client(base_url=server.rstrip("/"), timeout=min(30.0, timeout_s)) as http:
        if token:
            try:
                http.post("/admin/reload", headers={"Authorization": f"Bearer {token}"})
            except httpx.HTTPError:
                pass  # polling below still finds the version (or times out with the reason)
        seen = _wait_for_version(http, version, time.monotonic() + timeout_s)
        if seen != f"version {version}":
            detail = f"still reports {seen} after {timeout_s:.0f} s, not version {version}"
            return ServerCheck(server, False, detail)
        problem = _smoke(http, version, texts, labels, token)
    if problem:
        return ServerCheck(server, False, problem)
    return ServerCheck(server, True, f"serves version {version}; {len(texts)} smoke requests ok")


def _wait_for_version(http: httpx.Client, version: str, deadline: float) -> str:
    """What /metadata reports once it says `version`, or at the deadline."""
    import httpx

    while True:
        try:
            response = http.get("/metadata")
            seen = (
                f"version {response.json().get('version')}"
                if response.status_code == 200
                else f"HTTP {response.status_code}"
            )
        except (httpx.HTTPError, ValueError) as error:
            seen = f"unreachable ({type(error).__name__})"
        if seen == f"version {version}" or time.monotonic() > deadline:
            return seen
        time.sleep(0.5)  # the poll interval, not an ordering: the deadline decides


def _smoke(
    http: httpx.Client, version: str, texts: list[str], labels: list[str], token: str | None
) -> str | None:
    """What is wrong with the answers to `texts` (None: each is a label of `version`)."""
    import httpx

    try:
        # The token passes every scope: a server that requires API keys answers it too.
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        response = http.post("/predict", json={"texts": texts}, headers=auth)
    except httpx.HTTPError as error:
        return f"smoke request failed: {type(error).__name__}"
    if response.status_code != 200:
        return f"smoke request answered HTTP {response.status_code}: {response.text[:200]}"
    answers = response.json().get("predictions", [])
    if len(answers) != len(texts):
        return f"{len(answers)} answers to {len(texts)} texts"
    wrong = [
        a for a in answers if a.get("model_version") != version or a.get("label") not in labels
    ]
    if wrong:
        return f"smoke answer {wrong[0]} is not a label of version {version}"
    return None


def reload_servers(servers: list[str], token: str | None) -> None:
    """Best effort: servers that are not told still find the move at their next poll."""
    import httpx

    if not token:
        return
    for server in servers:
        try:
            httpx.post(
                f"{server.rstrip('/')}/admin/reload",
                timeout=30,
                headers={"Authorization": f"Bearer {token}"},
            )
        except httpx.HTTPError:
            pass


def roll_back(
    registry: MlflowRegistry, audit: AuditLog, name: str, version: str, actor: str, reason: str
) -> str | None:
    """Put `production` back where it was before `version` (audited); None when it has nothing
    to go back to or someone has moved it since. Under the model's promotion lock, so the read
    of `production` and the move are one step among every process that moves aliases."""
    with audit.promotion_lock(name):
        if registry.alias_version(name, PRODUCTION) != version:
            return None
        target = audit.rollback_target(name, version)
        if target is None:
            return None
        audit.move(registry, name, PRODUCTION, target, kind="rollback", actor=actor, reason=reason)
        return target

"""Who may call what: the scopes of API keys, the admin token, and `serving.require_keys`.

`authorize` is the policy, a pure function of what was presented and what the database says
about it; `KeyChecker` reads the database (with a short cache, so a request costs no query) and
`require(scope)` is the FastAPI dependency the routes declare.

- The admin token (MODELYARD_ADMIN_TOKEN) is the platform's own credential: it passes every
  scope (the deploy step sends it to reload a server and to smoke-test /predict).
- A key passes the scopes it was made with, until it is revoked.
- Without a token, /predict, /explain and /feedback are open unless `serving.require_keys`; the
  admin endpoints never are (and are off, 403, when there is no admin token and keys are not
  required).
- A token that is presented is always checked, even where none is needed: a wrong or revoked
  key is a 401, not silently anonymous.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from modelyard.store.api_keys import ApiKeys, KeyRecord, Scope, split_token

ADMIN_OFF = (
    "admin endpoints are off: start the server with MODELYARD_ADMIN_TOKEN set, or send an API "
    "key with scope `admin` (modelyard keys create --scope admin)"
)
# Negative and positive answers alike; beyond this many tokens the cache starts again, so
# random tokens cannot grow it without bound.
_CACHE_ENTRIES = 4096


@dataclass(frozen=True)
class Granted:
    key_id: str | None  # the key that was used; None: no key (open endpoint, or the admin token)


@dataclass(frozen=True)
class Refused:
    status: int  # 401: no or a bad credential; 403: a good one without the right; 503
    message: str


def authorize(
    scope: Scope,
    token: str | None,
    key: KeyRecord | None,
    require_keys: bool,
    admin_token: str | None,
) -> Granted | Refused:
    """The decision for a request to an endpoint that needs `scope`, given the bearer `token`
    (None: none sent) and the key the database holds for it (None: no such key)."""
    if token is not None:
        if admin_token and secrets.compare_digest(token.encode(), admin_token.encode()):
            return Granted(None)
        if key is None:
            if scope == "admin" and not admin_token and not require_keys:
                return Refused(403, ADMIN_OFF)
            return Refused(401, "the bearer token is not a valid API key")
        if key.revoked:
            return Refused(401, f"API key {key.id} ({key.name}) was revoked")
        if scope not in key.scopes:
            return Refused(
                403,
                f"API key {key.id} ({key.name}) lacks the scope `{scope}` "
                f"(it has: {', '.join(sorted(key.scopes))})",
            )
        return Granted(key.id)
    if scope == "admin":
        if not admin_token and not require_keys:
            return Refused(403, ADMIN_OFF)
        return Refused(
            401, "a valid bearer token is required: the admin token or a key with scope `admin`"
        )
    if require_keys:
        return Refused(
            401,
            f"this server requires an API key with scope `{scope}`: send `Authorization: Bearer "
            f"<key>` (modelyard keys create --scope {scope})",
        )
    return Granted(None)


class KeyChecker:
    """The key behind a token, from the platform database, each answer kept `ttl_s` seconds: a
    revoked key stops working within that time on every server."""

    def __init__(self, database_url: str, ttl_s: float) -> None:
        self.database_url, self.ttl_s = database_url, ttl_s
        self._keys: ApiKeys | None = None
        self._cache: dict[str, tuple[float, KeyRecord | None]] = {}

    def _check(self, token: str) -> KeyRecord | None:
        if self._keys is None:
            from modelyard.store.db import engine_for

            self._keys = ApiKeys(engine_for(self.database_url))
        return self._keys.check(token)

    async def lookup(self, token: str) -> KeyRecord | None:
        if split_token(token) is None:
            return None  # not shaped like a key: no query
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and now - cached[0] < self.ttl_s:
            return cached[1]
        record = await asyncio.to_thread(self._check, token)
        if len(self._cache) >= _CACHE_ENTRIES:
            self._cache.clear()
        self._cache[digest] = (now, record)
        return record


_bearer = HTTPBearer(
    auto_error=False, description="An API key (`modelyard keys create`) or the admin token"
)


def require(scope: Scope) -> Callable[..., Any]:
    """The dependency of an endpoint that needs `scope`: the `Granted` access, or the 401/403
    (503 when the database cannot say) with its message."""

    async def check(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),  # noqa: B008 - FastAPI's way
    ) -> Granted:
        state = request.app.state.serving
        token = credentials.credentials if credentials is not None else None
        key = None
        if token is not None:
            try:
                key = await state.keys.lookup(token)
            except Exception as failure:  # said to the caller, who can retry
                raise HTTPException(
                    503,
                    f"cannot check the API key, the database is unavailable: "
                    f"{type(failure).__name__}",
                ) from failure
        decision = authorize(scope, token, key, state.serving.require_keys, state.admin_token)
        if isinstance(decision, Refused):
            headers = {"WWW-Authenticate": "Bearer"} if decision.status == 401 else None
            raise HTTPException(decision.status, decision.message, headers=headers)
        return decision

    return check


# What the OpenAPI document says each guarded endpoint may answer besides its own.
REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"description": "no API key where one is required, or a wrong or revoked one"},
    403: {"description": "a key without the endpoint's scope (admin: endpoints off)"},
}

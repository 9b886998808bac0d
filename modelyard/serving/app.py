"""`modelyard serve`: the FastAPI app.

Everything the app touches (registry, database, settings) is built in `create_app` from its
arguments (`state.build_state`) and started in the lifespan: importing this module connects to
nothing. The endpoints are the routers of `modelyard.serving.routes`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelyard.config import ExplainParams, PrivacyParams, RolloutParams, ServingParams
from modelyard.serving.input_checks import validation_refused
from modelyard.serving.routes import ROUTERS
from modelyard.serving.state import ServingState, build_state


def create_app(
    registry_factory: Callable[[], Any],
    name: str,
    serving: ServingParams,
    database_url: str,
    admin_token: str | None,
    privacy: PrivacyParams | None = None,
    explain: ExplainParams | None = None,
    rollout: RolloutParams | None = None,
) -> FastAPI:
    state = build_state(
        registry_factory,
        name,
        serving,
        database_url,
        admin_token,
        privacy or PrivacyParams(),
        explain or ExplainParams(),
        rollout or RolloutParams(),
    )
    app = FastAPI(
        title="ModelYard model server",
        version="1",
        lifespan=lifespan,
        description=f"Serves `models:/{name}@{serving.alias}` and follows the alias.",
    )
    app.state.serving = state
    # Also under the names the app kept them by before they were one object.
    app.state.follower, app.state.predlog, app.state.metrics = (
        state.follower,
        state.predlog,
        state.metrics,
    )
    app.add_middleware(CountRequests)
    app.add_exception_handler(RequestValidationError, validation_refused)
    for router in ROUTERS:
        app.include_router(router)
    return app


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    state: ServingState = app.state.serving
    state.predlog.start()
    state.shadow.start()
    await state.follower.check()  # try once before serving; a server with no model is not ready
    # The challenger is not waited for: until it is loaded, production answers everything.
    tasks = [
        asyncio.create_task(state.batcher.run()),
        asyncio.create_task(state.challenger_batcher.run()),
        asyncio.create_task(follow(state)),
    ]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        state.batcher.close()
        await asyncio.to_thread(state.shadow.close)
        await asyncio.to_thread(state.predlog.close)


async def follow(state: ServingState) -> None:
    """Every poll: the alias, then the open rollout (a promotion moves the alias to the
    challenger this server holds, then closes the rollout, which drops it)."""
    while True:
        await state.follower.check()
        await state.challenger.check()
        await asyncio.sleep(state.follower.interval_s)


# The requests a model answers: while one is being answered, a shadow's scoring is held.
MODEL_PATHS = frozenset({"/predict", "/explain"})


class CountRequests:
    """Every request's count and latency, by the route it matched (or `unmatched`); each
    POST /predict announced to the batcher from its first byte, so a batch waits for requests
    on their way and never when there are none; and a shadow's scoring held from the first byte
    of a request a model answers to its last (`ShadowScorer.answering`). Plain ASGI: no
    per-request task or copy."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: ServingState = scope["app"].state.serving
        status = 500  # what the server answers if the app raises before it starts a response

        async def send_counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        arrived = answered = None
        if scope["method"] == "POST" and scope["path"] in MODEL_PATHS:
            answered = state.shadow.answering()
            if scope["path"] == "/predict":
                arrived = state.batcher.expect()
                scope.setdefault("state", {})["arrived"] = arrived
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_counted)
        finally:
            if arrived is not None:
                arrived()
            if answered is not None:
                answered()
            path = getattr(scope.get("route"), "path", "unmatched")
            state.metrics.request(path, status, time.perf_counter() - started)

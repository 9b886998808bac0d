"""`modelyard serve`: the FastAPI app.

Everything the app touches (registry, database, settings) is built in `create_app` from its
arguments (`state.build_state`) and started in the lifespan: importing this module connects to
nothing. The endpoints are the routers of `modelyard.serving.routes`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request

from modelyard.config import ExplainParams, PrivacyParams, ServingParams
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
) -> FastAPI:
    state = build_state(
        registry_factory,
        name,
        serving,
        database_url,
        admin_token,
        privacy or PrivacyParams(),
        explain or ExplainParams(),
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
    app.middleware("http")(count_requests)
    for router in ROUTERS:
        app.include_router(router)
    return app


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    state: ServingState = app.state.serving
    state.predlog.start()
    await state.follower.check()  # try once before serving; a server with no model is not ready
    tasks = [asyncio.create_task(state.batcher.run()), asyncio.create_task(state.follower.run())]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        state.batcher.close()
        await asyncio.to_thread(state.predlog.close)


async def count_requests(request: Request, call_next: Callable[[Request], Awaitable[Any]]) -> Any:
    """Every request's count and latency, by the route it matched (or `unmatched`)."""
    started = time.perf_counter()
    response = await call_next(request)
    route = request.scope.get("route")
    path = getattr(route, "path", "unmatched")
    state: ServingState = request.app.state.serving
    state.metrics.request(path, response.status_code, time.perf_counter() - started)
    return response

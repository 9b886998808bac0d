"""What one server holds (the model follower, the batcher, the prediction log, the metrics, the
feedback store, its settings) as one typed object on `app.state.serving`, which the routes
reach through the `State` dependency. Built by `build_state`: constructing it connects to
nothing, the lifespan starts it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse

from modelyard.config import ExplainParams, PrivacyParams, ServingParams
from modelyard.serving.batcher import MicroBatcher
from modelyard.serving.feedback_store import FeedbackStore
from modelyard.serving.keys import KeyChecker
from modelyard.serving.metrics import ServerMetrics
from modelyard.serving.model import LoadedModel, ModelFollower
from modelyard.serving.predlog import PredictionLog


@dataclass(frozen=True)
class ServingState:
    serving: ServingParams
    explain: ExplainParams
    admin_token: str | None
    metrics: ServerMetrics
    follower: ModelFollower
    batcher: MicroBatcher
    predlog: PredictionLog
    feedback: FeedbackStore
    # One explanation at a time: each is a forward and backward pass over n_steps copies of the
    # text, and two at once would only share the same cores more slowly while /predict waits.
    explaining: asyncio.Semaphore
    keys: KeyChecker

    def model_or_error(self) -> LoadedModel | JSONResponse:
        """The model being served, or the 503 that says why there is none."""
        if self.follower.current is None:
            return error(503, f"no model loaded: {self.follower.last_error or 'loading'}")
        return self.follower.current


def build_state(
    registry_factory: Callable[[], Any],
    name: str,
    serving: ServingParams,
    database_url: str,
    admin_token: str | None,
    privacy: PrivacyParams,
    explain: ExplainParams,
) -> ServingState:
    from functools import partial

    from modelyard.privacy import protect

    metrics = ServerMetrics()
    follower = ModelFollower(
        registry_factory,
        name,
        serving.alias,
        serving.poll_interval_s,
        on_swap=lambda loaded: metrics.model_swapped(loaded.version),
    )
    batcher = MicroBatcher(
        lambda: follower.current,
        serving.max_batch_size,
        serving.max_wait_ms,
        on_batch=metrics.batch_size.observe,
    )
    predlog = PredictionLog(
        database_url,
        partial(protect, mode=privacy.mode, redactor=privacy.redactor()),
        maxsize=serving.log_queue_size,
        batch_size=serving.log_batch_size,
    )
    metrics.watch_log(predlog)
    return ServingState(
        serving,
        explain,
        admin_token,
        metrics,
        follower,
        batcher,
        predlog,
        FeedbackStore(database_url),
        asyncio.Semaphore(1),
        KeyChecker(database_url, serving.key_cache_s),
    )


def serving_state(request: Request) -> ServingState:
    state: ServingState = request.app.state.serving
    return state


State = Annotated[ServingState, Depends(serving_state)]


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status)

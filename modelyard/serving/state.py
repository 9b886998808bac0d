"""What one server holds (the model follower, the batcher, the prediction log, the metrics, the
feedback store, its settings; in a rollout, the challenger, its batcher and the shadow scorer)
as one typed object on `app.state.serving`, which the routes reach through the `State`
dependency. Built by `build_state`: constructing it connects to nothing, the lifespan starts
it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse

from modelyard.config import ExplainParams, PrivacyParams, RolloutParams, ServingParams
from modelyard.serving.batcher import MicroBatcher
from modelyard.serving.challenger import ChallengerFollower
from modelyard.serving.feedback_store import FeedbackStore
from modelyard.serving.keys import KeyChecker
from modelyard.serving.metrics import ServerMetrics
from modelyard.serving.model import LoadedModel, ModelFollower
from modelyard.serving.predlog import PredictionLog
from modelyard.serving.shadow import ShadowScorer
from modelyard.tags import PRODUCTION


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
    # A rollout's challenger (followed only by a server that serves `production`); the batcher
    # that answers a canary's share with it; what has a shadow's copies scored (a thread here
    # handing them to a process of its own).
    challenger: ChallengerFollower
    challenger_batcher: MicroBatcher
    shadow: ShadowScorer

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
    rollout: RolloutParams,
) -> ServingState:
    from functools import partial

    from modelyard.privacy import protect
    from modelyard.store.audit import AuditLog

    metrics = ServerMetrics()
    follower = ModelFollower(
        registry_factory,
        name,
        serving.alias,
        serving.poll_interval_s,
        on_swap=lambda loaded: metrics.model_swapped(loaded.version),
        # What serves is what passed: production is followed only where the trail says.
        audit_factory=partial(AuditLog.from_url, database_url),
    )
    metrics.watch_pointer(follower)
    batcher = MicroBatcher(
        lambda: follower.current,
        serving.max_batch_size,
        serving.max_wait_ms,
        on_batch=metrics.batch_size.observe,
        chunk_size=serving.chunk_size,
    )
    predlog = PredictionLog(
        database_url,
        partial(protect, mode=privacy.mode, redactor=privacy.redactor()),
        maxsize=serving.log_queue_size,
        batch_size=serving.log_batch_size,
    )
    metrics.watch_log(predlog)
    challenger, challenger_batcher, shadow = _rollout_parts(
        registry_factory, name, serving, database_url, rollout, follower, batcher, predlog, metrics
    )
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
        challenger,
        challenger_batcher,
        shadow,
    )


def _rollout_parts(
    registry_factory: Callable[[], Any],
    name: str,
    serving: ServingParams,
    database_url: str,
    rollout: RolloutParams,
    follower: ModelFollower,
    batcher: MicroBatcher,
    predlog: PredictionLog,
    metrics: ServerMetrics,
) -> tuple[ChallengerFollower, MicroBatcher, ShadowScorer]:
    challenger = ChallengerFollower(
        registry_factory,
        database_url,
        name,
        serving.alias == PRODUCTION,
        lambda: follower.current,
    )
    follower.preloaded = challenger.holding
    challenger_batcher = MicroBatcher(
        lambda: challenger.current,
        serving.max_batch_size,
        serving.max_wait_ms,
        on_batch=metrics.batch_size.observe,
        executor=batcher.executor,
        chunk_size=serving.chunk_size,
    )
    shadow = ShadowScorer(
        challenger.shadow,
        predlog,
        rollout.shadow_queue_size,
        metrics.scored,
    )
    metrics.watch_rollout(challenger, shadow)
    return challenger, challenger_batcher, shadow


async def serving_state(request: Request) -> ServingState:
    # async: FastAPI runs a plain function dependency in its thread pool, a hand-over to
    # another thread and back on every request for one attribute read.
    state: ServingState = request.app.state.serving
    return state


State = Annotated[ServingState, Depends(serving_state)]


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status)

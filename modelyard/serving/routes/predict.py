"""POST /predict: texts in, labels and probabilities out, each prediction logged.

In a canary rollout the challenger answers the requests whose key (the `X-Rollout-Key` header,
else the request's first prediction id) falls in its share: one version answers the whole
request, and names itself in `model_version`. In a shadow rollout production answers, and a
copy of the texts goes to the challenger's shadow scorer."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import JSONResponse

from modelyard.config import ServingParams
from modelyard.serving.batcher import ModelFailed, NoModel, Scored
from modelyard.serving.challenger import ROLLOUT_KEY_HEADER
from modelyard.serving.input_checks import UNREADABLE
from modelyard.serving.keys import REFUSALS, Granted, require
from modelyard.serving.model import LoadedModel
from modelyard.serving.predlog import LoggedPrediction
from modelyard.serving.schemas import Prediction, PredictRequest, PredictResponse
from modelyard.serving.state import ServingState, State, error
from modelyard.store.roles import ERROR, SERVED

router = APIRouter()


@router.post(
    "/predict",
    response_model=PredictResponse,
    responses={
        **UNREADABLE,
        **REFUSALS,
        413: {"description": "too many texts, or a text too long"},
        422: {
            "description": "no texts, a field that is not this model's text column, or a "
            "text holding a code point that is not text (NUL, a lone surrogate...)"
        },
        500: {"description": "the model failed on this request's texts (and only on them)"},
        503: {"description": "no model loaded yet"},
    },
)
async def predict(
    body: PredictRequest,
    state: State,
    request: Request,
    _: Annotated[Granted, Depends(require("predict"))],
    rollout_key: Annotated[
        str | None,
        Header(
            alias=ROLLOUT_KEY_HEADER,
            description="In a canary rollout, which version answers is decided by a hash of "
            "this key (a user or session id: the same key, the same version, on every "
            "replica); without it, by the request's first prediction id.",
        ),
    ] = None,
) -> Any:
    arrived = getattr(request.state, "arrived", None)  # told to the batcher by the middleware
    current = state.follower.current
    try:
        texts = body.all_texts(current.text_column if current is not None else None)
    except ValueError as problem:
        return error(422, str(problem))
    refused = _over_limits(texts, state.serving)
    if refused is not None:
        return refused
    ids = [str(uuid.uuid4()) for _ in texts]
    started = time.perf_counter()
    try:
        scored = await _score(state, texts, rollout_key or ids[0], arrived)
    except NoModel as failure:
        return error(503, f"{failure}: {state.follower.last_error or 'loading'}")
    except ModelFailed as failure:
        _failed(state, texts, ids, failure.model, time.perf_counter() - started)
        return error(500, f"the model failed on this request's texts: {failure}")
    seconds = time.perf_counter() - started
    predictions, logged = _answers(texts, ids, scored, seconds * 1000)
    state.predlog.submit(logged)
    state.metrics.scored(scored.model.version, SERVED, len(texts), seconds, failed=False)
    if state.challenger.shadow() is not None:
        state.shadow.offer(texts, ids)
    answer = PredictResponse.model_construct(
        model=scored.model.name, model_version=scored.model.version, predictions=predictions
    )
    # Serialized once, by pydantic's own (compiled) encoder: returning the model would have
    # FastAPI validate it again and walk it through jsonable_encoder and json.dumps.
    return Response(answer.model_dump_json(), media_type="application/json")


def _over_limits(texts: list[str], serving: ServingParams) -> JSONResponse | None:
    """The 413 for too many texts or a text too long, or None."""
    if len(texts) > serving.max_texts_per_request:
        return error(
            413,
            f"{len(texts)} texts in one request; the limit is "
            f"{serving.max_texts_per_request} (serving.max_texts_per_request)",
        )
    too_long = [i for i, text in enumerate(texts) if len(text) > serving.max_chars_per_text]
    if too_long:
        return error(
            413,
            f"text {too_long[0]} has {len(texts[too_long[0]])} characters; the "
            f"limit is {serving.max_chars_per_text} "
            "(serving.max_chars_per_text)",
        )
    return None


async def _score(state: ServingState, texts: list[str], key: str, arrived: Any | None) -> Scored:
    """The texts scored by the version the request's key routes to."""
    if state.challenger.canary(key):
        try:
            return await state.challenger_batcher.score(texts, arrived)
        except NoModel:
            pass  # the rollout ended meanwhile: production answers
    return await state.batcher.score(texts, arrived)


def _failed(
    state: ServingState, texts: list[str], ids: list[str], model: LoadedModel, seconds: float
) -> None:
    """A row with role "error" per text of a request the version failed on (the batcher ran
    it alone), so each version's error rate comes from the database."""
    created = datetime.now(UTC)
    state.predlog.submit(
        LoggedPrediction(
            prediction_id,
            created,
            model.name,
            model.version,
            text,
            "",
            {},
            seconds * 1000,
            request_id=prediction_id,
            role=ERROR,
        )
        for text, prediction_id in zip(texts, ids, strict=True)
    )
    state.metrics.scored(model.version, SERVED, len(texts), seconds, failed=True)


def _answers(
    texts: list[str], ids: list[str], scored: Scored, latency_ms: float
) -> tuple[list[Prediction], list[LoggedPrediction]]:
    """Each text's prediction, and the row the prediction log keeps of it."""
    model, labels = scored.model, scored.model.labels
    created = datetime.now(UTC)
    predictions, logged = [], []
    for text, row, prediction_id in zip(texts, scored.probabilities, ids, strict=True):
        probabilities = {label: float(p) for label, p in zip(labels, row, strict=True)}
        label = labels[int(row.argmax())]
        predictions.append(
            Prediction.model_construct(
                id=prediction_id,
                label=label,
                probabilities=probabilities,
                model_version=model.version,
            )
        )
        logged.append(
            LoggedPrediction(
                prediction_id,
                created,
                model.name,
                model.version,
                text,
                label,
                probabilities,
                latency_ms,
            )
        )
    return predictions, logged

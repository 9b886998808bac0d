"""`modelyard serve`: the FastAPI app.

Everything the app touches (registry, database, settings) is built in `create_app` from its
arguments and started in the lifespan: importing this module connects to nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from modelyard.config import ExplainParams, PrivacyParams, ServingParams
from modelyard.serving.batcher import MicroBatcher, NoModel
from modelyard.serving.metrics import ServerMetrics
from modelyard.serving.model import LoadedModel, ModelFollower
from modelyard.serving.predlog import LoggedPrediction, PredictionLog


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"texts": ["The sound is superb.", "Broke after a week."]},
                     {"text": "It does the job."}]})

    text: str | None = Field(default=None, description="One text (or use `texts`).")
    texts: list[str] | None = Field(default=None, description="Several texts, answered in order.")

    @model_validator(mode="after")
    def _one_of(self) -> PredictRequest:
        if (self.text is None) == (self.texts is None):
            raise ValueError("give exactly one of `text` or `texts`")
        if self.texts is not None and not self.texts:
            raise ValueError("`texts` is empty")
        return self

    def all_texts(self) -> list[str]:
        return [self.text] if self.text is not None else list(self.texts or [])


class Prediction(BaseModel):
    id: str = Field(description="Quote it in POST /feedback.")
    label: str
    probabilities: dict[str, float]
    model_version: str


class PredictResponse(BaseModel):
    model: str
    model_version: str
    predictions: list[Prediction]


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prediction_id: uuid.UUID
    label: str = Field(min_length=1, description="The true label.")


class ExplainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"text": "The sound is superb."},
                     {"text": "It does the job.", "label": "positive"}]})

    text: str = Field(min_length=1)
    label: str | None = Field(default=None, description="The class to explain (default: the "
                                                        "predicted one).")


class TokenAttribution(BaseModel):
    token: str
    start: int
    end: int
    attribution: float = Field(description="Share of the class probability this word carries "
                                           "(integrated gradients); negative: against it.")


class ExplainResponse(BaseModel):
    model: str
    model_version: str
    label: str
    predicted: str
    probability: float
    delta: float = Field(description="Completeness error of the integral.")
    truncated: bool = Field(description="The text was longer than the model reads.")
    tokens: list[TokenAttribution]
    html: str = Field(description="A self-contained HTML rendering.")


class Metadata(BaseModel):
    model: str
    version: str
    alias: str
    dataset_md5: str | None
    labels: list[str]
    loaded_at: str


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status)


def create_app(
    registry_factory: Callable[[], Any], name: str, serving: ServingParams, database_url: str,
    admin_token: str | None, privacy: PrivacyParams | None = None,
    explain: ExplainParams | None = None,
) -> FastAPI:
    metrics = ServerMetrics()
    follower = ModelFollower(registry_factory, name, serving.alias, serving.poll_interval_s,
                             on_swap=lambda loaded: metrics.model_swapped(loaded.version))
    batcher = MicroBatcher(lambda: follower.current, serving.max_batch_size, serving.max_wait_ms,
                           on_batch=metrics.batch_size.observe)
    from functools import partial

    from modelyard.privacy import protect

    privacy = privacy or PrivacyParams()
    predlog = PredictionLog(database_url, partial(protect, mode=privacy.mode,
                                                  redactor=privacy.redactor()),
                            maxsize=serving.log_queue_size, batch_size=serving.log_batch_size)
    metrics.watch_log(predlog)
    feedback_store = FeedbackStore(database_url)
    explain = explain or ExplainParams()
    # One explanation at a time: each is a forward and backward pass over n_steps copies of the
    # text, and two at once would only share the same cores more slowly while /predict waits.
    explaining = asyncio.Semaphore(1)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        predlog.start()
        await follower.check()  # try once before serving; a server with no model is not ready
        tasks = [asyncio.create_task(batcher.run()), asyncio.create_task(follower.run())]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            batcher.close()
            await asyncio.to_thread(predlog.close)

    app = FastAPI(title="ModelYard model server", version="1", lifespan=lifespan,
                  description=f"Serves `models:/{name}@{serving.alias}` and follows the alias.")
    app.state.follower, app.state.predlog, app.state.metrics = follower, predlog, metrics

    @app.middleware("http")
    async def count(request: Request, call_next: Callable[[Request], Awaitable[Any]]) -> Any:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        metrics.request(path, response.status_code, time.perf_counter() - started)
        return response

    def _model() -> LoadedModel | JSONResponse:
        if follower.current is None:
            return _error(503, f"no model loaded: {follower.last_error or 'loading'}")
        return follower.current

    @app.get("/health", summary="The process is alive")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", summary="A model is loaded and answering")
    async def ready() -> Any:
        model = _model()
        if isinstance(model, JSONResponse):
            return model
        return {"status": "ready", "version": model.version}

    @app.get("/metadata", response_model=Metadata, summary="What is being served")
    async def metadata() -> Any:
        model = _model()
        return model if isinstance(model, JSONResponse) else model.metadata()

    @app.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics")
    async def prometheus() -> PlainTextResponse:
        body, content_type = metrics.render()
        return PlainTextResponse(body, media_type=content_type)

    @app.post("/predict", response_model=PredictResponse,
              responses={413: {"description": "too many texts, or a text too long"},
                         503: {"description": "no model loaded yet"}})
    async def predict(body: PredictRequest) -> Any:
        texts = body.all_texts()
        if len(texts) > serving.max_texts_per_request:
            return _error(413, f"{len(texts)} texts in one request; the limit is "
                               f"{serving.max_texts_per_request} (serving.max_texts_per_request)")
        too_long = [i for i, text in enumerate(texts) if len(text) > serving.max_chars_per_text]
        if too_long:
            return _error(413, f"text {too_long[0]} has {len(texts[too_long[0]])} characters; the "
                               f"limit is {serving.max_chars_per_text} "
                               "(serving.max_chars_per_text)")
        started = time.perf_counter()
        try:
            scored = await batcher.score(texts)
        except NoModel as error:
            return _error(503, f"{error}: {follower.last_error or 'loading'}")
        latency_ms = (time.perf_counter() - started) * 1000
        model, labels = scored.model, scored.model.labels
        created = datetime.now(UTC)
        predictions, logged = [], []
        for text, row in zip(texts, scored.probabilities, strict=True):
            probabilities = {label: float(p) for label, p in zip(labels, row, strict=True)}
            label = labels[int(row.argmax())]
            prediction_id = str(uuid.uuid4())
            predictions.append(Prediction(id=prediction_id, label=label,
                                          probabilities=probabilities,
                                          model_version=model.version))
            logged.append(LoggedPrediction(prediction_id, created, model.name, model.version,
                                           text, label, probabilities, latency_ms))
        predlog.submit(logged)
        return PredictResponse(model=model.name, model_version=model.version,
                               predictions=predictions)

    @app.post("/explain", response_model=ExplainResponse,
              responses={413: {"description": "a text too long"},
                         422: {"description": "a label the model does not know"},
                         503: {"description": "no model loaded yet"}})
    async def explain_text(body: ExplainRequest) -> Any:
        """Each word's attribution toward the predicted class (or `label`), by integrated
        gradients. Nothing about the text is stored."""
        from modelyard.explain import Explainer, to_html

        if len(body.text) > serving.max_chars_per_text:
            return _error(413, f"the text has {len(body.text)} characters; the limit is "
                               f"{serving.max_chars_per_text} (serving.max_chars_per_text)")
        model = _model()
        if not isinstance(model, LoadedModel):
            return model
        if body.label is not None and body.label not in model.labels:
            return _error(422, f"label {body.label!r} is not one of {model.labels}")
        async with explaining:
            explanation = await asyncio.to_thread(
                Explainer(model.classifier, explain.n_steps).explain, body.text, body.label)
        return ExplainResponse(model=model.name, model_version=model.version,
                               **{k: v for k, v in explanation.to_dict().items() if k != "text"},
                               html=to_html(explanation))

    @app.post("/feedback", status_code=201,
              responses={422: {"description": "a label the model does not know"},
                         503: {"description": "the database is unavailable"}})
    async def feedback(body: FeedbackRequest) -> Any:
        model = _model()
        if isinstance(model, LoadedModel) and body.label not in model.labels:
            return _error(422, f"label {body.label!r} is not one of {model.labels}")
        try:
            await asyncio.to_thread(feedback_store.add, str(body.prediction_id), body.label)
        except Exception as error:  # noqa: BLE001 - reported to the caller, who can retry
            return _error(503, f"feedback not stored, the database is unavailable: "
                               f"{type(error).__name__}")
        return {"stored": True, "prediction_id": str(body.prediction_id)}

    @app.post("/admin/reload", summary="Check the alias now and switch if it moved",
              responses={401: {"description": "missing or wrong bearer token"},
                         403: {"description": "admin endpoints are off"}})
    async def reload(request: Request) -> Any:
        if not admin_token:
            return _error(403, "admin endpoints are off: start the server with "
                               "MODELYARD_ADMIN_TOKEN set")
        given = request.headers.get("authorization", "")
        if not secrets.compare_digest(given.encode(), f"Bearer {admin_token}".encode()):
            return JSONResponse({"detail": "a valid bearer token is required"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        switched = await follower.check()
        if follower.current is None:
            return _error(503, f"no model loaded: {follower.last_error}")
        return {"switched": switched, "version": follower.current.version,
                "error": follower.last_error}

    return app


class FeedbackStore:
    """Feedback is rare and the caller wants to know it was kept: written synchronously (in a
    worker thread), on an engine made on first use so a server starts with the database down."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: Any = None

    def add(self, prediction_id: str, label: str) -> None:
        from sqlalchemy import insert

        from modelyard.store.models import Feedback

        if self._engine is None:
            from modelyard.store.db import engine_for

            self._engine = engine_for(self.url)
        with self._engine.begin() as connection:
            connection.execute(insert(Feedback), [{"prediction_id": prediction_id,
                                                   "label": label,
                                                   "created_at": datetime.now(UTC)}])

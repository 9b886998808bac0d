"""Liveness, readiness, what is served, and the Prometheus scrape."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse

from modelyard.serving.schemas import Metadata
from modelyard.serving.state import State

router = APIRouter()


@router.get("/health", summary="The process is alive")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", summary="A model is loaded and answering")
async def ready(state: State) -> Any:
    model = state.model_or_error()
    if isinstance(model, JSONResponse):
        return model
    return {"status": "ready", "version": model.version}


@router.get("/metadata", response_model=Metadata, summary="What is being served")
async def metadata(state: State) -> Any:
    model = state.model_or_error()
    if isinstance(model, JSONResponse):
        return model
    return {
        **model.metadata(),
        "rollout": state.challenger.status(),
        "tampered": state.follower.tampered_status(),
    }


@router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics")
async def prometheus(state: State) -> PlainTextResponse:
    body, content_type = state.metrics.render()
    return PlainTextResponse(body, media_type=content_type)

"""POST /feedback: the true label of an earlier prediction."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from modelyard.serving.input_checks import UNREADABLE
from modelyard.serving.keys import REFUSALS, Granted, require
from modelyard.serving.model import LoadedModel
from modelyard.serving.schemas import FeedbackRequest
from modelyard.serving.state import State, error

router = APIRouter()


@router.post(
    "/feedback",
    status_code=201,
    responses={
        **UNREADABLE,
        **REFUSALS,
        422: {"description": "a label the model does not know"},
        503: {"description": "the database is unavailable"},
    },
)
async def feedback(
    body: FeedbackRequest, state: State, access: Annotated[Granted, Depends(require("feedback"))]
) -> Any:
    """The true label of an earlier prediction, recorded with the key that sent it."""
    model = state.model_or_error()
    if isinstance(model, LoadedModel) and body.label not in model.labels:
        return error(422, f"label {body.label!r} is not one of {model.labels}")
    try:
        await asyncio.to_thread(
            state.feedback.add, str(body.prediction_id), body.label, access.key_id
        )
    except Exception as failure:  # noqa: BLE001 - reported to the caller, who can retry
        return error(
            503, f"feedback not stored, the database is unavailable: {type(failure).__name__}"
        )
    return {"stored": True, "prediction_id": str(body.prediction_id)}

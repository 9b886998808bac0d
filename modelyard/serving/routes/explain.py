"""POST /explain: each word's attribution, by integrated gradients."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from modelyard.serving.input_checks import UNREADABLE
from modelyard.serving.keys import REFUSALS, Granted, require
from modelyard.serving.model import LoadedModel
from modelyard.serving.schemas import ExplainRequest, ExplainResponse
from modelyard.serving.state import State, error

router = APIRouter()


@router.post(
    "/explain",
    response_model=ExplainResponse,
    responses={
        **UNREADABLE,
        **REFUSALS,
        413: {"description": "a text too long"},
        422: {"description": "a label the model does not know, or a field it does not read"},
        503: {"description": "no model loaded yet"},
    },
)
async def explain_text(
    body: ExplainRequest, state: State, _: Annotated[Granted, Depends(require("predict"))]
) -> Any:
    """Each word's share of the log-odds of the predicted class (or `label`), by integrated
    gradients; the shares add up to `score - baseline_score`. Nothing about the text is
    stored."""
    from modelyard.explain import Explainer, to_html

    serving, current = state.serving, state.follower.current
    try:
        text = body.the_text(current.text_column if current is not None else None)
    except ValueError as problem:
        return error(422, str(problem))
    if len(text) > serving.max_chars_per_text:
        return error(
            413,
            f"the text has {len(text)} characters; the limit is "
            f"{serving.max_chars_per_text} (serving.max_chars_per_text)",
        )
    model = state.model_or_error()
    if not isinstance(model, LoadedModel):
        return model
    if body.label is not None and body.label not in model.labels:
        return error(422, f"label {body.label!r} is not one of {model.labels}")
    async with state.explaining:
        explanation = await asyncio.to_thread(
            Explainer(model.classifier, state.explain.n_steps).explain, text, body.label
        )
    return ExplainResponse(
        model=model.name,
        model_version=model.version,
        **{k: v for k, v in explanation.to_dict().items() if k != "text"},
        html=to_html(explanation),
    )

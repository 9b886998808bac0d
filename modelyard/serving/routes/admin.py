"""POST /admin/reload, behind the admin bearer token or a key with scope `admin`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from modelyard.serving.keys import REFUSALS, Granted, require
from modelyard.serving.state import State, error

router = APIRouter()


@router.post(
    "/admin/reload",
    summary="Check the alias (and the open rollout) now and switch if it moved",
    responses={**REFUSALS, 503: {"description": "no model loaded"}},
)
async def reload(state: State, _: Annotated[Granted, Depends(require("admin"))]) -> Any:
    follower = state.follower
    switched = await follower.check()
    await state.challenger.check()
    if follower.current is None:
        return error(503, f"no model loaded: {follower.last_error}")
    challenger = state.challenger.current
    return {
        "switched": switched,
        "version": follower.current.version,
        "error": follower.last_error,
        "challenger": challenger.version if challenger is not None else None,
        "challenger_error": state.challenger.last_error,
    }

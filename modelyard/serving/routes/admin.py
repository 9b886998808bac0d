"""POST /admin/reload, behind the admin bearer token (off when none is set)."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from modelyard.serving.state import State, error

router = APIRouter()


@router.post(
    "/admin/reload",
    summary="Check the alias now and switch if it moved",
    responses={
        401: {"description": "missing or wrong bearer token"},
        403: {"description": "admin endpoints are off"},
    },
)
async def reload(request: Request, state: State) -> Any:
    refused = _refused(request, state.admin_token)
    if refused is not None:
        return refused
    follower = state.follower
    switched = await follower.check()
    if follower.current is None:
        return error(503, f"no model loaded: {follower.last_error}")
    return {"switched": switched, "version": follower.current.version, "error": follower.last_error}


def _refused(request: Request, admin_token: str | None) -> JSONResponse | None:
    """403 when admin endpoints are off, 401 without the right bearer token, else None."""
    if not admin_token:
        return error(
            403, "admin endpoints are off: start the server with MODELYARD_ADMIN_TOKEN set"
        )
    given = request.headers.get("authorization", "")
    if not secrets.compare_digest(given.encode(), f"Bearer {admin_token}".encode()):
        return JSONResponse(
            {"detail": "a valid bearer token is required"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    return None

"""The server's endpoints, one router per concern, in the order the OpenAPI document lists them."""

from __future__ import annotations

from fastapi import APIRouter

from modelyard.serving.routes import admin, explain, feedback, health, predict

ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    predict.router,
    explain.router,
    feedback.router,
    admin.router,
)

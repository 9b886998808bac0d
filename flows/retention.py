"""Retention: apply `privacy.retention_days` to the prediction log and the feedback."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from modelyard.config import Settings, load_params
from modelyard.store.retention import purge


@flow(name="retention", log_prints=True)
def retention(params_path: str = "params.yaml") -> dict[str, Any]:
    days = load_params(params_path).privacy.retention_days
    if days is None:
        return {"deleted": False, "note": "privacy.retention_days is not set: nothing deleted"}
    done = purge(Settings().resolved_database_url(), days, f"flow-run:{flow_run.id or 'local'}")
    get_run_logger().info(
        "deleted %d predictions and %d feedback rows older than %s",
        done.predictions,
        done.feedback,
        done.cutoff.isoformat(),
    )
    return {
        "deleted": True,
        "cutoff": done.cutoff.isoformat(),
        "predictions": done.predictions,
        "feedback": done.feedback,
    }

"""The Prefect events ModelYard emits, which deployment triggers turn into retrains.

Each event's id is derived from what it is about (a dataset version, a monitor window), so the
same fact emitted twice is one event to Prefect (the server keeps the first of an id).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelyard.monitoring.report import MonitorReport
    from modelyard.promotion import PointerCheck

DATASET_ADDED = "modelyard.dataset.added"
MODEL_DEGRADED = "modelyard.model.degraded"
# A degraded model whose live traffic has too few labels to learn the shift from.
FEEDBACK_NEEDED = "modelyard.feedback.needed"
# An alias moved outside ModelYard (MLflow UI/API): the audit trail records another version.
REGISTRY_TAMPERED = "modelyard.registry.tampered"
RETRAIN_DEPLOYMENT = "retrain/retrain"


def emit_dataset_added(ref: str, md5: str) -> bool:
    """Announce a new dataset version; False (nothing sent) without a Prefect server, where no
    trigger could hear it."""
    from prefect.events import emit_event
    from prefect.settings import get_current_settings

    if not get_current_settings().api.url:
        return False
    name = ref.split("@", 1)[0]
    emit_event(
        event=DATASET_ADDED,
        resource={"prefect.resource.id": f"modelyard.dataset.{name}", "modelyard.ref": ref},
        payload={"ref": ref, "md5": md5},
        id=uuid.uuid5(uuid.NAMESPACE_URL, f"{DATASET_ADDED}/{ref}/{md5}"),
    )
    return True


def emit_model_degraded(report: MonitorReport) -> None:
    """Announce a degraded window. Its id is derived from model, version and window, so a
    re-run of the same window emits the same event and Prefect keeps one; no deployment
    retrains on it (the monitor's own response decides what happens)."""
    from prefect.events import emit_event

    emit_event(
        event=MODEL_DEGRADED,
        resource={
            "prefect.resource.id": f"modelyard.model.{report.model}",
            "modelyard.version": report.version,
        },
        payload={
            "reasons": report.reasons,
            "action": None if report.action is None else report.action.to_dict(),
        },
        id=uuid.uuid5(
            uuid.NAMESPACE_URL, f"{report.model}/{report.version}/{report.window_end.isoformat()}"
        ),
    )


def emit_feedback_needed(model: str, version: str, new_feedback: int, reason: str) -> bool:
    """Ask people for labels; one event per (version, labels so far), so a re-alarm with no new
    labels is not a new event. False without a Prefect server."""
    from prefect.events import emit_event
    from prefect.settings import get_current_settings

    if not get_current_settings().api.url:
        return False
    emit_event(
        event=FEEDBACK_NEEDED,
        resource={"prefect.resource.id": f"modelyard.model.{model}", "modelyard.version": version},
        payload={"new_feedback": new_feedback, "reason": reason},
        id=uuid.uuid5(uuid.NAMESPACE_URL, f"{FEEDBACK_NEEDED}/{model}/{version}/{new_feedback}"),
    )
    return True


def emit_registry_tampered(found: PointerCheck, detected_by: str) -> bool:
    """Announce an alias the registry moved without the audit trail. Its id is derived from
    model, alias and both versions, so every detector (doctor, `models show`, the monitor,
    each server) announcing the same move is one event. False without a Prefect server."""
    from prefect.events import emit_event
    from prefect.settings import get_current_settings

    if not get_current_settings().api.url:
        return False
    emit_event(
        event=REGISTRY_TAMPERED,
        resource={
            "prefect.resource.id": f"modelyard.model.{found.model}",
            "modelyard.alias": found.alias,
            "modelyard.version": found.registry or "",
        },
        payload={
            "registry": found.registry,
            "recorded": found.recorded,
            "detected_by": detected_by,
            "message": found.sentence,
        },
        id=uuid.uuid5(
            uuid.NAMESPACE_URL,
            f"{REGISTRY_TAMPERED}/{found.model}/{found.alias}/{found.registry}/{found.recorded}",
        ),
    )
    return True


class NotDeployed(LookupError):
    """The Prefect server has no retrain deployment: no trigger can turn an event into a run."""


def triggered_retrain(ref: str, timeout_s: float = 30.0) -> tuple[str, str] | None:
    """The newest run of the retrain deployment with `ref` as its data: (name, state), polled
    for up to `timeout_s` while Prefect's triggers turn the announcement into a run; None when
    none appeared (no server, or its trigger did not fire). NotDeployed at once when the
    server has no such deployment: nothing could appear, so nothing is waited for."""
    import time

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
    from prefect.client.schemas.sorting import FlowRunSort
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import get_current_settings

    if not get_current_settings().api.url:
        return None
    deadline = time.monotonic() + timeout_s
    _, deployment = RETRAIN_DEPLOYMENT.split("/")
    with get_client(sync_client=True) as client:
        try:
            client.read_deployment_by_name(RETRAIN_DEPLOYMENT)
        except ObjectNotFound:
            raise NotDeployed(RETRAIN_DEPLOYMENT) from None
        while True:
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[deployment])),
                sort=FlowRunSort.EXPECTED_START_TIME_DESC,
                limit=50,
            )
            for run in runs:
                if run.parameters.get("data_path") == ref:
                    return run.name, run.state_name or "unknown"
            if time.monotonic() >= deadline:
                return None
            time.sleep(1.0)

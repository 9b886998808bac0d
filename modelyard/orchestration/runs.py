"""How a retrain's Prefect flow run reads in Prefect's UI: named after what it does (`retrain
NAME on DATASET@V`), tagged with the model, the dataset version and what triggered it, with
artifact keys of its model's own and links into the MLflow UI.

The names and URLs are pure functions; `name_flow_run` is the one call to Prefect's API.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from modelyard import tags as tag

MANUAL, SCHEDULE, EVENT = "manual", "schedule", "event"


def run_title(model: str, dataset: str) -> str:
    """The flow run's name: what it does."""
    return f"retrain {model} on {dataset}"


def trigger_of(deployment_id: object, auto_scheduled: bool, created_by: str | None) -> str:
    """What started a run: a deployment's schedule, an automation (a new dataset version's
    event), or a person (a direct call, `modelyard retrain`, or a deployment run by hand)."""
    if deployment_id is None:
        return MANUAL
    if auto_scheduled:
        return SCHEDULE
    return EVENT if (created_by or "").upper() == "AUTOMATION" else MANUAL


def run_tags(model: str, dataset: str, trigger: str) -> list[str]:
    """Tags to filter runs by in Prefect's UI."""
    return [
        f"{tag.FLOW_TAG_MODEL}{model}",
        f"{tag.FLOW_TAG_DATASET}{dataset}",
        trigger_tag(trigger),
    ]


def trigger_tag(trigger: str) -> str:
    return f"{tag.FLOW_TAG_TRIGGER}{trigger}"


def artifact_key(kind: str, model: str) -> str:
    """A Prefect artifact key of `model`'s own (keys take lowercase letters, digits and dashes),
    so the Artifacts page keeps one history per model."""
    slug = re.sub(r"[^a-z0-9]+", "-", model.lower()).strip("-") or "model"
    return f"{kind}-{slug}"


def mlflow_run_url(ui: str, experiment_id: str, run_id: str) -> str:
    return f"{ui}/#/experiments/{experiment_id}/runs/{run_id}"


def mlflow_version_url(ui: str, model: str, version: str) -> str:
    return f"{ui}/#/models/{quote(model, safe='')}/versions/{version}"


# Where `modelyard ui` (and `make ui`) serves Prefect's UI by default: the flow run links of
# the embedded default, whose ephemeral API has no UI address of its own.
DEFAULT_PREFECT_UI = "http://127.0.0.1:4200"


def flow_run_url(flow_run_id: str) -> str | None:
    """The flow run's page in Prefect's UI (PREFECT_UI_URL, derived from a server's
    PREFECT_API_URL, else `modelyard ui`'s default); None outside a flow run."""
    from prefect.utilities.urls import url_for

    if flow_run_id in ("", "local"):
        return None
    return url_for("flow-run", obj_id=flow_run_id, default_base_url=DEFAULT_PREFECT_UI)


def name_flow_run(flow_run_id: str, model: str, dataset: str) -> None:
    """Rename the running flow run after what it does and tag it (its own tags kept)."""
    from uuid import UUID

    from prefect.client.orchestration import get_client

    if flow_run_id in ("", "local"):
        return
    with get_client(sync_client=True) as client:
        found = client.read_flow_run(UUID(flow_run_id))
        created_by = found.created_by.type if found.created_by else None
        trigger = trigger_of(found.deployment_id, found.auto_scheduled, created_by)
        tags = list(dict.fromkeys([*found.tags, *run_tags(model, dataset, trigger)]))
        client.update_flow_run(UUID(flow_run_id), name=run_title(model, dataset), tags=tags)

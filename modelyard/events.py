"""The Prefect events ModelYard emits, which deployment triggers turn into retrains.

Each event's id is derived from what it is about (a dataset version, a monitor window), so the
same fact emitted twice is one event to Prefect (the server keeps the first of an id).
"""

from __future__ import annotations

import uuid

DATASET_ADDED = "modelyard.dataset.added"
MODEL_DEGRADED = "modelyard.model.degraded"


def emit_dataset_added(ref: str, md5: str) -> bool:
    """Announce a new dataset version; False (nothing sent) without a Prefect server, where no
    trigger could hear it."""
    from prefect.events import emit_event
    from prefect.settings import get_current_settings

    if not get_current_settings().api.url:
        return False
    name = ref.split("@", 1)[0]
    emit_event(event=DATASET_ADDED, resource={"prefect.resource.id": f"modelyard.dataset.{name}",
                                              "modelyard.ref": ref},
               payload={"ref": ref, "md5": md5},
               id=uuid.uuid5(uuid.NAMESPACE_URL, f"{DATASET_ADDED}/{ref}/{md5}"))
    return True

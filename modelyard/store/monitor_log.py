"""The monitor's own history in the platform database: the `monitor_runs` rows it writes, and
what the last of them did about a degradation (so a re-alarm is not acted on twice)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from modelyard.monitoring.action import ActionKind, PreviousAction


def last_action(database_url: str, model: str, version: str) -> PreviousAction | None:
    """The action of the newest monitor run of this version that did something."""
    from sqlalchemy import select

    from modelyard.store.db import engine_for
    from modelyard.store.models import MonitorRun

    engine = engine_for(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(MonitorRun.report, MonitorRun.created_at)
                .where(MonitorRun.model == model, MonitorRun.version == version,
                       MonitorRun.degraded.is_(True))
                .order_by(MonitorRun.id.desc()).limit(50)).all()
    finally:
        engine.dispose()
    for report, created in rows:
        action = (report or {}).get("action") or {}
        kind = action.get("kind")
        if kind in {ActionKind.NEW_DATA, ActionKind.ALERT}:
            return PreviousAction(ActionKind(kind), int(action.get("new_feedback", 0)),
                                  created.isoformat() if created else "an earlier run")
    return None


def write_run(database_url: str, row: dict[str, Any]) -> None:
    """One `monitor_runs` row (`created_at` now)."""
    from sqlalchemy import insert

    from modelyard.store.db import engine_for
    from modelyard.store.models import MonitorRun

    engine = engine_for(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(insert(MonitorRun), [{**row, "created_at": datetime.now(UTC)}])
    finally:
        engine.dispose()

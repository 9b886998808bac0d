"""What the monitor reads and writes in the platform database: a window of the prediction log
with its feedback, the `monitor_runs` rows it writes, and what the last of them did about a
degradation (so a re-alarm is not acted on twice)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from modelyard.monitoring.action import ActionKind, PreviousAction
from modelyard.monitoring.live import labelled_predictions

if TYPE_CHECKING:
    import pandas as pd

    from modelyard.monitoring.report import MonitorReport


def read_window(
    database_url: str, model: str, version: str, since: datetime
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The window's logged answers of this version (`id`, `text`, `label`,
    `probabilities`), and those of them with feedback (`predicted`, `actual`; the latest
    feedback per prediction wins)."""
    import pandas as pd
    from sqlalchemy import select

    from modelyard.store.db import engine_for
    from modelyard.store.models import Feedback, Prediction
    from modelyard.store.roles import answered

    engine = engine_for(database_url)
    try:
        with engine.connect() as connection:
            current = pd.read_sql(
                select(
                    Prediction.id, Prediction.text, Prediction.label, Prediction.probabilities
                ).where(
                    Prediction.model == model,
                    Prediction.version == version,
                    Prediction.created_at >= since,
                    answered(Prediction.role),  # not a shadow score, not a failure
                ),
                connection,
            )
            feedback = pd.read_sql(
                select(Feedback.prediction_id, Feedback.label, Feedback.created_at).where(
                    Feedback.created_at >= since
                ),
                connection,
            )
    finally:
        engine.dispose()
    return current, labelled_predictions(current, feedback)


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
                .where(
                    MonitorRun.model == model,
                    MonitorRun.version == version,
                    MonitorRun.degraded.is_(True),
                )
                .order_by(MonitorRun.id.desc())
                .limit(50)
            ).all()
    finally:
        engine.dispose()
    for report, created in rows:
        action = (report or {}).get("action") or {}
        kind = action.get("kind")
        if kind in {ActionKind.NEW_DATA, ActionKind.ALERT}:
            return PreviousAction(
                ActionKind(kind),
                int(action.get("new_feedback", 0)),
                created.isoformat() if created else "an earlier run",
            )
    return None


def record_run(database_url: str, report: MonitorReport) -> None:
    """`report` as its `monitor_runs` row: the window, its counts, the verdict, the whole report
    (which `last_action` reads back)."""
    write_run(
        database_url,
        {
            "model": report.model,
            "version": report.version,
            "window_start": report.window_start,
            "window_end": report.window_end,
            "predictions": report.predictions,
            "labelled": report.quality.labelled if report.quality else 0,
            "degraded": report.degraded,
            "report": report.to_dict(),
        },
    )


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

"""Retention: prediction-log and feedback rows older than the cutoff are deleted, and the
deletion itself is recorded (how many, older than when, by whom) in the same transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True)
class Purged:
    cutoff: datetime
    predictions: int
    feedback: int


def purge(database_url: str, days: int, actor: str, now: datetime | None = None) -> Purged:
    from sqlalchemy import delete, insert

    from modelyard.store.db import engine_for
    from modelyard.store.models import Feedback, Prediction, RetentionRun

    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=days)
    engine = engine_for(database_url)
    try:
        with engine.begin() as connection:
            feedback = connection.execute(delete(Feedback).where(Feedback.created_at < cutoff))
            predictions = connection.execute(
                delete(Prediction).where(Prediction.created_at < cutoff)
            )
            connection.execute(
                insert(RetentionRun),
                [
                    {
                        "cutoff": cutoff,
                        "predictions_deleted": predictions.rowcount,
                        "feedback_deleted": feedback.rowcount,
                        "actor": actor,
                        "ran_at": now,
                    }
                ],
            )
    finally:
        engine.dispose()
    return Purged(cutoff, predictions.rowcount, feedback.rowcount)

"""Where POST /feedback keeps a true label."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


class FeedbackStore:
    """Feedback is rare and the caller wants to know it was kept: written synchronously (in a
    worker thread), on an engine made on first use so a server starts with the database down."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: Any = None

    def add(self, prediction_id: str, label: str, key_id: str | None = None) -> None:
        from sqlalchemy import insert

        from modelyard.store.models import Feedback

        if self._engine is None:
            from modelyard.store.db import engine_for

            self._engine = engine_for(self.url)
        with self._engine.begin() as connection:
            connection.execute(
                insert(Feedback),
                [
                    {
                        "prediction_id": prediction_id,
                        "label": label,
                        "created_at": datetime.now(UTC),
                        "key_id": key_id,
                    }
                ],
            )

"""Rollouts in the platform database: which challenger is on trial against which champion, how
(shadow or canary, at what weight), and how each trial ended. The state lives here, not in a
process, so a rollout survives a restart of every server and flow.

At most one rollout per model is open; opening a second is refused. Closing is idempotent on
the state it reached: a verdict retried after its process died finds the rollout already
closed and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from modelyard.store.models import Rollout as RolloutRow


class RolloutState(StrEnum):
    OPEN = "open"
    PROMOTED = "promoted"
    ABORTED = "aborted"


class RolloutConflict(RuntimeError):
    """A rollout was opened, or closed, against the state the database holds."""


def _aware(moment: datetime | None) -> datetime | None:
    # SQLite gives naive datetimes back; every time the platform writes is UTC.
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Rollout:
    id: int
    model: str
    champion: str | None
    challenger: str
    strategy: str  # shadow | canary
    weight: float  # share of requests the challenger answers (0 in shadow)
    state: RolloutState
    started_at: datetime
    started_by: str
    ended_at: datetime | None = None
    ended_by: str | None = None
    reason: str | None = None
    evidence: dict[str, Any] | None = None

    @property
    def is_open(self) -> bool:
        return self.state is RolloutState.OPEN


def _rollout(row: RolloutRow) -> Rollout:
    started = _aware(row.started_at)
    assert started is not None
    return Rollout(
        row.id,
        row.model,
        row.champion_version,
        row.challenger_version,
        row.strategy,
        row.weight,
        RolloutState(row.state),
        started,
        row.started_by,
        _aware(row.ended_at),
        row.ended_by,
        row.reason,
        row.evidence,
    )


class RolloutStore:
    def __init__(self, engine: Any) -> None:
        from sqlalchemy.orm import sessionmaker

        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def from_url(cls, url: str) -> RolloutStore:
        from modelyard.store.db import engine_for

        return cls(engine_for(url))

    def current(self, model: str) -> Rollout | None:
        """The open rollout of `model`, if any."""
        from sqlalchemy import select

        query = select(RolloutRow).where(
            RolloutRow.model == model, RolloutRow.state == RolloutState.OPEN.value
        )
        with self.sessions() as session:
            row = session.scalars(query.order_by(RolloutRow.id.desc())).first()
        return None if row is None else _rollout(row)

    def get(self, rollout_id: int) -> Rollout | None:
        with self.sessions() as session:
            row = session.get(RolloutRow, rollout_id)
        return None if row is None else _rollout(row)

    def history(self, model: str) -> list[Rollout]:
        """Every rollout of `model`, oldest first."""
        from sqlalchemy import select

        query = select(RolloutRow).where(RolloutRow.model == model).order_by(RolloutRow.id)
        with self.sessions() as session:
            return [_rollout(row) for row in session.scalars(query).all()]

    def open(
        self,
        model: str,
        champion: str | None,
        challenger: str,
        strategy: str,
        weight: float,
        actor: str,
    ) -> Rollout:
        """Open a rollout of `challenger` against `champion`. Opening the same one again (a
        retried step) returns it; a different one while another is open is refused.

        Callers hold the model's promotion lock, so the check and the insert are one step."""
        found = self.current(model)
        if found is not None:
            if (found.champion, found.challenger, found.strategy) == (
                champion,
                challenger,
                strategy,
            ):
                return found
            raise RolloutConflict(
                f"{model} already has an open {found.strategy} rollout (#{found.id}: version "
                f"{found.challenger} against {found.champion}); end it first with `modelyard "
                f"rollout promote|abort {model}`"
            )
        row = RolloutRow(
            model=model,
            champion_version=champion,
            challenger_version=str(challenger),
            strategy=strategy,
            weight=weight if strategy == "canary" else 0.0,
            state=RolloutState.OPEN.value,
            started_at=datetime.now(UTC),
            started_by=actor,
        )
        with self.sessions() as session, session.begin():
            session.add(row)
        return _rollout(row)

    def record_evidence(self, rollout_id: int, evidence: dict[str, Any]) -> None:
        """Keep the statistics of the newest verdict on an open rollout (status shows them)."""
        with self.sessions() as session, session.begin():
            row = session.get(RolloutRow, rollout_id)
            if row is not None and row.state == RolloutState.OPEN.value:
                row.evidence = evidence

    def close(
        self,
        rollout_id: int,
        state: RolloutState,
        actor: str,
        reason: str,
        evidence: dict[str, Any] | None = None,
    ) -> Rollout:
        """End an open rollout as promoted or aborted. Ending it again in the same state is a
        no-op (a retry); ending it in the other state is refused."""
        if state is RolloutState.OPEN:
            raise ValueError("a rollout is closed as promoted or aborted, not open")
        with self.sessions() as session, session.begin():
            row = session.get(RolloutRow, rollout_id, with_for_update=True)
            if row is None:
                raise RolloutConflict(f"no rollout #{rollout_id}")
            if row.state != RolloutState.OPEN.value:
                if row.state == state.value:
                    return _rollout(row)
                raise RolloutConflict(
                    f"rollout #{rollout_id} already ended as {row.state}, not {state.value}"
                )
            row.state = state.value
            row.ended_at = datetime.now(UTC)
            row.ended_by = actor
            row.reason = reason
            if evidence is not None:
                row.evidence = evidence
            session.flush()
            return _rollout(row)

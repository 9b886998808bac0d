"""The audit trail of alias moves: who moved which alias of which model from which version to
which, when and why — and so what was serving at any moment, and where a rollback goes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from modelyard.store.models import AliasMove


@dataclass(frozen=True)
class Move:
    model: str
    alias: str
    kind: str
    from_version: str | None
    to_version: str
    actor: str
    reason: str
    gate_report: str | None
    moved_at: datetime


def _move(row: AliasMove) -> Move:
    moved_at = row.moved_at if row.moved_at.tzinfo else row.moved_at.replace(tzinfo=UTC)
    return Move(
        row.model,
        row.alias,
        row.kind,
        row.from_version,
        row.to_version,
        row.actor,
        row.reason,
        row.gate_report,
        moved_at,
    )


class AuditLog:
    def __init__(self, engine: Any) -> None:
        from sqlalchemy.orm import sessionmaker

        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def from_url(cls, url: str) -> AuditLog:
        from modelyard.store.db import engine_for

        return cls(engine_for(url))

    @contextmanager
    def promotion_lock(self, model: str, timeout_s: float = 600.0) -> Iterator[None]:
        """Serialize everything that reads and then moves `model`'s aliases (compare-and-promote,
        manual promotion, rollback) among every process sharing this database."""
        from modelyard.store.lock import exclusive

        with exclusive(self.engine, f"modelyard.promote:{model}", timeout_s):
            yield

    def latest(self, model: str, alias: str) -> Move | None:
        moves = self.history(model, alias)
        return moves[-1] if moves else None

    def history(self, model: str, alias: str | None = None) -> list[Move]:
        from sqlalchemy import select

        query = select(AliasMove).where(AliasMove.model == model)
        if alias is not None:
            query = query.where(AliasMove.alias == alias)
        with self.sessions() as session:
            rows = session.scalars(query.order_by(AliasMove.moved_at, AliasMove.id)).all()
        return [_move(row) for row in rows]

    def serving_at(self, model: str, when: datetime, alias: str = "production") -> str | None:
        """The version `alias` pointed to at `when`: the newest move at or before it."""
        from sqlalchemy import select

        query = (
            select(AliasMove.to_version)
            .where(AliasMove.model == model, AliasMove.alias == alias, AliasMove.moved_at <= when)
            .order_by(AliasMove.moved_at.desc(), AliasMove.id.desc())
            .limit(1)
        )
        with self.sessions() as session:
            return session.scalars(query).first()

    def rollback_target(self, model: str, current: str, alias: str = "production") -> str | None:
        """Where a rollback from `current` goes: the version `current` replaced when it was
        promoted (rollbacks themselves skipped, so rolling back twice walks further back)."""
        for move in reversed(self.history(model, alias)):
            if move.to_version == current and move.kind != "rollback":
                return move.from_version
        return None

    def move(
        self,
        registry: Any,
        model: str,
        alias: str,
        version: str,
        *,
        kind: str,
        actor: str,
        reason: str,
        gate_report: str | None = None,
    ) -> Move | None:
        """Point `alias` at `version` and write its row, as one unit: the row is committed only
        once the registry has moved. A retried move writes nothing when both are already done;
        when the registry moved but the row was lost (the mover died in between), the retry
        writes the row, so the trail never misses a move and never holds one twice.

        Callers that decide *whether* to move from what the registry says hold
        `promotion_lock(model)` around the read and the move."""
        version = str(version)
        current = registry.alias_version(model, alias)
        if current == version:
            last = self.latest(model, alias)
            if last is not None and last.to_version == version:
                return None
            row = AliasMove(
                model=model,
                alias=alias,
                kind=kind,
                from_version=last.to_version if last else None,
                to_version=version,
                actor=actor,
                reason=f"{reason} (recorded on retry: the alias had "
                "already moved when the first attempt died)",
                gate_report=gate_report,
                moved_at=datetime.now(UTC),
            )
            with self.sessions() as session, session.begin():
                session.add(row)
            return _move(row)
        row = AliasMove(
            model=model,
            alias=alias,
            kind=kind,
            from_version=current,
            to_version=version,
            actor=actor,
            reason=reason,
            gate_report=gate_report,
            moved_at=datetime.now(UTC),
        )
        with self.sessions() as session, session.begin():
            session.add(row)
            session.flush()
            registry.set_alias(model, alias, version)
        return _move(row)

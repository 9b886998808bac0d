"""The audit trail of alias moves: who moved which alias of which model from which version to
which, when and why — and so what was serving at any moment, and where a rollback goes.

The table is append-only. Besides moves (`move`: kinds promote, rollback, manual) it holds
two kinds of rows:

- a removed alias (`remove`): `to_version` is empty (`REMOVED`), `from_version` the version
  it named (a rollout's `challenger` when the rollout ends);
- a note (`note`): a decision that moved nothing, e.g. a rollout verdict "continue", written on
  the alias it concerns with `from_version` = `to_version` = the version it names, so "what did
  the alias name at time T" still reads off the newest row.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from modelyard.store.models import AliasMove

# The `to_version` of a row that removed an alias.
REMOVED = ""


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
            found = session.scalars(query).first()
        return found or None  # an alias removed by then names nothing

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
                from_version=(last.to_version or None) if last else None,
                to_version=version,
                actor=actor,
                reason=f"{reason} (recorded on retry: the alias had "
                "already moved when the first attempt died)",
                gate_report=gate_report,
                moved_at=datetime.now(UTC),
            )
            with self.sessions() as session, session.begin():
                session.add(row)
            return self._moved(registry, _move(row))
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
        return self._moved(registry, _move(row))

    def _moved(self, registry: Any, move: Move) -> Move:
        """After a move is committed: the model cards of the versions it touched are made
        again, so each card's history shows it (`modelyard.adapters.cards.refresh`, best
        effort: the move stands whatever happens there)."""
        from modelyard.adapters.cards import refresh

        refresh(registry, self, move.model, (move.from_version, move.to_version))
        return move

    def remove(
        self, registry: Any, model: str, alias: str, *, kind: str, actor: str, reason: str
    ) -> Move | None:
        """Remove `alias` and write its row (`to_version` = REMOVED), as one unit like `move`:
        a retry writes nothing when both are done, and writes the row when the registry had
        removed the alias but the row was lost. None when nothing was removed or recorded."""
        current = registry.alias_version(model, alias)
        if current is None:
            last = self.latest(model, alias)
            if last is None or last.to_version == REMOVED:
                return None
            return self._add(
                model,
                alias,
                kind,
                last.to_version,
                REMOVED,
                actor,
                f"{reason} (recorded on retry: the alias had already been removed when the "
                "first attempt died)",
            )
        row = self._row(model, alias, kind, current, REMOVED, actor, reason)
        with self.sessions() as session, session.begin():
            session.add(row)
            session.flush()
            registry.delete_alias(model, alias)
        return self._moved(registry, _move(row))

    def adopt(
        self,
        registry: Any,
        model: str,
        alias: str,
        version: str,
        *,
        kind: str,
        actor: str,
        reason: str,
    ) -> Move:
        """Record, as a person's decision, a position the registry holds already but the trail
        does not (a move made outside ModelYard): the row only, nothing moves in the registry."""
        last = self.latest(model, alias)
        from_version = (last.to_version or None) if last else None
        return self._moved(
            registry, self._add(model, alias, kind, from_version, str(version), actor, reason)
        )

    def note(
        self, model: str, alias: str, version: str, *, kind: str, actor: str, reason: str
    ) -> Move | None:
        """Record a decision about `alias` (now at `version`) that moved nothing. The same note
        as the newest row of the alias (a retry, or a verdict that found nothing new) is not
        written again: None then."""
        last = self.latest(model, alias)
        if last is not None and (last.kind, last.to_version, last.reason) == (
            kind,
            str(version),
            reason,
        ):
            return None
        return self._add(model, alias, kind, str(version), str(version), actor, reason)

    def _row(
        self,
        model: str,
        alias: str,
        kind: str,
        from_version: str | None,
        to_version: str,
        actor: str,
        reason: str,
    ) -> AliasMove:
        return AliasMove(
            model=model,
            alias=alias,
            kind=kind,
            from_version=from_version,
            to_version=to_version,
            actor=actor,
            reason=reason,
            gate_report=None,
            moved_at=datetime.now(UTC),
        )

    def _add(
        self,
        model: str,
        alias: str,
        kind: str,
        from_version: str | None,
        to_version: str,
        actor: str,
        reason: str,
    ) -> Move:
        row = self._row(model, alias, kind, from_version, to_version, actor, reason)
        with self.sessions() as session, session.begin():
            session.add(row)
        return _move(row)

"""Acting on rollouts against the registry, the audit trail and the rollouts table: opening one
for a candidate that passed the gate, and ending one on a verdict (`modelyard.rollout.decide`)
or on a person's word. Every step holds the model's promotion lock (the same as every other
promotion), writes its audit row, and is safe to retry.

The order of the steps is what lets a run killed anywhere be finished by the next one:

- open: the `challenger` alias moves (audited), then the rollout opens (its record).
- promote: the verdict is recorded on the rollout, `production` moves to the challenger
  (audited, kind promote), the `challenger` alias is removed (audited, kind rollout), the
  rollout closes as promoted.
- abort: the verdict is recorded, the `challenger` alias is removed (audited), the rollout
  closes as aborted.

So an open rollout whose challenger is already in production is a promotion cut short, and one
whose `challenger` alias is gone an abort cut short (`cut_short`); `finish` completes either
from the verdict recorded on the rollout, without judging again. The previous champion stays
reachable by `modelyard models rollback`: the production move's row names it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from modelyard.rollout import Outcome
from modelyard.store.rollouts import RolloutConflict, RolloutState
from modelyard.tags import CHALLENGER, PRODUCTION

if TYPE_CHECKING:
    from modelyard.config import Settings
    from modelyard.registry.mlflow_registry import MlflowRegistry
    from modelyard.registry.tracking import Log
    from modelyard.rollout import RolloutVerdict
    from modelyard.store.audit import AuditLog, Move
    from modelyard.store.rollouts import Rollout, RolloutStore

# The audit rows of a rollout that move no production: a verdict that waits, a removed alias.
ROLLOUT_KIND = "rollout"
PROMOTE_KIND = "promote"
# Statistics that move with the clock alone (`modelyard.rollout`'s age of the rollout).
_CLOCK_STATISTICS = frozenset({"elapsed_h"})


@dataclass(frozen=True)
class Stores:
    """What acting on a rollout reads and writes, built from Settings by the flow or command."""

    registry: MlflowRegistry
    audit: AuditLog
    rollouts: RolloutStore

    @classmethod
    def from_settings(cls, settings: Settings) -> Stores:
        from modelyard.registry.mlflow_registry import MlflowRegistry
        from modelyard.store.audit import AuditLog
        from modelyard.store.rollouts import RolloutStore

        url = settings.resolved_database_url()
        audit = AuditLog.from_url(url)
        return cls(MlflowRegistry.from_settings(settings), audit, RolloutStore(audit.engine))


def summary(verdict: RolloutVerdict) -> str:
    """The verdict in one line, for the audit trail: outcome, reasons, statistics. The
    rollout's age is left out (its start is on the rollout): with it, no two lines of the same
    evidence would be alike, and a wait that learnt nothing new would be noted again."""
    figures = [
        f"{key}={value:.4g}"
        for key, value in sorted(verdict.statistics.items())
        if key not in _CLOCK_STATISTICS
    ]
    if verdict.labels_needed is not None:
        figures.append(f"labels_needed={verdict.labels_needed}")
    return f"{verdict.outcome.value}: {' '.join(verdict.reasons)}" + (
        f" [{', '.join(figures)}]" if figures else ""
    )


@dataclass(frozen=True)
class Decided:
    """A verdict as the rollout keeps it (its `evidence`; `modelyard rollout status` shows
    it): the flow's, a person's, or one found half-carried-out. `acting`: the ending being
    carried out when it was recorded, which a resumed run finishes with this record."""

    outcome: Outcome
    reasons: tuple[str, ...]
    summary: str
    by: str
    evaluated_at: str
    statistics: dict[str, float] = field(default_factory=dict)
    labels_needed: int | None = None
    acting: Outcome | None = None

    @classmethod
    def of(cls, verdict: RolloutVerdict, actor: str, now: datetime | None = None) -> Decided:
        return cls(
            verdict.outcome,
            tuple(verdict.reasons),
            summary(verdict),
            actor,
            (now or datetime.now(UTC)).isoformat(),
            dict(verdict.statistics),
            verdict.labels_needed,
        )

    @classmethod
    def by_hand(cls, outcome: Outcome, reason: str, actor: str) -> Decided:
        """A person's promote or abort (no statistics of its own)."""
        return cls.plain(outcome, f"by hand: {reason}", actor)

    @classmethod
    def plain(cls, outcome: Outcome, why: str, actor: str) -> Decided:
        now = datetime.now(UTC).isoformat()
        return cls(outcome, (why,), f"{outcome.value}: {why}", actor, now)

    def superseded(self, production: str | None, champion: str | None) -> Decided:
        """This promote turned into an abort: production is no longer the champion."""
        why = (
            f"production moved to version {production or 'nothing'} since the rollout started "
            f"against version {champion}: the comparison no longer holds"
        )
        return replace(
            self,
            outcome=Outcome.ABORT,
            reasons=(why, *self.reasons),
            summary=f"abort: {why} (the verdict was {self.summary})",
        )

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["outcome"] = self.outcome.value
        out["reasons"] = list(self.reasons)
        out["acting"] = None if self.acting is None else self.acting.value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Decided | None:
        """A recorded verdict read back; None when there is none (or not in this form)."""
        try:
            found = cls(**dict(data or {}))
            acting = None if found.acting is None else Outcome(found.acting)
            return replace(
                found, outcome=Outcome(found.outcome), reasons=tuple(found.reasons), acting=acting
            )
        except (TypeError, ValueError):
            return None


def cut_short(rollout: Rollout, production: str | None, challenger: str | None) -> Outcome | None:
    """Which ending an open rollout was in the middle of, from where the aliases point: its
    challenger in production → promote; its `challenger` alias gone → abort; else none."""
    if production == rollout.challenger:
        return Outcome.PROMOTE
    if challenger != rollout.challenger:
        return Outcome.ABORT
    return None


@dataclass
class Opening:
    """Opens a rollout of `version` inside compare-and-promote's lock (its `then`), and says
    what it did: `opened`, or why not (`refusal`)."""

    stores: Stores
    name: str
    version: str
    strategy: str
    weight: float
    actor: str
    opened: Rollout | None = field(default=None, init=False)
    refusal: str | None = field(default=None, init=False)

    def __call__(self, production: str | None, reason: str, log: Log) -> None:
        registry, audit, rollouts = self.stores.registry, self.stores.audit, self.stores.rollouts
        found = rollouts.current(self.name)
        if found is not None and found.challenger != self.version:
            self.refusal = (
                f"{self.name} already has an open {found.strategy} rollout (#{found.id}: "
                f"version {found.challenger} against {found.champion}): version {self.version} "
                f"stays in staging; end that rollout first (modelyard rollout promote|abort "
                f"{self.name})"
            )
            log.info("%s", self.refusal)
            return
        if production is None:
            self.refusal = f"{self.name} has no production version to compare with"
            log.info("%s: version %s stays in staging", self.refusal, self.version)
            return
        moved = audit.move(
            registry,
            self.name,
            CHALLENGER,
            self.version,
            kind=PROMOTE_KIND,
            actor=self.actor,
            reason=f"{reason}; {self.strategy} rollout against production version {production}",
        )
        self.opened = rollouts.open(
            self.name, production, self.version, self.strategy, self.weight, self.actor
        )
        log.info(
            "%s@challenger: version %s (%s); %s rollout #%d opened against production "
            "version %s, which does not move",
            self.name,
            self.version,
            "already there" if moved is None else "audited",
            self.strategy,
            self.opened.id,
            production,
        )


@dataclass(frozen=True)
class Evaluated:
    """What one run of the rollout flow did (`modelyard rollout evaluate` prints it)."""

    model: str
    rollout_id: int | None  # None: no open rollout, nothing done
    outcome: Outcome | None
    summary: str
    production: str | None = None
    labels_needed: int | None = None
    resumed: bool = False  # it finished an ending an earlier run had begun


@dataclass(frozen=True)
class Ended:
    """How a rollout ended (or had already ended), and the audit rows this call wrote."""

    rollout: Rollout
    production: str | None
    rows: list[Move]
    resumed: bool = False  # it finished an ending an earlier run had begun
    already: bool = False  # it had ended before this call: nothing done

    @property
    def outcome(self) -> Outcome:
        return Outcome.PROMOTE if self.rollout.state is RolloutState.PROMOTED else Outcome.ABORT


def conclude(
    stores: Stores,
    rollout_id: int,
    decided: Decided,
    actor: str,
    person: bool = False,
) -> Ended:
    """End the rollout as `decided` says (promote or abort). Under the promotion lock; a
    rollout already ended is left as it is.

    The flow's promote verdict stands only while production is still the champion it was
    judged against: when someone moved production meanwhile, the rollout is aborted instead
    (the comparison no longer holds). A person's promote (`person`) moves production anyway."""
    if decided.outcome is Outcome.CONTINUE:
        raise ValueError("a rollout ends as promote or abort, not continue")
    with stores.audit.promotion_lock(_model(stores, rollout_id)):
        rollout = _still(stores, rollout_id)
        production = stores.registry.alias_version(rollout.model, PRODUCTION)
        if not rollout.is_open:
            return Ended(rollout, production, [], already=True)
        if (
            decided.outcome is Outcome.PROMOTE
            and not person
            and production not in (rollout.champion, rollout.challenger)
        ):
            decided = decided.superseded(production, rollout.champion)
        acting = replace(decided, acting=decided.outcome)
        stores.rollouts.record_evidence(rollout.id, acting.to_dict())
        return _end(stores, rollout, decided, actor)


def finish(stores: Stores, rollout_id: int, actor: str) -> Ended | None:
    """Complete an ending an earlier run began and did not finish (`cut_short`), with the
    verdict it recorded; None when the rollout is open and untouched (or already ended)."""
    with stores.audit.promotion_lock(_model(stores, rollout_id)):
        rollout = _still(stores, rollout_id)
        if not rollout.is_open:
            return None
        registry = stores.registry
        outcome = cut_short(
            rollout,
            registry.alias_version(rollout.model, PRODUCTION),
            registry.alias_version(rollout.model, CHALLENGER),
        )
        if outcome is None:
            return None
        recorded = Decided.from_dict(rollout.evidence)
        if recorded is None or recorded.acting is not outcome:
            where = (
                f"version {rollout.challenger} is already in production"
                if outcome is Outcome.PROMOTE
                else f"the challenger alias no longer names version {rollout.challenger}"
            )
            recorded = Decided.plain(outcome, where, actor)
        ended = _end(stores, rollout, replace(recorded, outcome=outcome), actor)
        return replace(ended, resumed=True)


def note_continue(stores: Stores, rollout_id: int, decided: Decided, actor: str) -> Move | None:
    """Keep a verdict that waits: on the rollout (its newest evidence) and in the audit trail
    (a note on `challenger`; the same note as the last one is not written twice). Nothing
    when the rollout ended meanwhile (a person's promote or abort)."""
    with stores.audit.promotion_lock(_model(stores, rollout_id)):
        rollout = _still(stores, rollout_id)
        if not rollout.is_open:
            return None
        stores.rollouts.record_evidence(rollout.id, decided.to_dict())
        return stores.audit.note(
            rollout.model,
            CHALLENGER,
            rollout.challenger,
            kind=ROLLOUT_KIND,
            actor=actor,
            reason=f"rollout #{rollout.id} ({rollout.strategy}) {decided.summary}",
        )


def _end(stores: Stores, rollout: Rollout, decided: Decided, actor: str) -> Ended:
    """The ending's steps, in the order the module's docstring gives (lock held)."""
    registry, audit, name = stores.registry, stores.audit, rollout.model
    head = f"rollout #{rollout.id} ({rollout.strategy}) {decided.summary}"
    rows: list[Move] = []
    promote = decided.outcome is Outcome.PROMOTE
    if promote:
        moved = audit.move(
            registry,
            name,
            PRODUCTION,
            rollout.challenger,
            kind=PROMOTE_KIND,
            actor=actor,
            reason=head,
        )
        rows += [moved] if moved is not None else []
    removed = audit.remove(
        registry,
        name,
        CHALLENGER,
        kind=ROLLOUT_KIND,
        actor=actor,
        reason=f"rollout #{rollout.id} {'promoted' if promote else 'aborted'}: the "
        "challenger alias is removed",
    )
    rows += [removed] if removed is not None else []
    state = RolloutState.PROMOTED if promote else RolloutState.ABORTED
    kept = replace(decided, acting=None).to_dict()
    closed = stores.rollouts.close(rollout.id, state, actor, head, kept)
    return Ended(closed, registry.alias_version(name, PRODUCTION), rows)


def _model(stores: Stores, rollout_id: int) -> str:
    return _still(stores, rollout_id).model


def _still(stores: Stores, rollout_id: int) -> Rollout:
    found = stores.rollouts.get(rollout_id)
    if found is None:
        raise RolloutConflict(f"no rollout #{rollout_id}")
    return found

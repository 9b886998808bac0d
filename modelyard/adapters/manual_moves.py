"""Moving an alias by hand (`modelyard models promote`, `modelyard models rollback`): under the
promotion lock, by the promotion rule book, audited.

The rule is `modelyard.promotion.decide_alias_move` (a pure function); this module reads what
it needs from the registry and the audit trail, and acts on its answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelyard.tags import PRODUCTION

if TYPE_CHECKING:
    from modelyard.promotion import AliasDecision
    from modelyard.registry.mlflow_registry import MlflowRegistry
    from modelyard.store.audit import AuditLog


class MoveRefused(Exception):
    """Nothing moved; the message says why, naming where the alias stays."""


def promote_by_hand(
    registry: MlflowRegistry,
    audit: AuditLog,
    name: str,
    alias: str,
    version: str,
    actor: str,
    reason: str | None,
    force: bool,
    approvers: tuple[str, ...] = (),
) -> AliasDecision:
    """Point `alias` at `version`, unless the rules refuse it (MoveRefused). For production,
    only a person `approvers` allows (anyone when it is empty); a refusal is audited too."""
    with audit.promotion_lock(name):
        current, recorded = _position(registry, audit, name, alias, version)
        if alias == PRODUCTION:
            noted = current if recorded is None else recorded
            _allowed(audit, name, noted, actor, approvers, f"promote {name} version {version}")
        decision = decide(
            registry, name, alias, version, current, reason, "manual promotion", force
        )
        if decision.moves:
            _move(registry, audit, decision, name, "manual", actor)
    return decision


def roll_back(
    registry: MlflowRegistry,
    audit: AuditLog,
    name: str,
    to: str | None,
    actor: str,
    reason: str | None,
    force: bool,
    approvers: tuple[str, ...] = (),
) -> AliasDecision:
    """Move production back to `to` (default: the version the current production replaced),
    by the same rules as a promotion, and only by a person `approvers` allows."""
    with audit.promotion_lock(name):
        current, recorded = _position(registry, audit, name, PRODUCTION, to)
        noted = current if recorded is None else recorded
        _allowed(audit, name, noted, actor, approvers, f"roll back {name}@production")
        if current is None:
            raise MoveRefused(f"{name} has no production version to roll back from")
        # Moved outside ModelYard: back to where the trail's last move put it.
        target = to or recorded or audit.rollback_target(name, current)
        if target is None:
            raise MoveRefused(
                f"{name}@production (version {current}) replaced nothing in the "
                "audit trail: name the version with --to"
            )
        decision = decide(registry, name, PRODUCTION, target, current, reason, "rollback", force)
        if decision.moves:
            _move(registry, audit, decision, name, "rollback", actor)
    return decision


def _position(
    registry: MlflowRegistry, audit: AuditLog, name: str, alias: str, version: str | None
) -> tuple[str | None, str | None]:
    """(where `alias` is for the rules; where the audit trail's last move put it when the
    registry was moved outside ModelYard, else None). Moving production to the unrecorded
    version records that move (adopts it) instead of finding it "already there"; moving it
    anywhere else, the recorded version included, moves the registry."""
    from modelyard.adapters.pointer import read_pointer

    if alias != PRODUCTION:
        return registry.alias_version(name, alias), None
    found = read_pointer(registry, audit, name, alias)  # under the lock: nothing in flight
    if not found.tampered:
        return found.registry, None
    current = found.recorded if version == found.registry else found.registry
    return current, found.recorded or ""  # "": the trail's last row removed the alias


def check_approver(
    registry: MlflowRegistry,
    audit: AuditLog,
    name: str,
    actor: str,
    approvers: tuple[str, ...],
    what: str,
) -> None:
    """MoveRefused, with an audit note on production naming who was refused, unless `actor`
    may `what` (answer an approval of `name`)."""
    from modelyard.adapters.pointer import read_pointer

    found = read_pointer(registry, audit, name)
    _allowed(
        audit, name, found.recorded if found.tampered else found.registry, actor, approvers, what
    )


def _allowed(
    audit: AuditLog,
    name: str,
    current: str | None,
    actor: str,
    approvers: tuple[str, ...],
    what: str,
) -> None:
    """MoveRefused, with an audit note naming who was refused, unless `actor` may `what`."""
    from modelyard.promotion import approver_refusal, may_approve

    if may_approve(actor, approvers):
        return
    refusal = approver_refusal(actor, approvers, what)
    audit.note(
        name, PRODUCTION, current or "", kind="refused", actor=actor, reason=f"refused: {refusal}"
    )
    where = f"version {current}" if current else "no version"
    raise MoveRefused(f"{name}@production stays at {where}: {refusal} (refusal audited)")


def _move(
    registry: MlflowRegistry,
    audit: AuditLog,
    decision: AliasDecision,
    name: str,
    kind: str,
    actor: str,
) -> None:
    """Move the alias and write its row; a version the registry names already (moved outside
    ModelYard) is adopted: its row written, nothing moved."""
    reason = decision.audit_reason or ""
    if registry.alias_version(name, decision.alias) == decision.version:
        audit.adopt(
            registry,
            name,
            decision.alias,
            decision.version,
            kind=kind,
            actor=actor,
            reason=f"{reason} (adopts a move made outside ModelYard: the registry named it "
            "already)",
        )
        return
    audit.move(
        registry, name, decision.alias, decision.version, kind=kind, actor=actor, reason=reason
    )


def decide(
    registry: MlflowRegistry,
    name: str,
    alias: str,
    version: str,
    current: str | None,
    reason: str | None,
    default_reason: str,
    force: bool,
) -> AliasDecision:
    """The rule book's answer for moving `alias` to `version`; MoveRefused with the refusal."""
    from mlflow.exceptions import MlflowException

    from modelyard.promotion import Verdict, decide_alias_move

    try:
        tags = registry.version_info(name, version).tags
    except MlflowException:
        raise MoveRefused(f"{name} has no version {version}") from None
    decision = decide_alias_move(version, tags, alias, current, reason, default_reason, force)
    if decision.verdict is Verdict.REFUSED:
        where = f"version {current}" if current is not None else "no version"
        raise MoveRefused(f"{name}@{alias} stays at {where}: {decision.refusal}")
    return decision

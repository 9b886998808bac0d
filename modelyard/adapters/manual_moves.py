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
) -> AliasDecision:
    """Point `alias` at `version`, unless the rules refuse it (MoveRefused)."""
    with audit.promotion_lock(name):
        current = registry.alias_version(name, alias)
        decision = decide(
            registry, name, alias, version, current, reason, "manual promotion", force
        )
        if decision.moves:
            audit.move(
                registry,
                name,
                alias,
                version,
                kind="manual",
                actor=actor,
                reason=decision.audit_reason or "",
            )
    return decision


def roll_back(
    registry: MlflowRegistry,
    audit: AuditLog,
    name: str,
    to: str | None,
    actor: str,
    reason: str | None,
    force: bool,
) -> AliasDecision:
    """Move production back to `to` (default: the version the current production replaced),
    by the same rules as a promotion."""
    with audit.promotion_lock(name):
        current = registry.alias_version(name, PRODUCTION)
        if current is None:
            raise MoveRefused(f"{name} has no production version to roll back from")
        target = to or audit.rollback_target(name, current)
        if target is None:
            raise MoveRefused(
                f"{name}@production (version {current}) replaced nothing in the "
                "audit trail: name the version with --to"
            )
        decision = decide(registry, name, PRODUCTION, target, current, reason, "rollback", force)
        if decision.moves:
            audit.move(
                registry,
                name,
                PRODUCTION,
                target,
                kind="rollback",
                actor=actor,
                reason=decision.audit_reason or "",
            )
    return decision


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

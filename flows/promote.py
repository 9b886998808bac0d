"""Promotion, the retrain's last group of steps: register → compare-and-promote (`staging`, and
`production` unless a person must approve) → the approval pause → the deploy check, with
production put back when the servers cannot serve the new version.

With `rollout.strategy` shadow or canary (and a production model to compare with), the
candidate takes `staging` and `challenger` instead, and a rollout opens in the same promotion
lock; production does not move, so no server needs checking (the servers pick up the
challenger on their own, and the rollout's guardrails judge how it answers). In
`promotion.mode: manual` the approval gates the opening of the rollout. Before the first
production model there is nothing to compare with: the candidate goes direct.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from prefect import get_run_logger

from modelyard import tags as tag
from modelyard.adapters.promotion import Case, InLock, Promotion
from modelyard.adapters.rollout_actions import Opening, Stores
from modelyard.config import Params, Settings
from modelyard.data.dataset import TEXT
from modelyard.evaluation.gate import GateDecision
from modelyard.registry.mlflow_registry import MlflowRegistry
from modelyard.store.audit import AuditLog
from modelyard.store.rollouts import Rollout, RolloutStore
from tasks.deploy import reload_servers, roll_back_production, verify_deployment
from tasks.promote import ApprovalOutcome, compare_and_promote, wait_for_approval


@dataclass(frozen=True)
class Promoted:
    decision: GateDecision  # as acted on: re-made under the lock when production moved
    approval: ApprovalOutcome | None = None
    rechecked_against: str | None = None
    deploy_failure: str | None = None
    rollout: Rollout | None = None  # the rollout opened for the candidate (shadow, canary)

    @property
    def rollout_line(self) -> str | None:
        """The rollout opened, in one line (the retrain's summary shows it)."""
        found = self.rollout
        if found is None:
            return None
        return (
            f"{found.strategy} #{found.id}: challenger v{found.challenger} against production "
            f"v{found.champion}"
        )


def promote_candidate(
    registry: MlflowRegistry,
    audit: AuditLog,
    case: Case,
    decision: GateDecision,
    production_version: str | None,
    params: Params,
    settings: Settings,
    flow_run_id: str,
) -> Promoted:
    """Move the aliases a passing candidate earned, ask for approval when the mode is manual,
    then check the servers that follow production (or, in a rollout, open it instead)."""
    if _in_rollout(params, case, production_version):
        return start_rollout(
            registry, audit, case, decision, production_version, params, settings, flow_run_id
        )
    actor, manual = f"flow-run:{flow_run_id}", params.promotion.mode == "manual"
    promotion = compare_and_promote(
        registry,
        audit,
        case,
        decision,
        production_version,
        aliases=[tag.STAGING] if manual else [tag.STAGING, tag.PRODUCTION],
        actor=actor,
        reason=f"passed the gate: {'; '.join(decision.reasons)}",
    )
    approval = None
    if manual and promotion.moved:
        promotion, approval = _once_approved(
            registry, audit, case, promotion, params, flow_run_id, [tag.PRODUCTION]
        )
    deploy_failure = None
    if tag.PRODUCTION in promotion.moved and settings.servers_following(
        case.name, params.deploy.servers
    ):
        deploy_failure = check_deployment(
            registry, audit, case.name, case.version, case.test, params, settings, actor
        )
    rechecked = promotion.compared_with if promotion.compared_with != production_version else None
    return Promoted(promotion.decision, approval, rechecked, deploy_failure)


def _in_rollout(params: Params, case: Case, production_version: str | None) -> bool:
    """Does the candidate go through a rollout? Not with `direct`, nor before the first
    production model (nothing to compare with: it goes direct, and the log says so)."""
    if params.rollout.strategy == "direct":
        return False
    if production_version is None:
        get_run_logger().info(
            "rollout.strategy is %s, but %s has no production model to compare with yet: "
            "version %s goes direct",
            params.rollout.strategy,
            case.name,
            case.version,
        )
        return False
    return True


def start_rollout(
    registry: MlflowRegistry,
    audit: AuditLog,
    case: Case,
    decision: GateDecision,
    production_version: str | None,
    params: Params,
    settings: Settings,
    flow_run_id: str,
) -> Promoted:
    """`staging`, then (after approval, in manual mode) `challenger` and the rollout, in the
    promotion lock; production stays where it is."""
    actor, manual = f"flow-run:{flow_run_id}", params.promotion.mode == "manual"
    stores = Stores(registry, audit, RolloutStore(audit.engine))
    strategy = params.rollout.strategy
    opening = Opening(
        stores, case.name, case.version, strategy, params.rollout.canary_weight, actor
    )
    reason = f"passed the gate: {'; '.join(decision.reasons)}"
    promotion = compare_and_promote(
        registry,
        audit,
        case,
        decision,
        production_version,
        aliases=[tag.STAGING],
        actor=actor,
        reason=reason,
        then=None if manual else opening,
    )
    approval = None
    if manual and promotion.moved:
        promotion, approval = _once_approved(
            registry,
            audit,
            case,
            promotion,
            params,
            flow_run_id,
            [],
            (
                f"a {strategy} rollout against production version {promotion.compared_with}",
                f"approved for a {strategy} rollout",
            ),
            then=opening,
        )
    rechecked = promotion.compared_with if promotion.compared_with != production_version else None
    return Promoted(promotion.decision, approval, rechecked, rollout=opening.opened)


def _once_approved(
    registry: MlflowRegistry,
    audit: AuditLog,
    case: Case,
    promotion: Promotion,
    params: Params,
    flow_run_id: str,
    aliases: list[str],
    asked: tuple[str, str] = ("production", "approved"),
    then: InLock | None = None,
) -> tuple[Promotion, ApprovalOutcome]:
    """The manual mode's pause for a person's answer: `asked` is what they approve and how the
    audit reason starts. Once approved, `aliases` move (and `then` runs) in the promotion lock,
    compared again if production moved."""
    target, said = asked
    approval = wait_for_approval(
        registry,
        case.name,
        case.version,
        flow_run_id,
        params.promotion.approval_timeout_s,
        promotion.decision,
        target,
        audit=audit,
        approvers=params.promotion.approvers,
    )
    if not approval.approved:
        return promotion, approval
    moved = compare_and_promote(
        registry,
        audit,
        case,
        promotion.decision,
        promotion.compared_with,
        aliases=aliases,
        actor=f"user:{approval.reviewer} via flow-run:{flow_run_id}",
        reason=f"{said}: {approval.reason or 'no reason given'}",
        then=then,
    )
    return moved, approval


def check_deployment(
    registry: MlflowRegistry,
    audit: AuditLog,
    name: str,
    version: str,
    test: pd.DataFrame,
    params: Params,
    settings: Settings,
    actor: str,
) -> str | None:
    """Check the servers that follow production; on any failure put production back. The
    failure's message, or None when every server serves `version`."""
    servers = settings.servers_following(name, params.deploy.servers)
    texts = test[TEXT].head(params.deploy.smoke_requests).tolist()
    checks = verify_deployment(
        servers,
        version,
        texts,
        list(params.data.labels),
        params.deploy.timeout_s,
        settings.admin_token,
        params.model.name,
    )
    failed = [check for check in checks if not check.ok]
    if not failed:
        return None
    why = "; ".join(f"{check.server}: {check.detail}" for check in failed)
    back = roll_back_production(
        registry, audit, name, version, actor, f"deploy check failed: {why}"
    )
    if back is not None:
        reload_servers(servers, settings.admin_token)
    registry.set_version_tags(
        name, version, {tag.DEPLOY: tag.DEPLOY_FAILED, tag.DEPLOY_ERROR: why[:4000]}
    )
    where = (
        f"production rolled back to version {back}"
        if back is not None
        else "production left at it: there is no earlier version to go back to"
    )
    return f"deployment of {name} version {version} failed ({why}); {where}"

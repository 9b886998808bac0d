"""Registration and promotion as Prefect tasks (the logic: `modelyard.adapters.promotion`), and
the pause for a reviewer's approval in `promotion.mode: manual`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.input import RunInput
from pydantic import Field

from modelyard import tags as tag
from modelyard.adapters import promotion
from modelyard.adapters.promotion import Case, InLock, Promotion
from modelyard.config import PrivacyParams
from modelyard.data.dataset import Splits
from modelyard.evaluation.gate import GateDecision
from modelyard.orchestration.runs import artifact_key, flow_run_url
from modelyard.registry.mlflow_registry import MlflowRegistry
from modelyard.store.audit import AuditLog


@task(name="register-model-version", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def register_candidate(
    registry: MlflowRegistry,
    name: str,
    run_id: str,
    model_dir: Path,
    splits: Splits,
    lineage: dict[str, str],
    decision: GateDecision,
    privacy: PrivacyParams | None = None,
) -> str:
    """A new version with its lineage and the gate's decision (a rejected one is tagged so and
    gets no alias); the existing one when this run already registered it."""
    flow_run = flow_run_url(lineage.get(tag.PREFECT_FLOW_RUN_ID, ""))
    registered = promotion.register(
        registry, name, run_id, model_dir, splits, lineage, decision, privacy, flow_run
    )
    if registered.reused:
        get_run_logger().info(
            "%s version %s was already registered from run %s: reused",
            name,
            registered.version,
            run_id,
        )
    else:
        get_run_logger().info(
            "registered %s version %s (%s)", name, registered.version, decision.verdict
        )
    return registered.version


@task(name="compare-and-promote", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def compare_and_promote(
    registry: MlflowRegistry,
    audit: AuditLog,
    case: Case,
    decision: GateDecision,
    compared_with: str | None,
    aliases: list[str],
    actor: str,
    reason: str,
    then: InLock | None = None,
) -> Promotion:
    """Move `aliases` to the candidate, serialized per model, re-reading production first: when
    production moved since `decision` compared, the candidate is compared again, in the lock.
    `then` runs in the same lock once they moved (a rollout opens there)."""
    done = promotion.compare_and_promote(
        registry,
        audit,
        case,
        decision,
        compared_with,
        aliases,
        actor,
        reason,
        get_run_logger(),
        then,
    )
    if done.recheck_report is not None:
        create_markdown_artifact(
            key=artifact_key("gate-recheck", case.name),
            markdown=done.recheck_report,
            description="Promotion gate, again: production moved meanwhile",
        )
    return done


class Approval(RunInput):
    """What a reviewer answers, in the Prefect UI's form or through `modelyard models approve`."""

    approve: bool = Field(description="Move production to this version?")
    reviewer: str = Field(default="", description="Who decides (for the audit trail).")
    reason: str = Field(default="", description="Why (for the audit trail).")


@dataclass(frozen=True)
class ApprovalOutcome:
    status: str  # approved | rejected | timed out
    reviewer: str
    reason: str

    @property
    def approved(self) -> bool:
        return self.status == "approved"


def wait_for_approval(
    registry: MlflowRegistry,
    name: str,
    version: str,
    flow_run_id: str,
    timeout_s: int,
    decision: GateDecision,
    target: str = "production",
    audit: AuditLog | None = None,
    approvers: tuple[str, ...] = (),
) -> ApprovalOutcome:
    """Pause the flow until a person approves or rejects `version` for `target` (production,
    or a rollout against it), or until `timeout_s` passes (→ not promoted). Called in the flow
    body: Prefect pauses flows, not tasks. With `approvers`, an answer from anyone else (the
    Prefect UI's form names its reviewer freely) is refused, noted in the audit trail, and the
    run waits again for the time left.

    The version carries the paused flow run's id while it waits, which is how
    `modelyard models approve NAME VERSION` finds the run to resume.
    """
    registry.set_version_tags(
        name, version, {tag.APPROVAL: tag.APPROVAL_WAITING, tag.APPROVAL_FLOW_RUN: flow_run_id}
    )
    get_run_logger().info(
        "waiting up to %d s for approval of %s version %s (modelyard models approve %s "
        "%s, or the Prefect UI)",
        timeout_s,
        name,
        version,
        name,
        version,
    )

    def accepted(outcome: ApprovalOutcome) -> bool:
        return _from_an_approver(registry, audit, name, version, outcome, approvers)

    outcome = _paused_for_answer(name, version, flow_run_id, timeout_s, decision, target, accepted)
    registry.set_version_tags(
        name,
        version,
        {
            tag.APPROVAL: outcome.status,
            tag.APPROVAL_BY: outcome.reviewer,
            tag.APPROVAL_REASON: outcome.reason or "—",
        },
    )
    get_run_logger().info(
        "approval of %s version %s: %s by %s", name, version, outcome.status, outcome.reviewer
    )
    return outcome


def _from_an_approver(
    registry: MlflowRegistry,
    audit: AuditLog | None,
    name: str,
    version: str,
    outcome: ApprovalOutcome,
    approvers: tuple[str, ...],
) -> bool:
    """Whether the answer counts; one that does not is noted in the audit trail and logged."""
    from modelyard.adapters.manual_moves import MoveRefused, check_approver
    from modelyard.promotion import approver_refusal, may_approve

    if may_approve(outcome.reviewer, approvers):
        return True
    verb = "approve" if outcome.approved else "reject"
    what = f"{verb} {name} version {version} (promotion.mode manual)"
    refusal = approver_refusal(outcome.reviewer, approvers, what)
    if audit is not None:
        try:
            check_approver(registry, audit, name, f"user:{outcome.reviewer}", approvers, what)
        except MoveRefused as refused:
            refusal = str(refused)
    get_run_logger().warning("answer refused: %s; still waiting for an approver", refusal)
    return False


def _paused_for_answer(
    name: str,
    version: str,
    flow_run_id: str,
    timeout_s: int,
    decision: GateDecision,
    target: str = "production",
    accepted: Callable[[ApprovalOutcome], bool] = lambda outcome: True,
) -> ApprovalOutcome:
    """The flow run paused until a reviewer `accepted` answers, or `timeout_s` passes."""
    import time

    from prefect.exceptions import FlowPauseTimeout
    from prefect.flow_runs import pause_flow_run

    description = (
        f"**Approve {name} version {version} for {target}?**\n\n"
        f"It passed the gate and is in `staging`. From the CLI: `modelyard models "
        f"approve {name} {version}` (or `reject`).\n\n{decision.to_markdown()}"
    )
    deadline, attempt = time.monotonic() + timeout_s, 0
    while (left := int(deadline - time.monotonic())) >= 1:
        try:
            answer = pause_flow_run(
                wait_for_input=Approval.with_initial_data(description=description, approve=True),
                timeout=left,
                poll_interval=max(1, min(5, timeout_s // 10)),
                # A pause's key is used once: each wait after a refused answer has its own.
                key=f"approve-{name}-{version}" + (f"-{attempt}" if attempt else ""),
            )
        except FlowPauseTimeout:
            break
        outcome = ApprovalOutcome(
            "approved" if answer.approve else "rejected",
            answer.reviewer or "unnamed reviewer",
            answer.reason,
        )
        if accepted(outcome):
            return outcome
        attempt += 1
    return _timed_out(flow_run_id, timeout_s)


def _timed_out(flow_run_id: str, timeout_s: int) -> ApprovalOutcome:
    """Prefect fails a run whose pause expired; the run's own outcome here is "not promoted",
    so it takes itself out of the pause and finishes normally."""
    from prefect.client.orchestration import get_client
    from prefect.states import Running

    with get_client(sync_client=True) as client:
        client.set_flow_run_state(flow_run_id, Running(message="approval timed out"), force=True)
    return ApprovalOutcome("timed out", "nobody", f"no answer within {timeout_s} s")

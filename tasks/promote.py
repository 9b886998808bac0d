"""Registration and promotion, safe to retry and to run concurrently.

- `register_candidate` finds the version an earlier attempt of the same MLflow run registered
  before registering anything, so a killed-and-rerun retrain ends with one version.
- `compare_and_promote` holds the model's promotion lock while it re-reads `production` and moves
  aliases: when another retrain promoted since this one compared, the candidate is compared again
  against the new production (same test split) before anything moves.
- `wait_for_approval` pauses the flow (Prefect's wait-for-input) in `promotion.mode: manual`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.input import RunInput
from pydantic import Field

from modelyard.config import GateParams, PrivacyParams
from modelyard.data.dataset import Splits
from modelyard.data.membership import SplitLineage, comparison_set
from modelyard.evaluation.gate import GateDecision, decide
from modelyard.evaluation.metrics import Metrics
from modelyard.promotion import GATE_REPORT_TAG, REJECTED_TAG, TRUE
from modelyard.registry.mlflow_registry import PRODUCTION, MlflowRegistry
from modelyard.registry.splits import load_membership
from modelyard.store.audit import AuditLog
from tasks.evaluate import score_version
from tasks.registry import log_model


def decision_tags(decision: GateDecision, run_id: str) -> dict[str, str]:
    """The gate's decision on the model version itself: verdict, every check, the full report."""
    tags = {"gate_decision": decision.verdict, GATE_REPORT_TAG: decision.to_text(),
            "gate_report_uri": f"runs:/{run_id}/gate/decision.md"}
    if not decision.passed:
        tags[REJECTED_TAG] = TRUE
    return tags


@task(name="register-model-version", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def register_candidate(
    registry: MlflowRegistry, name: str, run_id: str, model_dir: Path, splits: Splits,
    lineage: dict[str, str], decision: GateDecision, privacy: PrivacyParams | None = None,
) -> str:
    """A new version with its lineage and the gate's decision (a rejected one is tagged so and
    gets no alias); the existing one when this run already registered it."""
    logger = get_run_logger()
    tags = {**lineage, **decision_tags(decision, run_id)}
    existing = registry.version_for_run(name, run_id)
    if existing is not None:
        registry.set_version_tags(name, existing, tags)
        logger.info("%s version %s was already registered from run %s: reused", name, existing,
                    run_id)
        return existing
    model_uri = log_model.fn(registry, run_id, model_dir, splits, privacy)
    version = registry.register(model_uri, name, run_id, tags)
    logger.info("registered %s version %s (%s)", name, version, decision.verdict)
    return version


@dataclass(frozen=True)
class Promotion:
    """What compare-and-promote did: the aliases moved (or already there), the decision it acted
    on and the production version that decision compared against."""

    moved: list[str]
    decision: GateDecision
    compared_with: str | None
    rechecked: bool = False
    notes: list[str] = field(default_factory=list)


@task(name="compare-and-promote", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def compare_and_promote(
    registry: MlflowRegistry, audit: AuditLog, name: str, version: str, run_id: str,
    candidate: Metrics, decision: GateDecision, compared_with: str | None, test: pd.DataFrame,
    labels: list[str], policy: GateParams, aliases: list[str], actor: str, reason: str,
    lineage: SplitLineage | None = None,
) -> Promotion:
    """Move `aliases` to `version`, serialized per model, re-reading production first.

    `decision` compared the candidate with `compared_with`; if production has moved since (to a
    version other than this candidate), the comparison is stale and is made again here, inside
    the lock, so two retrains can never both promote on the strength of the same old champion.
    """
    logger = get_run_logger()
    report = f"mlflow-run:{run_id}/gate/decision.md"
    with audit.promotion_lock(name):
        current = registry.alias_version(name, PRODUCTION)
        rechecked = False
        if current not in (compared_with, version):
            logger.warning("%s@production moved from %s to %s while this candidate was "
                           "evaluated: comparing again", name, compared_with or "nothing", current)
            decision = _recheck(registry, name, version, str(current), candidate, decision,
                                test, labels, policy, lineage)
            compared_with, rechecked = current, True
            _log_recheck(registry, run_id, name, version, current, decision)
            if not decision.passed:
                registry.set_version_tags(name, version, decision_tags(decision, run_id))
                logger.info("against %s version %s the candidate is rejected: %s", name, current,
                            "; ".join(decision.reasons))
                return Promotion([], decision, compared_with, rechecked)
            reason = f"{reason}; re-checked against version {current}"
        for alias in aliases:
            moved = audit.move(registry, name, alias, version, kind="promote", actor=actor,
                               reason=reason, gate_report=report)
            logger.info("%s@%s: %s", name, alias,
                        f"already at version {version}" if moved is None
                        else f"version {moved.from_version or '—'} -> {version} (audited)")
    return Promotion(list(aliases), decision, compared_with, rechecked)


def _recheck(registry: MlflowRegistry, name: str, version: str, current: str,
             candidate: Metrics, decision: GateDecision, test: pd.DataFrame, labels: list[str],
             policy: GateParams, lineage: SplitLineage | None) -> GateDecision:
    """The gate again, against the production that appeared meanwhile, on the test texts that
    one did not train or validate on (the candidate rescored when that set is smaller)."""
    comparison = comparison_set(test, load_membership(registry, name, current), current,
                                lineage or SplitLineage(None, {}, {}))
    if comparison.held_out:
        candidate = replace(score_version(registry, name, version, comparison.test, labels),
                            costs=candidate.costs)
    production = score_version(registry, name, current, comparison.test, labels)
    return decide({**candidate.headline(), **candidate.costs}, production.headline(), policy,
                  decision.compute, comparison.notes())


def _log_recheck(registry: MlflowRegistry, run_id: str, name: str, version: str, against: str,
                 decision: GateDecision) -> None:
    markdown = (f"Production moved to version {against} while {name} version {version} was "
                f"evaluated; compared again on the same test split.\n\n{decision.to_markdown()}")
    registry.log_dict(run_id, {"against_version": against, **decision.to_dict()},
                      f"gate/recheck-v{against}.json")
    registry.log_text(run_id, markdown, f"gate/recheck-v{against}.md")
    registry.set_run_tags(run_id, {"modelyard.gate": decision.verdict})
    create_markdown_artifact(key="gate-recheck", markdown=markdown,
                             description="Promotion gate, again: production moved meanwhile")


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


def wait_for_approval(registry: MlflowRegistry, name: str, version: str, flow_run_id: str,
                      timeout_s: int, decision: GateDecision) -> ApprovalOutcome:
    """Pause the flow until a person approves or rejects `version` for production, or until
    `timeout_s` passes (→ not promoted). Called in the flow body: Prefect pauses flows, not tasks.

    The version carries the paused flow run's id while it waits, which is how
    `modelyard models approve NAME VERSION` finds the run to resume.
    """
    from prefect.client.orchestration import get_client
    from prefect.exceptions import FlowPauseTimeout
    from prefect.flow_runs import pause_flow_run
    from prefect.states import Running

    logger = get_run_logger()
    registry.set_version_tags(name, version, {"approval": "waiting",
                                              "approval_flow_run": flow_run_id})
    description = (f"**Approve {name} version {version} for production?**\n\n"
                   f"It passed the gate and is in `staging`. From the CLI: `modelyard models "
                   f"approve {name} {version}` (or `reject`).\n\n{decision.to_markdown()}")
    logger.info("waiting up to %d s for approval of %s version %s (modelyard models approve %s "
                "%s, or the Prefect UI)", timeout_s, name, version, name, version)
    try:
        answer = pause_flow_run(
            wait_for_input=Approval.with_initial_data(description=description, approve=True),
            timeout=timeout_s, poll_interval=max(1, min(5, timeout_s // 10)),
            key=f"approve-{name}-{version}",
        )
        outcome = ApprovalOutcome("approved" if answer.approve else "rejected",
                                  answer.reviewer or "unnamed reviewer", answer.reason)
    except FlowPauseTimeout:
        # Prefect fails a run whose pause expired; the run's own outcome here is "not
        # promoted", so it takes itself out of the pause and finishes normally.
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(flow_run_id, Running(message="approval timed out"),
                                      force=True)
        outcome = ApprovalOutcome("timed out", "nobody", f"no answer within {timeout_s} s")
    registry.set_version_tags(name, version, {
        "approval": outcome.status, "approval_by": outcome.reviewer,
        "approval_reason": outcome.reason or "—"})
    logger.info("approval of %s version %s: %s by %s", name, version, outcome.status,
                outcome.reviewer)
    return outcome

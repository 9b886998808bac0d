"""Registration and promotion against the registry and the audit trail, safe to retry and to run
concurrently. The decisions are the core's (`modelyard.evaluation.gate.decide`,
`modelyard.promotion.production_moved`); this module reads their inputs and acts on them.

- `register` finds the version an earlier attempt of the same MLflow run registered before
  registering anything, so a killed-and-rerun retrain ends with one version.
- `compare_and_promote` holds the model's promotion lock while it re-reads `production` and moves
  aliases: when another retrain promoted since this one compared, the candidate is compared again
  against the new production (same test split) before anything moves.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import pandas as pd

from modelyard import tags as tag
from modelyard.config import GateParams, PrivacyParams
from modelyard.data.dataset import Splits
from modelyard.data.membership import Membership, SplitLineage, comparison_set
from modelyard.evaluation.candidate import score_frame
from modelyard.evaluation.gate import GateDecision, decide
from modelyard.evaluation.metrics import Metrics
from modelyard.inference.runtime import EAGER
from modelyard.promotion import production_moved
from modelyard.registry.lineage import decision_tags, model_description, version_description
from modelyard.registry.mlflow_registry import MlflowRegistry
from modelyard.registry.splits import load_membership
from modelyard.registry.tracking import Log, log_model
from modelyard.store.audit import AuditLog


def score_version(
    registry: MlflowRegistry,
    name: str,
    version: str,
    test: pd.DataFrame,
    labels: list[str],
    positive: str | None = None,
) -> Metrics:
    """A registered version on a canonical `text`/`label` frame (with the AUCs of `positive`),
    as the PyTorch model it was judged as: a candidate is compared with the model, not with
    the runtime that serves it (that one passed its own parity check)."""
    classifier = registry.load_classifier(name, version=version, runtime=EAGER)
    return score_frame(classifier, test, labels, positive)


@dataclass(frozen=True)
class Champion:
    """The version a candidate must beat (None before any production model)."""

    version: str | None
    # Production was this very run's model (an earlier attempt promoted it, then died): the
    # champion is the version it replaced.
    own_model: str | None = None


def find_champion(registry: MlflowRegistry, audit: AuditLog, name: str, run_id: str) -> Champion:
    """The version behind `@production`, or, when that is `run_id`'s own model, the one it
    replaced."""
    version = registry.alias_version(name, tag.PRODUCTION)
    if version is not None and registry.version_info(name, version).run_id == run_id:
        return Champion(audit.rollback_target(name, version), own_model=version)
    return Champion(version)


def champion_membership(
    registry: MlflowRegistry, name: str, version: str | None
) -> Membership | None:
    """Which split each text of `version`'s training data went to (None: no version, or one
    registered before memberships were recorded)."""
    return None if version is None else load_membership(registry, name, version)


@dataclass(frozen=True)
class Registered:
    version: str
    reused: bool  # an earlier attempt of the same run had registered it


def register(
    registry: MlflowRegistry,
    name: str,
    run_id: str,
    model_dir: Path,
    splits: Splits,
    lineage: dict[str, str],
    decision: GateDecision,
    privacy: PrivacyParams | None = None,
    flow_run_url: str | None = None,
) -> Registered:
    """A new version with its lineage and the gate's decision (a rejected one is tagged so and
    gets no alias); the existing one when this run already registered it. Its description
    links the MLflow run, the Data Docs and the Prefect flow run (`flow_run_url`)."""
    version_tags = {**lineage, **decision_tags(decision, run_id)}
    existing = registry.version_for_run(name, run_id)
    if existing is not None:
        registry.set_version_tags(name, existing, version_tags)
        registered = Registered(existing, reused=True)
    else:
        model_uri = log_model(registry, run_id, model_dir, splits, privacy)
        registered = Registered(registry.register(model_uri, name, run_id, version_tags), False)
    # What MLflow's registry pages show first: the model's purpose, the version's gate report.
    registry.describe_model(name, model_description(name))
    described = version_description(decision, lineage, registry.experiment_id, flow_run_url)
    registry.describe_version(name, registered.version, described)
    return registered


@dataclass(frozen=True)
class Case:
    """A registered candidate and what it was judged on: what a promotion (and its re-check)
    needs besides the decision itself."""

    name: str
    version: str
    run_id: str
    candidate: Metrics
    test: pd.DataFrame
    labels: list[str]
    policy: GateParams
    lineage: SplitLineage | None = None


class InLock(Protocol):
    """A step that must happen under the promotion lock right after the aliases moved."""

    def __call__(self, production: str | None, reason: str, log: Log) -> None: ...


@dataclass(frozen=True)
class Promotion:
    """What compare-and-promote did: the aliases moved (or already there), the decision it acted
    on and the production version that decision compared against."""

    moved: list[str]
    decision: GateDecision
    compared_with: str | None
    rechecked: bool = False
    recheck_report: str | None = None  # markdown, when it compared again
    notes: list[str] = field(default_factory=list)


def compare_and_promote(
    registry: MlflowRegistry,
    audit: AuditLog,
    case: Case,
    decision: GateDecision,
    compared_with: str | None,
    aliases: list[str],
    actor: str,
    reason: str,
    log: Log,
    then: InLock | None = None,
) -> Promotion:
    """Move `aliases` to the candidate, serialized per model, re-reading production first.

    `decision` compared the candidate with `compared_with`; if production has moved since (to a
    version other than this candidate), the comparison is stale and is made again here, inside
    the lock, so two retrains can never both promote on the strength of the same old champion.
    `then`, when given, runs in the same lock once the aliases moved, with the production
    version the candidate was judged against (a rollout opens there).
    """
    name, version = case.name, case.version
    report_uri = f"mlflow-run:{case.run_id}/gate/decision.md"
    recheck_report = None
    with audit.promotion_lock(name):
        current = registry.alias_version(name, tag.PRODUCTION)
        if production_moved(current, compared_with, version):
            log.info(
                "%s@production moved from %s to %s while this candidate was evaluated: "
                "comparing again",
                name,
                compared_with or "nothing",
                current,
            )
            decision = recheck(registry, case, str(current), decision)
            compared_with, recheck_report = (
                current,
                log_recheck(registry, case, str(current), decision),
            )
            if not decision.passed:
                registry.set_version_tags(name, version, decision_tags(decision, case.run_id))
                log.info(
                    "against %s version %s the candidate is rejected: %s",
                    name,
                    current,
                    "; ".join(decision.reasons),
                )
                return Promotion([], decision, compared_with, True, recheck_report)
            reason = f"{reason}; re-checked against version {current}"
        _move_aliases(registry, audit, case, aliases, actor, reason, report_uri, log)
        if then is not None:
            then(compared_with, reason, log)
    return Promotion(
        list(aliases), decision, compared_with, recheck_report is not None, recheck_report
    )


def _move_aliases(
    registry: MlflowRegistry,
    audit: AuditLog,
    case: Case,
    aliases: list[str],
    actor: str,
    reason: str,
    report_uri: str,
    log: Log,
) -> None:
    """Each alias to the candidate, audited (called inside the model's promotion lock)."""
    name, version = case.name, case.version
    for alias in aliases:
        moved = audit.move(
            registry,
            name,
            alias,
            version,
            kind="promote",
            actor=actor,
            reason=reason,
            gate_report=report_uri,
        )
        log.info(
            "%s@%s: %s",
            name,
            alias,
            f"already at version {version}"
            if moved is None
            else f"version {moved.from_version or '—'} -> {version} (audited)",
        )


def recheck(
    registry: MlflowRegistry, case: Case, current: str, decision: GateDecision
) -> GateDecision:
    """The gate again, against the production that appeared meanwhile, on the test texts that
    one did not train or validate on (the candidate rescored when that set is smaller)."""
    comparison = comparison_set(
        case.test,
        load_membership(registry, case.name, current),
        current,
        case.lineage or SplitLineage(None, {}, {}),
    )
    candidate = case.candidate
    # The AUCs are of the class the candidate was scored with.
    positive = candidate.positive_label
    if comparison.held_out:
        candidate = replace(
            score_version(
                registry, case.name, case.version, comparison.test, case.labels, positive
            ),
            costs=candidate.costs,
        )
    production = score_version(registry, case.name, current, comparison.test, case.labels, positive)
    # The baselines stay as first scored (on the candidate's comparison set): the lift over
    # them is the candidate's own, whatever production became meanwhile.
    return decide(
        {**candidate.headline(), **candidate.costs},
        production.headline(),
        case.policy,
        decision.compute,
        comparison.notes(),
        decision.baselines,
    )


def log_recheck(registry: MlflowRegistry, case: Case, against: str, decision: GateDecision) -> str:
    """The re-check's decision in the candidate's run; its markdown."""
    markdown = (
        f"Production moved to version {against} while {case.name} version {case.version} "
        f"was evaluated; compared again on the same test split.\n\n"
        f"{decision.to_markdown()}"
    )
    registry.log_dict(
        case.run_id,
        {"against_version": against, **decision.to_dict()},
        f"gate/recheck-v{against}.json",
    )
    registry.log_text(case.run_id, markdown, f"gate/recheck-v{against}.md")
    registry.set_run_tags(case.run_id, {tag.RUN_GATE: decision.verdict})
    return markdown

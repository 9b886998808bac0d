"""The rollout flow's steps as Prefect tasks: finish an ending cut short, read the evidence,
judge it, act on the verdict. The logic: `modelyard.rollout.decide` (the policy),
`modelyard.adapters.rollout_evidence` (what it reads), `modelyard.adapters.rollout_actions`
(what it does, under the promotion lock, audited)."""

from __future__ import annotations

from datetime import datetime

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from modelyard.adapters.rollout_actions import (
    Decided,
    Ended,
    Evaluated,
    Stores,
    conclude,
    finish,
    note_continue,
)
from modelyard.config import MonitorParams, RolloutParams
from modelyard.orchestration.runs import artifact_key
from modelyard.rollout import Evidence, Outcome, RolloutVerdict, decide
from modelyard.store.rollouts import Rollout
from modelyard.tags import PRODUCTION


@task(name="finish-interrupted-rollout", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def finish_interrupted(stores: Stores, rollout: Rollout, actor: str) -> Evaluated | None:
    """Finish a promote or abort an earlier run began and did not end (its challenger already
    in production, or its challenger alias already gone); None when there is none."""
    ended = finish(stores, rollout.id, actor)
    if ended is None:
        return None
    line = (
        f"rollout #{rollout.id} of {rollout.model}: finished the {ended.outcome.value} an "
        f"earlier run began ({ended.rollout.reason}); production is version {ended.production}"
    )
    get_run_logger().info("%s", line)
    create_markdown_artifact(
        key=artifact_key("rollout", rollout.model),
        markdown=f"# Rollout #{rollout.id} of {rollout.model}: {ended.outcome.value}\n\n{line}",
        description=f"Rollout of {rollout.model}: an interrupted ending finished",
    )
    return _evaluated(rollout, ended)


@task(name="read-rollout-evidence", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def gather_evidence(
    database_url: str, rollout: Rollout, now: datetime, monitor: MonitorParams
) -> Evidence:
    """Both versions' traffic and labelled answers since the rollout started (and, in shadow,
    the monitor's class-mix drift test on the challenger's answers)."""
    from modelyard.adapters.rollout_evidence import read_evidence

    evidence = read_evidence(database_url, rollout, now, monitor)
    get_run_logger().info(
        "rollout #%d of %s (%s, version %s against %s): %d/%d requests, %d/%d labelled",
        rollout.id,
        rollout.model,
        rollout.strategy,
        rollout.challenger,
        rollout.champion,
        evidence.challenger.requests,
        evidence.champion.requests,
        evidence.challenger_labelled.total,
        evidence.champion_labelled.total,
    )
    return evidence


@task(name="rollout-verdict", cache_policy=NO_CACHE)
def judge(evidence: Evidence, policy: RolloutParams, rollout: Rollout) -> RolloutVerdict:
    """The policy's verdict on the evidence, as a Prefect artifact with its statistics."""
    verdict = decide(evidence, policy)
    create_markdown_artifact(
        key=artifact_key("rollout", rollout.model),
        markdown=(
            f"# Rollout #{rollout.id} of {rollout.model}: {verdict.outcome.value}\n\n"
            f"{rollout.strategy}, version {rollout.challenger} against production version "
            f"{rollout.champion}, since {rollout.started_at.isoformat()}\n\n"
            f"{verdict.to_markdown()}"
        ),
        description=f"Rollout verdict of {rollout.model} version {rollout.challenger}",
    )
    get_run_logger().info(
        "verdict on rollout #%d: %s (%s)",
        rollout.id,
        verdict.outcome.value,
        "; ".join(verdict.reasons),
    )
    return verdict


@task(name="act-on-verdict", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def act(stores: Stores, rollout: Rollout, verdict: RolloutVerdict, actor: str) -> Evaluated:
    """Promote, abort (both under the promotion lock, audited), or record the wait."""
    decided = Decided.of(verdict, actor)
    if verdict.outcome is Outcome.CONTINUE:
        note_continue(stores, rollout.id, decided, actor)
        get_run_logger().info(
            "rollout #%d of %s continues: %s",
            rollout.id,
            rollout.model,
            f"{verdict.labels_needed} more labels needed"
            if verdict.labels_needed
            else "not enough evidence yet",
        )
        return Evaluated(
            rollout.model,
            rollout.id,
            Outcome.CONTINUE,
            decided.summary,
            stores.registry.alias_version(rollout.model, PRODUCTION),
            verdict.labels_needed,
        )
    ended = conclude(stores, rollout.id, decided, actor)
    get_run_logger().info(
        "rollout #%d of %s %s: %s; production is version %s",
        rollout.id,
        rollout.model,
        ended.rollout.state.value,
        ended.rollout.reason,
        ended.production,
    )
    return _evaluated(rollout, ended)


def _evaluated(rollout: Rollout, ended: Ended) -> Evaluated:
    return Evaluated(
        rollout.model,
        rollout.id,
        ended.outcome,
        ended.rollout.reason or ended.outcome.value,
        ended.production,
        resumed=ended.resumed,
    )

"""Evaluation as Prefect tasks: the champion, the fair comparison set, both models on it, the
gate. Each one call into `modelyard`, plus its log line and artifact."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from modelyard.adapters import promotion
from modelyard.config import GateParams
from modelyard.data.membership import (
    Comparison,
    Membership,
    SplitLineage,
    comparison_set,
    fair_or_fail,
)
from modelyard.evaluation import candidate as evaluation
from modelyard.evaluation.baselines import TITLES, Baselines
from modelyard.evaluation.gate import Compute, GateDecision, decide
from modelyard.evaluation.metrics import Metrics
from modelyard.orchestration.runs import artifact_key
from modelyard.registry.mlflow_registry import MlflowRegistry
from modelyard.store.audit import AuditLog


@task(name="evaluate-candidate", cache_policy=NO_CACHE)
def evaluate_candidate(
    model_dir: Path,
    test: pd.DataFrame,
    labels: list[str],
    dp_epsilon: float | None = None,
    positive: str | None = None,
) -> Metrics:
    """Quality on the test split (with the AUCs of `positive`), and the costs the gate budgets:
    p95 latency of a single-text request on this machine, the weights' size, the privacy budget
    spent."""
    metrics = evaluation.evaluate_model_dir(model_dir, test, labels, dp_epsilon, positive)
    get_run_logger().info(
        "candidate on test: accuracy %.4f, macro-F1 %.4f", metrics.accuracy, metrics.macro_f1
    )
    return metrics


@task(name="evaluate-baselines", cache_policy=NO_CACHE)
def evaluate_baselines(
    train: pd.DataFrame, test: pd.DataFrame, labels: list[str], positive: str | None = None
) -> Baselines:
    """The majority-class and bag-of-words baselines, trained on the training split and scored
    on the candidate's comparison set."""
    baselines = evaluation.evaluate_baselines(train, test, labels, positive)
    for name, metrics in (
        ("majority", baselines.majority),
        ("bag_of_words", baselines.bag_of_words),
    ):
        get_run_logger().info(
            "baseline %s: accuracy %.4f, macro-F1 %.4f",
            TITLES[name],
            metrics.accuracy,
            metrics.macro_f1,
        )
    return baselines


@task(name="find-champion", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def find_champion(registry: MlflowRegistry, audit: AuditLog, name: str, run_id: str) -> str | None:
    """The version the candidate must beat: the one behind `@production`, or, when that is this
    very run's model (an earlier attempt of this run promoted it and then died), the version it
    replaced. None before any production model."""
    champion = promotion.find_champion(registry, audit, name, run_id)
    logger = get_run_logger()
    if champion.own_model is not None:
        logger.info(
            "%s@production is version %s, this run's own model: comparing with the "
            "version it replaced",
            name,
            champion.own_model,
        )
    if champion.version is None:
        logger.info("no production model for %s yet: the gate uses absolute thresholds", name)
    return champion.version


@task(name="load-split-membership", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def champion_split(registry: MlflowRegistry, name: str, version: str | None) -> Membership | None:
    """Which split each text of `version`'s training data went to (None: no version, or one
    registered before memberships were recorded)."""
    membership = promotion.champion_membership(registry, name, version)
    logger = get_run_logger()
    if version is not None and membership is None:
        logger.warning(
            "%s version %s has no split membership in its lineage: its training "
            "texts cannot be kept out of the comparison",
            name,
            version,
        )
    elif membership is not None:
        logger.info(
            "%s version %s: split membership of %d texts", name, version, len(membership.frame)
        )
    return membership


@task(name="comparison-set", cache_policy=NO_CACHE)
def fair_comparison(
    test: pd.DataFrame, champion: Membership | None, version: str | None, lineage: SplitLineage
) -> Comparison:
    """The test split less the texts the champion trained or validated on."""
    comparison = comparison_set(test, champion, version, lineage)
    for note in comparison.notes():
        get_run_logger().info("%s", note)
    return fair_or_fail(comparison)


@task(name="evaluate-production", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def evaluate_production(
    registry: MlflowRegistry,
    name: str,
    version: str | None,
    test: pd.DataFrame,
    labels: list[str],
    positive: str | None = None,
) -> tuple[str, Metrics] | None:
    """Score the champion on the candidate's comparison set."""
    if version is None:
        return None
    metrics = promotion.score_version(registry, name, version, test, labels, positive)
    get_run_logger().info(
        "production v%s on the same test texts: accuracy %.4f, macro-F1 %.4f",
        version,
        metrics.accuracy,
        metrics.macro_f1,
    )
    return version, metrics


@task(name="gate", cache_policy=NO_CACHE)
def gate(
    candidate: Metrics,
    production: Metrics | None,
    policy: GateParams,
    compute: Compute | None = None,
    notes: list[str] | None = None,
    baselines: Baselines | None = None,
    model: str = "model",
) -> GateDecision:
    """The decision, with what the candidate cost to train (`compute`), how the comparison
    set was made (`notes`) and the baselines' scores (`min_lift_over_baseline`) alongside."""
    decision = decide(
        {**candidate.headline(), **candidate.costs},
        None if production is None else production.headline(),
        policy,
        compute,
        notes,
        None if baselines is None else baselines.headlines(),
    )
    create_markdown_artifact(
        key=artifact_key("gate-decision", model),
        markdown=decision.to_markdown(),
        description="Promotion gate: candidate vs production",
    )
    get_run_logger().info("gate: %s (%s)", decision.verdict.upper(), "; ".join(decision.reasons))
    return decision

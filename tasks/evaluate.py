from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from modelyard.config import GateParams
from modelyard.data.dataset import LABEL, TEXT
from modelyard.data.membership import Comparison, Membership, SplitLineage, comparison_set
from modelyard.evaluation.gate import GateDecision, decide
from modelyard.evaluation.metrics import Metrics, p95_latency_ms, score
from modelyard.registry.mlflow_registry import PRODUCTION, MlflowRegistry
from modelyard.registry.splits import load_membership
from modelyard.store.audit import AuditLog
from modelyard.inference import TextClassifier


def _score(classifier: TextClassifier, test: pd.DataFrame, labels: list[str]) -> Metrics:
    return score(classifier, test[TEXT].tolist(), test[LABEL].tolist(), labels)


@task(name="evaluate-candidate", cache_policy=NO_CACHE)
def evaluate_candidate(model_dir: Path, test: pd.DataFrame, labels: list[str]) -> Metrics:
    """Quality on the test split, and the costs the gate budgets: p95 latency of a
    single-text request on this machine, and the weights' size."""
    from dataclasses import replace

    classifier = TextClassifier.load(model_dir)
    metrics = _score(classifier, test, labels)
    size_mb = sum(f.stat().st_size for f in model_dir.glob("*.safetensors")) / 2**20
    metrics = replace(metrics, costs={
        "latency_p95_ms": p95_latency_ms(classifier, test[TEXT].tolist()),
        "model_size_mb": size_mb,
    })
    get_run_logger().info("candidate on test: accuracy %.4f, macro-F1 %.4f", metrics.accuracy,
                          metrics.macro_f1)
    return metrics


def score_version(registry: MlflowRegistry, name: str, version: str, test: pd.DataFrame,
                  labels: list[str]) -> Metrics:
    return _score(registry.load_classifier(name, version=version), test, labels)


@task(name="find-champion", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def find_champion(registry: MlflowRegistry, audit: AuditLog, name: str,
                  run_id: str) -> str | None:
    """The version the candidate must beat: the one behind `@production`, or, when that is this
    very run's model (an earlier attempt of this run promoted it and then died), the version it
    replaced. None before any production model."""
    version = registry.alias_version(name, PRODUCTION)
    logger = get_run_logger()
    if version is not None and registry.version_info(name, version).run_id == run_id:
        logger.info("%s@production is version %s, this run's own model: comparing with the "
                    "version it replaced", name, version)
        version = audit.rollback_target(name, version)
    if version is None:
        logger.info("no production model for %s yet: the gate uses absolute thresholds", name)
    return version


@task(name="load-split-membership", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def champion_split(registry: MlflowRegistry, name: str, version: str | None) -> Membership | None:
    """Which split each text of `version`'s training data went to (None: no version, or one
    registered before memberships were recorded)."""
    if version is None:
        return None
    membership = load_membership(registry, name, version)
    logger = get_run_logger()
    if membership is None:
        logger.warning("%s version %s has no split membership in its lineage: its training "
                       "texts cannot be kept out of the comparison", name, version)
    else:
        logger.info("%s version %s: split membership of %d texts", name, version,
                    len(membership.frame))
    return membership


@task(name="comparison-set", cache_policy=NO_CACHE)
def fair_comparison(test: pd.DataFrame, champion: Membership | None, version: str | None,
                    lineage: SplitLineage) -> Comparison:
    """The test split less the texts the champion trained or validated on."""
    comparison = comparison_set(test, champion, version, lineage)
    for note in comparison.notes():
        get_run_logger().info("%s", note)
    if comparison.test.empty:
        raise ValueError(f"no fair comparison: every one of the {comparison.test_rows} test texts "
                         f"was in the training or validation split of production version "
                         f"{version}")
    return comparison


@task(name="evaluate-production", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def evaluate_production(registry: MlflowRegistry, name: str, version: str | None,
                        test: pd.DataFrame, labels: list[str]) -> tuple[str, Metrics] | None:
    """Score the champion on the candidate's comparison set."""
    if version is None:
        return None
    metrics = score_version(registry, name, version, test, labels)
    get_run_logger().info("production v%s on the same test texts: accuracy %.4f, macro-F1 %.4f",
                          version, metrics.accuracy, metrics.macro_f1)
    return version, metrics


@task(name="gate", cache_policy=NO_CACHE)
def gate(candidate: Metrics, production: Metrics | None, policy: GateParams,
         compute: dict[str, Any] | None = None, notes: list[str] | None = None) -> GateDecision:
    """The decision, with what the candidate cost to train (`compute`) and how the comparison
    set was made (`notes`) alongside."""
    decision = decide(
        {**candidate.headline(), **candidate.costs},
        None if production is None else production.headline(), policy, compute, notes,
    )
    create_markdown_artifact(key="gate-decision", markdown=decision.to_markdown(),
                             description="Promotion gate: candidate vs production")
    get_run_logger().info("gate: %s (%s)", decision.verdict.upper(), "; ".join(decision.reasons))
    return decision

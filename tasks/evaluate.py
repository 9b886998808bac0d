from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from modelyard.config import GateParams
from modelyard.data.dataset import LABEL, TEXT
from modelyard.evaluation.gate import GateDecision, decide
from modelyard.evaluation.metrics import Metrics, p95_latency_ms, score
from modelyard.registry.mlflow_registry import PRODUCTION, MlflowRegistry
from modelyard.store.audit import AuditLog
from modelyard.training.model import TextClassifier


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


@task(name="evaluate-production", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def evaluate_production(
    registry: MlflowRegistry, audit: AuditLog, name: str, run_id: str, test: pd.DataFrame,
    labels: list[str],
) -> tuple[str, Metrics] | None:
    """Score the champion on the candidate's own test split: the version behind `@production`,
    or, when that is this very run's model (an earlier attempt of this run promoted it and then
    died), the version it replaced."""
    version = registry.alias_version(name, PRODUCTION)
    logger = get_run_logger()
    if version is not None and registry.version_info(name, version).run_id == run_id:
        logger.info("%s@production is version %s, this run's own model: comparing with the "
                    "version it replaced", name, version)
        version = audit.rollback_target(name, version)
    if version is None:
        logger.info("no production model for %s yet: the gate uses absolute thresholds", name)
        return None
    metrics = score_version(registry, name, version, test, labels)
    logger.info("production v%s on the same test split: accuracy %.4f, macro-F1 %.4f", version,
                metrics.accuracy, metrics.macro_f1)
    return version, metrics


@task(name="gate", cache_policy=NO_CACHE)
def gate(candidate: Metrics, production: Metrics | None, policy: GateParams,
         compute: dict[str, Any] | None = None) -> GateDecision:
    """The decision, with what the candidate cost to train alongside (`compute`)."""
    decision = decide(
        {**candidate.headline(), **candidate.costs},
        None if production is None else production.headline(), policy, compute,
    )
    create_markdown_artifact(key="gate-decision", markdown=decision.to_markdown(),
                             description="Promotion gate: candidate vs production")
    get_run_logger().info("gate: %s (%s)", decision.verdict.upper(), "; ".join(decision.reasons))
    return decision

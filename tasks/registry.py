"""The retrain's MLflow run as Prefect tasks: each one call into `modelyard.registry.tracking`."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from modelyard.config import Params, PrivacyParams
from modelyard.data.dataset import Splits
from modelyard.data.identity import DatasetVersion
from modelyard.data.validation import ValidationReport
from modelyard.evaluation.baselines import Baselines
from modelyard.evaluation.gate import GateDecision
from modelyard.evaluation.metrics import Metrics
from modelyard.registry import tracking
from modelyard.registry.mlflow_registry import MlflowRegistry


@task(name="open-tracking-run", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def open_tracking_run(
    registry: MlflowRegistry,
    params: Params,
    dataset: DatasetVersion,
    splits: Splits,
    flow_run_id: str,
    run_dir: Path,
) -> tracking.OpenedRun:
    """The MLflow run of this training: the unfinished one a killed retrain with the same inputs
    left in `run_dir` (→ resumed, so one run and one model in the end), or a new one."""
    opened = tracking.open_run(registry, params, dataset, splits, flow_run_id, run_dir)
    if opened.resumed:
        get_run_logger().info(
            "resuming MLflow run %s left unfinished in %s", opened.run_id, run_dir
        )
    else:
        get_run_logger().info("MLflow run %s", opened.run_id)
    return opened


@task(name="log-validation", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def log_validation(
    registry: MlflowRegistry, run_id: str, report: ValidationReport, docs: Path
) -> None:
    """Data Docs (HTML + JSON) under `validation/`, the dataset figures as metrics."""
    tracking.log_validation(registry, run_id, report, docs)


@task(name="log-evaluation", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def log_evaluation(
    registry: MlflowRegistry,
    run_id: str,
    candidate: Metrics,
    production: Metrics | None,
    production_version: str | None,
    decision: GateDecision,
    baselines: Baselines,
) -> None:
    """Both models' test metrics, the baselines', the confusion matrix and the gate's
    decision."""
    tracking.log_evaluation(
        registry, run_id, candidate, production, production_version, decision, baselines
    )


@task(name="log-model", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=2)
def log_model(
    registry: MlflowRegistry,
    run_id: str,
    model_dir: Path,
    splits: Splits,
    privacy: PrivacyParams | None = None,
) -> str:
    """The pyfunc model with a signature and an input example drawn from the test split, as
    much of it as `privacy.mode` allows to be stored."""
    return tracking.log_model(registry, run_id, model_dir, splits, privacy)

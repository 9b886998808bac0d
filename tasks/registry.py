"""The retrain's MLflow run as Prefect tasks: each one call into `modelyard.registry.tracking`."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_link_artifact
from prefect.cache_policies import NO_CACHE

from modelyard.adapters.datasets import Source
from modelyard.config import Params, PrivacyParams
from modelyard.data.dataset import Splits
from modelyard.data.validation import ValidationReport
from modelyard.evaluation.baselines import Baselines
from modelyard.evaluation.gate import GateDecision
from modelyard.evaluation.metrics import Metrics
from modelyard.orchestration import runs
from modelyard.registry import tracking
from modelyard.registry.mlflow_registry import MlflowRegistry
from modelyard.registry.tracking import DataOrigin, RunStory


def origin_of(source: Source) -> DataOrigin:
    """How MLflow names a dataset version: `NAME@V` and the DVC remote's copy for a catalog
    version, the file's `stem@md5` and its path for a plain file."""
    if source.ref is None:
        return DataOrigin.of_file(source.version)
    return DataOrigin(source.version, source.ref, source.uri or source.label)


@task(name="open-tracking-run", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def open_tracking_run(
    registry: MlflowRegistry,
    params: Params,
    origin: DataOrigin,
    splits: Splits,
    flow_run_id: str,
    run_dir: Path,
) -> tracking.OpenedRun:
    """The MLflow run of this training: the unfinished one a killed retrain with the same inputs
    left in `run_dir` (→ resumed, so one run and one model in the end), or a new one."""
    opened = tracking.open_run(
        registry, params, origin, splits, flow_run_id, run_dir, runs.flow_run_url(flow_run_id)
    )
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


@task(name="describe-and-link", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def describe_and_link(
    registry: MlflowRegistry, run_id: str, story: RunStory, mlflow_ui: str
) -> None:
    """The MLflow run's description with the outcome, and Prefect link artifacts (keys of the
    model's own) to the MLflow run and, when registered, the model version."""
    tracking.describe_run(registry, run_id, story)
    run_url = runs.mlflow_run_url(mlflow_ui, registry.experiment_id, run_id)
    create_link_artifact(
        key=runs.artifact_key("mlflow-run", story.model),
        link=run_url,
        link_text=f"MLflow run {run_id} ({story.model} on {story.dataset})",
        description=f"The MLflow run of this retrain: gate {story.decision_verdict}",
    )
    get_run_logger().info("MLflow run: %s", run_url)
    if story.version is not None:
        version_url = runs.mlflow_version_url(mlflow_ui, story.model, story.version)
        create_link_artifact(
            key=runs.artifact_key("model-version", story.model),
            link=version_url,
            link_text=f"{story.model} version {story.version}",
            description="The model version this retrain registered (its description is the "
            "gate report)",
        )
        get_run_logger().info("model version: %s", version_url)

from __future__ import annotations

import platform
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from modelyard.config import Params, PrivacyParams
from modelyard.data.dataset import TEXT, Splits
from modelyard.data.identity import DatasetVersion
from modelyard.data.membership import Membership
from modelyard.data.validation import ValidationReport
from modelyard.evaluation.gate import GateDecision
from modelyard.evaluation.metrics import Metrics, confusion_figure
from modelyard.registry.mlflow_registry import MlflowRegistry
from modelyard.registry.pyfunc import predictions_frame
from modelyard.registry.splits import log_membership
from modelyard.inference import TextClassifier


def _flat(tree: dict, prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


@task(name="start-tracking-run", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def start_tracking_run(
    registry: MlflowRegistry, params: Params, dataset: DatasetVersion, splits: Splits,
    flow_run_id: str,
) -> str:
    """One MLflow run per retrain: params, the dataset (digest = DVC md5) and where it came from."""
    import torch
    import transformers

    run_id = registry.start_run(
        run_name=f"retrain-{dataset.short}",
        tags={
            "modelyard.dataset_md5": dataset.md5, "modelyard.git_commit": dataset.git_commit,
            "modelyard.params_hash": params.digest(), "modelyard.prefect_flow_run_id": flow_run_id,
            "mlflow.source.git.commit": dataset.git_commit.removesuffix("-dirty"),
        },
    )
    registry.log_params(run_id, {
        **_flat(params.model_dump(mode="json")),
        "dataset.md5": dataset.md5, "dataset.path": dataset.path,
        **{f"split.{name}": size for name, size in splits.sizes().items()},
        "env.python": platform.python_version(), "env.torch": torch.__version__,
        "env.transformers": transformers.__version__,
    })
    for context, frame in (("train", splits.train), ("validation", splits.val),
                           ("test", splits.test)):
        registry.log_dataset(run_id, dataset, frame, context, name=f"{Path(dataset.path).stem}")
    # Which split each text went to: the next retrain inherits it if this model reaches
    # production, and the gate keeps this model's training texts out of any later comparison.
    log_membership(registry, run_id, Membership.of(splits))
    get_run_logger().info("MLflow run %s", run_id)
    return run_id


@task(name="open-tracking-run", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def open_tracking_run(
    registry: MlflowRegistry, params: Params, dataset: DatasetVersion, splits: Splits,
    flow_run_id: str, run_dir: Path,
) -> tuple[str, bool]:
    """The MLflow run of this training: the unfinished one a killed retrain with the same inputs
    left in `run_dir` (→ resumed, so one run and one model in the end), or a new one."""
    marker = run_dir / "mlflow_run_id"
    if marker.is_file():
        previous = marker.read_text().strip()
        if registry.reopen_run(previous):
            registry.set_run_tags(previous, {"modelyard.resumed_by_flow_run": flow_run_id})
            get_run_logger().info("resuming MLflow run %s left unfinished in %s", previous,
                                  run_dir)
            return previous, True
    run_id = start_tracking_run.fn(registry, params, dataset, splits, flow_run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    partial = marker.with_name(marker.name + ".partial")
    partial.write_text(run_id)
    partial.replace(marker)
    return run_id, False


@task(name="log-validation", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def log_validation(registry: MlflowRegistry, run_id: str, report: ValidationReport,
                   docs: Path) -> None:
    """Data Docs (HTML + JSON) under `validation/`, the dataset figures as metrics."""
    registry.log_artifacts(run_id, docs, "validation")
    registry.log_metrics(run_id, {f"data_{k}": float(v) for k, v in report.statistics.items()
                                  if v != float("inf")})
    registry.set_run_tags(run_id, {"modelyard.validation": "passed" if report.success
                                   else "failed"})


@task(name="log-evaluation", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def log_evaluation(
    registry: MlflowRegistry, run_id: str, candidate: Metrics, production: Metrics | None,
    production_version: str | None, decision: GateDecision, majority_baseline: float,
) -> None:
    registry.log_metrics(run_id, {f"test_{k}": v for k, v in candidate.headline().items()})
    registry.log_metrics(run_id, candidate.costs)
    registry.log_metrics(run_id, {"test_majority_baseline_accuracy": majority_baseline})
    registry.log_dict(run_id, candidate.to_dict(), "evaluation/candidate.json")
    registry.log_figure(run_id, confusion_figure(candidate, "candidate (test split)"),
                        "evaluation/confusion_matrix.png")
    if production is not None:
        registry.log_metrics(run_id, {f"production_test_{k}": v
                                      for k, v in production.headline().items()})
        registry.log_dict(run_id, {"version": production_version, **production.to_dict()},
                          "evaluation/production.json")
    registry.log_dict(run_id, decision.to_dict(), "gate/decision.json")
    registry.log_text(run_id, decision.to_markdown(), "gate/decision.md")
    registry.set_run_tags(run_id, {"modelyard.gate": decision.verdict})


@task(name="log-model", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=2)
def log_model(registry: MlflowRegistry, run_id: str, model_dir: Path, splits: Splits,
              privacy: PrivacyParams | None = None) -> str:
    """The pyfunc model with a signature and an input example drawn from the test split, as
    much of it as `privacy.mode` allows to be stored."""
    from modelyard.privacy import protect_all

    privacy = privacy or PrivacyParams()
    example = splits.test[[TEXT]].head(3).reset_index(drop=True)
    example[TEXT] = protect_all(example[TEXT].tolist(), privacy.mode, privacy.redactor())
    outputs = predictions_frame(TextClassifier.load(model_dir), example[TEXT].tolist())
    return registry.log_model(run_id, model_dir, example, outputs)

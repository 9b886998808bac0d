"""The retrain loop: version → validate → split → train → evaluate (candidate and production on
the same split) → gate → register → `staging` → `production`."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from modelyard.config import Settings, load_params
from modelyard.registry.mlflow_registry import PRODUCTION, STAGING, MlflowRegistry
from tasks.data import load_dataset, resolve_dataset, split_dataset, validate_dataset
from tasks.evaluate import evaluate_candidate, evaluate_production, gate
from tasks.registry import (
    log_evaluation,
    log_model,
    register_version,
    set_alias,
    start_tracking_run,
)
from tasks.train import train_candidate


@flow(name="retrain", log_prints=True)
def retrain(
    params_path: str = "params.yaml",
    data_path: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train a candidate on a dataset version and promote it only if it passes the gate.

    `overrides` replaces params by dotted key (`{"train.epochs": 1}`), validated like the file.
    """
    params = load_params(params_path)
    if overrides:
        params = params.updated(overrides)
    settings = Settings()
    name, labels = params.model.name, list(params.data.labels)
    path = Path(data_path) if data_path else params.data.path

    dataset = resolve_dataset(path)
    raw = load_dataset(path)
    validation = validate_dataset(raw, params.data, str(path))
    splits = split_dataset(raw, params.data)

    registry = MlflowRegistry(
        settings.resolved_tracking_uri(), settings.experiment, settings.artifact_root()
    )
    flow_run_id = str(flow_run.id or "local")
    run_id = start_tracking_run(registry, params, dataset, splits, flow_run_id)
    workdir = Path(tempfile.mkdtemp(prefix="train-", dir=_ensure(settings.resolved_runs_dir())))
    try:
        trained = train_candidate(splits, params, registry, run_id, workdir / "model")
        candidate = evaluate_candidate(trained.model_dir, splits.test, labels)
        production = evaluate_production(registry, name, splits.test, labels)
        production_version, production_metrics = production or (None, None)
        decision = gate(candidate, production_metrics, params.gate)
        log_evaluation(registry, run_id, candidate, production_metrics, production_version,
                       decision)

        version = None
        if decision.passed or params.promotion.register_rejected:
            model_uri = log_model(registry, run_id, trained.model_dir, splits)
            lineage = {
                "dataset_md5": dataset.md5, "dataset_path": dataset.path,
                "git_commit": dataset.git_commit, "params_hash": params.digest(),
                "prefect_flow_run_id": flow_run_id, "mlflow_run_id": run_id,
                "validation": "passed" if validation.success else "failed",
                "gate_decision": decision.verdict,
                "test_accuracy": f"{candidate.accuracy:.4f}",
                "test_macro_f1": f"{candidate.macro_f1:.4f}",
            }
            version = register_version(registry, name, model_uri, run_id, lineage)
            if not decision.passed:
                registry.set_version_tags(name, version, {"rejected": "true"})
        if decision.passed and version is not None:
            set_alias(registry, name, STAGING, version)
            if params.promotion.mode == "auto":
                set_alias(registry, name, PRODUCTION, version)
        registry.end_run(run_id, "FINISHED")
    except BaseException:
        registry.end_run(run_id, "FAILED")
        raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    summary = {
        "model": name,
        "dataset": {"path": dataset.path, "md5": dataset.md5, "git_commit": dataset.git_commit,
                    "rows": int(sum(splits.sizes().values())), "splits": splits.sizes()},
        "candidate": candidate.headline(),
        "production": None if production_metrics is None else production_metrics.headline(),
        "production_version_before": production_version,
        "production_version_after": registry.alias_version(name, PRODUCTION),
        "staging_version": registry.alias_version(name, STAGING),
        "decision": decision.to_dict(),
        "version": version,
        "mlflow_run_id": run_id,
        "tracking_uri": registry.tracking_uri,
        "train_seconds": trained.result.seconds,
    }
    get_run_logger().info("decision %s; %s@production is version %s", decision.verdict, name,
                          summary["production_version_after"])
    return summary


def _ensure(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    return directory

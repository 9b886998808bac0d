"""Training as a Prefect task: the attempt is tracked in the retrain's MLflow run."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from modelyard.config import Params
from modelyard.data.dataset import Splits
from modelyard.registry.mlflow_registry import MlflowRegistry
from modelyard.registry.training_log import train_tracked
from modelyard.training.fit import Trained


@task(name="train-candidate", cache_policy=NO_CACHE)
def train_candidate(
    splits: Splits,
    params: Params,
    registry: MlflowRegistry,
    run_id: str,
    out_dir: Path,
    checkpoints: Path | None = None,
    rendezvous: str | None = None,
) -> Trained:
    """Fine-tune with per-step and per-epoch metrics in MLflow; resumes from `checkpoints`.
    The attempt's compute cost is logged as it goes and at the end, next to the run's total
    over all its attempts. With `train.nnodes` > 1 the other machines join at `rendezvous`."""
    return train_tracked(
        splits, params, registry, run_id, out_dir, checkpoints, get_run_logger(), rendezvous
    )

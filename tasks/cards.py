"""Model cards as Prefect tasks: what the card needs that the run did not record yet, and the
card itself, logged to the version's run and shown as a Prefect artifact
(`modelyard.adapters.cards`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from modelyard.adapters import cards
from modelyard.card import Card
from modelyard.data.dataset import LABEL, TEXT, Splits
from modelyard.evaluation.calibration import Calibration, calibrate
from modelyard.inference import TextClassifier
from modelyard.orchestration.runs import artifact_key
from modelyard.registry.mlflow_registry import MlflowRegistry
from modelyard.store.audit import AuditLog


@task(name="record-card-inputs", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=2)
def record_card_inputs(
    model_dir: Path,
    test: pd.DataFrame,
    splits: Splits,
    labels: list[str],
    registry: MlflowRegistry,
    run_id: str,
) -> Calibration:
    """The candidate's calibration on its comparison set (`test`: the texts its test metrics
    are of) and each split's class mix, in its run."""
    result = calibrate(TextClassifier.load(model_dir), test[TEXT].tolist(), test[LABEL].tolist())
    cards.log_calibration(registry, run_id, result)
    cards.log_class_mix(registry, run_id, splits, labels)
    get_run_logger().info("calibration: %s", result.summary())
    return result


@task(name="publish-model-card", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def publish_card(
    registry: MlflowRegistry, audit: AuditLog, name: str, version: str, mlflow_ui: str
) -> Card:
    """The version's card, from the stores, under `card/` in its run and as the
    `model-card-<model>` Prefect artifact."""
    card = cards.publish(registry, audit, name, version, mlflow_ui)
    create_markdown_artifact(
        key=artifact_key("model-card", name),
        markdown=card.markdown,
        description=f"Model card of {name} version {version} (from what the platform recorded)",
    )
    get_run_logger().info("model card of %s version %s logged under card/", name, version)
    return card

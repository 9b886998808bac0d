from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from modelyard.config import DataParams, MonitorParams
from modelyard.events import MODEL_DEGRADED
from modelyard.monitoring.drift import DriftTest
from modelyard.monitoring.live import LiveQuality
from modelyard.monitoring.report import MonitorReport, assess
from modelyard.registry.mlflow_registry import MlflowRegistry



@task(name="load-predictions", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def load_predictions(database_url: str, model: str, version: str,
                     since: datetime) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The window's logged predictions of this version, and those of them with feedback
    (predicted and true label; the latest feedback per prediction wins)."""
    from sqlalchemy import select

    from modelyard.store.db import engine_for
    from modelyard.store.models import Feedback, Prediction

    engine = engine_for(database_url)
    try:
        with engine.connect() as connection:
            current = pd.read_sql(
                select(Prediction.id, Prediction.text, Prediction.label, Prediction.probabilities)
                .where(Prediction.model == model, Prediction.version == version,
                       Prediction.created_at >= since), connection)
            feedback = pd.read_sql(
                select(Feedback.prediction_id, Feedback.label, Feedback.created_at)
                .where(Feedback.created_at >= since), connection)
    finally:
        engine.dispose()
    latest = feedback.sort_values("created_at").drop_duplicates("prediction_id", keep="last")
    labelled = current.merge(latest, left_on="id", right_on="prediction_id",
                             suffixes=("", "_true"))
    labelled = pd.DataFrame({"predicted": labelled["label"], "actual": labelled["label_true"]})
    get_run_logger().info("%d predictions of %s version %s since %s, %d with feedback",
                          len(current), model, version, since.isoformat(), len(labelled))
    return current, labelled


@task(name="load-reference", cache_policy=NO_CACHE)
def load_reference(registry: MlflowRegistry, model: str, version: str, data: DataParams,
                   cache: Path) -> tuple[list[str] | None, float | None, int | None]:
    """The texts the version was trained on (its lineage names the file and its md5; the file
    or the dataset cache copy must still hash to it), its test accuracy and the size of the test
    split it was measured on (unknown for versions registered before that tag)."""
    from modelyard.data.dataset import TEXT, read_frame, to_canonical

    tags = registry.version_info(model, version).tags
    md5, path = tags.get("dataset_md5"), tags.get("dataset_path")
    accuracy = float(tags["test_accuracy"]) if "test_accuracy" in tags else None
    rows = int(tags["test_rows"]) or None if tags.get("test_rows", "").isdigit() else None
    candidates = [Path(path)] if path else []
    if md5 and cache.is_dir():
        candidates += sorted(cache.glob(f"{md5}*"))
    for candidate in candidates:
        if candidate.is_file() and hashlib.md5(candidate.read_bytes()).hexdigest() == md5:
            frame = to_canonical(read_frame(candidate), data)
            return frame[TEXT].tolist(), accuracy, rows
    get_run_logger().warning("training data of %s version %s (md5 %s) not found", model, version,
                             md5)
    return None, accuracy, rows


@task(name="assess-window", cache_policy=NO_CACHE)
def assess_window(registry: MlflowRegistry, name: str, version: str,
                  reference: list[str] | None, current: pd.DataFrame, labelled: pd.DataFrame,
                  policy: MonitorParams, accuracy: float | None, test_rows: int | None
                  ) -> tuple[list[DriftTest], LiveQuality, list[str]]:
    """Every drift test and live quality, with the serving version's own model."""
    classifier = registry.load_classifier(name, version=version)
    return assess(classifier, reference, current, labelled, policy, accuracy, test_rows)


@task(name="record-monitor-run", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def record(database_url: str, report: MonitorReport) -> None:
    """The report as a row, a Prefect artifact, and — when degraded — the event that starts a
    retrain (its id is derived from model, version and window, so a re-run of the same window
    emits the same event and Prefect keeps one)."""
    from prefect.events import emit_event
    from sqlalchemy import insert

    from modelyard.store.db import engine_for
    from modelyard.store.models import MonitorRun

    engine = engine_for(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(insert(MonitorRun), [{
                "model": report.model, "version": report.version,
                "window_start": report.window_start, "window_end": report.window_end,
                "predictions": report.predictions,
                "labelled": report.quality.labelled if report.quality else 0,
                "degraded": report.degraded, "report": report.to_dict(),
                "created_at": datetime.now(UTC)}])
    finally:
        engine.dispose()
    create_markdown_artifact(key="monitor", markdown=report.to_markdown(),
                             description=f"{report.model} version {report.version}")
    logger = get_run_logger()
    if report.degraded:
        emit_event(
            event=MODEL_DEGRADED,
            resource={"prefect.resource.id": f"modelyard.model.{report.model}",
                      "modelyard.version": report.version},
            payload={"reasons": report.reasons},
            id=uuid.uuid5(uuid.NAMESPACE_URL, f"{report.model}/{report.version}/"
                                              f"{report.window_end.isoformat()}"))
        logger.warning("%s version %s degraded: %s", report.model, report.version,
                       "; ".join(report.reasons))
    else:
        logger.info("%s version %s healthy", report.model, report.version)

from __future__ import annotations

import hashlib
import uuid
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from modelyard.config import DataParams, MonitorParams, Params
from modelyard.adapters.feedback import add_feedback_version
from modelyard.orchestration.events import (
    DATASET_ADDED,
    FEEDBACK_NEEDED,
    MODEL_DEGRADED,
    emit_dataset_added,
    emit_feedback_needed,
)
from modelyard.monitoring.action import Action, ActionKind, decide_action
from modelyard.monitoring.drift import DriftTest
from modelyard.monitoring.live import LiveQuality
from modelyard.monitoring.report import MonitorReport, assess
from modelyard.registry.mlflow_registry import MlflowRegistry
from modelyard.store.monitor_log import last_action, write_run


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


@task(name="respond-to-degradation", cache_policy=NO_CACHE)
def respond_to_degradation(registry: MlflowRegistry, report: MonitorReport, params: Params,
                           database_url: str, root: Path | None, cache: Path) -> Action:
    """What to do about a degraded window (`decide_action`), done: the next dataset version
    built from feedback and announced, or an alert asking for labels; never a retrain on the
    bytes the model already learnt from."""
    from modelyard.adapters.catalog import Catalog
    from modelyard.data.dataset import to_canonical
    from modelyard.adapters.feedback import base_for, count_new, read_feedback

    logger = get_run_logger()
    tags = registry.version_info(report.model, report.version).tags
    md5, path = tags.get("dataset_md5", ""), tags.get("dataset_path", str(params.data.path))
    base, name = base_for(Catalog(root).entries() if root else [], md5, path)
    training = _training_frame(base, md5, path, root, cache)
    if training is None:
        return _alert(report, Action(ActionKind.ALERT, f"the training data of version "
                                     f"{report.version} (md5 {md5}) cannot be read: feedback "
                                     "cannot be merged into it here"))
    feedback = read_feedback(database_url, report.model)
    action = decide_action(True, count_new(to_canonical(training, params.data), feedback.frame),
                           params.monitor.min_feedback_for_retrain,
                           last_action(database_url, report.model, report.version))
    if action.kind == ActionKind.NEW_DATA and root is None:
        action = replace(action, kind=ActionKind.ALERT, reason=(
            f"{action.reason}, but this run is not in a project checkout: run `modelyard data "
            f"from-feedback --base {base} --name {name}` in one"))
    logger.info("degraded: %s", action.reason)
    if action.kind == ActionKind.ALERT:
        return _alert(report, action)
    if action.kind != ActionKind.NEW_DATA:
        return action
    added, _ = add_feedback_version(base, name, params, database_url, root, cache)
    entry = added.entry
    if not added.created:
        return replace(action, reason=f"{action.reason}; the merged data is already "
                       f"{entry.ref}: nothing new to add", dataset=entry.ref)
    sent = emit_dataset_added(entry.ref, entry.md5)
    logger.info("added %s (%d rows) from %s + feedback%s", entry.ref, entry.rows or 0, base,
                f"; {DATASET_ADDED} emitted" if sent else "")
    return replace(action, dataset=entry.ref, event=DATASET_ADDED if sent else None)


def _training_frame(base: str, md5: str, path: str, root: Path | None,
                    cache: Path) -> pd.DataFrame | None:
    """The version's training data as read from its file: the catalog version (in a checkout),
    else the lineage's file or its dataset-cache copy, md5-checked; None when none is left."""
    from modelyard.adapters import datasets as sources
    from modelyard.data.dataset import read_frame

    if root is not None and base != path:
        return read_frame(sources.resolve(base, None, root, cache).path)
    candidates = [Path(path)] + (sorted(cache.glob(f"{md5}*")) if cache.is_dir() else [])
    for candidate in candidates:
        if candidate.is_file() and hashlib.md5(candidate.read_bytes()).hexdigest() == md5:
            return read_frame(candidate)
    return None


def _alert(report: MonitorReport, action: Action) -> Action:
    """A person must label more: a Prefect artifact, and an event an automation can route."""
    create_markdown_artifact(
        key="feedback-needed",
        markdown=(f"### {report.model} version {report.version} is degraded and needs labels\n\n"
                  f"{action.reason}\n\nWhy: " + "; ".join(report.reasons)),
        description="Monitor: label more live traffic")
    sent = emit_feedback_needed(report.model, report.version, action.new_feedback, action.reason)
    get_run_logger().warning("%s", action.reason)
    return replace(action, event=FEEDBACK_NEEDED if sent else None)


@task(name="record-monitor-run", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def record(database_url: str, report: MonitorReport) -> None:
    """The report as a row and a Prefect artifact, and — when degraded — the degradation event
    (its id is derived from model, version and window, so a re-run of the same window emits
    the same event and Prefect keeps one; no deployment retrains on it)."""
    from prefect.events import emit_event

    write_run(database_url, {
        "model": report.model, "version": report.version,
        "window_start": report.window_start, "window_end": report.window_end,
        "predictions": report.predictions,
        "labelled": report.quality.labelled if report.quality else 0,
        "degraded": report.degraded, "report": report.to_dict()})
    create_markdown_artifact(key="monitor", markdown=report.to_markdown(),
                             description=f"{report.model} version {report.version}")
    logger = get_run_logger()
    if report.degraded:
        emit_event(
            event=MODEL_DEGRADED,
            resource={"prefect.resource.id": f"modelyard.model.{report.model}",
                      "modelyard.version": report.version},
            payload={"reasons": report.reasons,
                     "action": None if report.action is None else report.action.to_dict()},
            id=uuid.uuid5(uuid.NAMESPACE_URL, f"{report.model}/{report.version}/"
                                              f"{report.window_end.isoformat()}"))
        logger.warning("%s version %s degraded: %s", report.model, report.version,
                       "; ".join(report.reasons))
    else:
        logger.info("%s version %s healthy", report.model, report.version)

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from modelyard.adapters.feedback import add_feedback_version
from modelyard.adapters.monitor_data import plan_response, reference_texts
from modelyard.config import DataParams, MonitorParams, Params
from modelyard.monitoring.action import Action, ActionKind, already_added
from modelyard.monitoring.drift import DriftTest
from modelyard.monitoring.live import LiveQuality
from modelyard.monitoring.reference import TrainedOn
from modelyard.monitoring.report import MonitorReport, assess
from modelyard.orchestration.events import (
    DATASET_ADDED,
    FEEDBACK_NEEDED,
    emit_dataset_added,
    emit_feedback_needed,
    emit_model_degraded,
)
from modelyard.orchestration.runs import artifact_key
from modelyard.registry.mlflow_registry import MlflowRegistry
from modelyard.store.monitor_log import read_window, record_run


@task(name="check-production-pointer", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def served_version(
    registry: MlflowRegistry, database_url: str, model: str, alias: str
) -> tuple[str | None, str | None]:
    """(the version the servers answer with, the sentence naming a move made outside ModelYard
    or None). Production moved in the MLflow UI/API is not followed by the servers, so the
    monitor watches the version the audit trail records, and announces the move."""
    from modelyard.adapters.pointer import pointer
    from modelyard.orchestration.events import emit_registry_tampered
    from modelyard.store.audit import AuditLog
    from modelyard.tags import PRODUCTION

    version = registry.alias_version(model, alias)
    if alias != PRODUCTION:
        return version, None
    audit = AuditLog.from_url(database_url)
    try:
        found = pointer(registry, audit, model, alias)
    finally:
        audit.engine.dispose()
    if found is None or not found.tampered:
        return version, None
    get_run_logger().warning("%s: monitoring the recorded version instead", found.sentence)
    emit_registry_tampered(found, "the monitor flow")
    return found.recorded, found.sentence


@task(name="load-predictions", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def load_predictions(
    database_url: str, model: str, version: str, since: datetime
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The window's logged predictions of this version, and those of them with feedback
    (predicted and true label; the latest feedback per prediction wins)."""
    current, labelled = read_window(database_url, model, version, since)
    get_run_logger().info(
        "%d predictions of %s version %s since %s, %d with feedback",
        len(current),
        model,
        version,
        since.isoformat(),
        len(labelled),
    )
    return current, labelled


@task(name="load-reference", cache_policy=NO_CACHE)
def load_reference(
    registry: MlflowRegistry, model: str, version: str, data: DataParams, cache: Path
) -> tuple[list[str] | None, float | None, int | None]:
    """The texts the version was trained on (its lineage names the file and its md5; the file
    or the dataset cache copy must still hash to it), its test accuracy and the size of the test
    split it was measured on (unknown for versions registered before that tag)."""
    trained = TrainedOn.from_tags(registry.version_info(model, version).tags)
    texts = reference_texts(trained, data, cache)
    if texts is None:
        get_run_logger().warning(
            "training data of %s version %s (md5 %s) not found", model, version, trained.md5
        )
    return texts, trained.test_accuracy, trained.test_rows


@task(name="assess-window", cache_policy=NO_CACHE)
def assess_window(
    registry: MlflowRegistry,
    name: str,
    version: str,
    reference: list[str] | None,
    current: pd.DataFrame,
    labelled: pd.DataFrame,
    policy: MonitorParams,
    accuracy: float | None,
    test_rows: int | None,
) -> tuple[list[DriftTest], LiveQuality, list[str]]:
    """Every drift test and live quality, with the serving version's own model."""
    classifier = registry.load_classifier(name, version=version)
    return assess(classifier, reference, current, labelled, policy, accuracy, test_rows)


@task(name="respond-to-degradation", cache_policy=NO_CACHE)
def respond_to_degradation(
    registry: MlflowRegistry,
    report: MonitorReport,
    params: Params,
    database_url: str,
    root: Path | None,
    cache: Path,
) -> Action:
    """What to do about a degraded window (`plan_response`), done: the next dataset version
    built from feedback and announced, or an alert asking for labels; never a retrain on the
    bytes the model already learnt from."""
    trained = TrainedOn.from_tags(registry.version_info(report.model, report.version).tags)
    plan = plan_response(report.model, report.version, trained, params, database_url, root, cache)
    logger = get_run_logger()
    if plan.judged:
        logger.info("degraded: %s", plan.action.reason)
    if plan.action.kind == ActionKind.ALERT:
        return _alert(report, plan.action)
    if plan.action.kind != ActionKind.NEW_DATA or root is None:
        return plan.action  # (new data is only ever asked for where there is a catalog)
    added, _ = add_feedback_version(plan.base, plan.name, params, database_url, root, cache)
    entry = added.entry
    if not added.created:
        return already_added(plan.action, entry.ref)
    sent = emit_dataset_added(entry.ref, entry.md5)
    logger.info(
        "added %s (%d rows) from %s + feedback%s",
        entry.ref,
        entry.rows or 0,
        plan.base,
        f"; {DATASET_ADDED} emitted" if sent else "",
    )
    return replace(plan.action, dataset=entry.ref, event=DATASET_ADDED if sent else None)


def _alert(report: MonitorReport, action: Action) -> Action:
    """A person must label more: a Prefect artifact, and an event an automation can route."""
    create_markdown_artifact(
        key=artifact_key("feedback-needed", report.model),
        markdown=(
            f"### {report.model} version {report.version} is degraded and needs labels\n\n"
            f"{action.reason}\n\nWhy: " + "; ".join(report.reasons)
        ),
        description="Monitor: label more live traffic",
    )
    sent = emit_feedback_needed(report.model, report.version, action.new_feedback, action.reason)
    get_run_logger().warning("%s", action.reason)
    return replace(action, event=FEEDBACK_NEEDED if sent else None)


@task(name="record-monitor-run", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def record(database_url: str, report: MonitorReport) -> None:
    """The report as a row and a Prefect artifact, and — when degraded — the degradation event
    (one per model, version and window: a re-run of the same window emits the same event)."""
    record_run(database_url, report)
    create_markdown_artifact(
        key=artifact_key("monitor", report.model),
        markdown=report.to_markdown(),
        description=f"{report.model} version {report.version}",
    )
    logger = get_run_logger()
    if report.degraded:
        emit_model_degraded(report)
        logger.warning(
            "%s version %s degraded: %s", report.model, report.version, "; ".join(report.reasons)
        )
    else:
        logger.info("%s version %s healthy", report.model, report.version)

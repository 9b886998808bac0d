"""The monitor: the serving version's predictions over a window → drift against its training
data, live quality from feedback → a row, an artifact, and, if breached, the degradation event
and a response: labelled feedback becomes the next dataset version (which retrains), or an
alert asks for labels."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from prefect import flow

from modelyard.adapters.datasets import checkout_root
from modelyard.config import Settings, load_params
from modelyard.monitoring.report import MonitorReport, too_few_to_judge
from modelyard.registry.mlflow_registry import MlflowRegistry
from tasks.monitor import (
    assess_window,
    load_predictions,
    load_reference,
    record,
    respond_to_degradation,
    served_version,
)


@flow(name="monitor", log_prints=True)
def monitor(params_path: str = "params.yaml", alias: str = "production") -> dict[str, Any]:
    params = load_params(params_path)
    policy, name = params.monitor, params.model.name
    settings = Settings()
    registry = MlflowRegistry.from_settings(settings)
    version, moved_outside = served_version(registry, settings.resolved_database_url(), name, alias)
    if version is None:
        return {
            "model": name,
            "version": None,
            "degraded": False,
            "notes": [f"{name}@{alias} does not exist: nothing to monitor"],
        }
    end = datetime.now(UTC)
    start = end - timedelta(hours=policy.window_hours)
    database, cache = settings.resolved_database_url(), settings.dataset_cache()
    current, labelled = load_predictions(database, name, version, start)
    report = MonitorReport(name, version, start, end, len(current))
    if (too_few := too_few_to_judge(len(current), policy)) is not None:
        report = replace(report, notes=[too_few])
    else:
        reference, accuracy, test_rows = load_reference(registry, name, version, params.data, cache)
        tests, quality, notes = assess_window(
            registry, name, version, reference, current, labelled, policy, accuracy, test_rows
        )
        report = replace(report, tests=tests, quality=quality, notes=notes)
        if report.degraded:
            report = replace(
                report,
                action=respond_to_degradation(
                    registry, report, params, database, checkout_root(), cache
                ),
            )
    if moved_outside is not None:
        report = replace(report, notes=[moved_outside, *report.notes])
    record(database, report)
    return report.to_dict()

"""The summary a person reads at the end of a retrain."""

from __future__ import annotations

from typing import Any

from modelyard.data.identity import DatasetVersion
from modelyard.evaluation.gate import GateDecision
from modelyard.evaluation.metrics import Metrics


def retrain_summary(
    name: str, dataset: DatasetVersion, splits: dict[str, int], candidate: Metrics,
    majority_baseline: float, production: tuple[str, Metrics] | None, decision: GateDecision,
    version: str | None,
    run_id: str, tracking_uri: str, staging_version: str | None,
    production_version: str | None, validation: dict[str, str] | None = None,
    training: dict[str, Any] | None = None, approval: dict[str, str] | None = None,
    rechecked_against: str | None = None,
) -> dict[str, Any]:
    """What a retrain did, as plain JSON-able data: the flow's return value."""
    before, before_metrics = production or (None, None)
    return {
        "model": name,
        "dataset": {"path": dataset.path, "md5": dataset.md5, "git_commit": dataset.git_commit,
                    "rows": sum(splits.values()), "splits": splits},
        "validation": validation,
        "training": training,
        "candidate": candidate.headline(),
        "majority_baseline_accuracy": majority_baseline,
        "production": None if before_metrics is None else before_metrics.headline(),
        "production_version_before": before,
        "production_version_after": production_version,
        "staging_version": staging_version,
        "decision": decision.to_dict(),
        # Production moved while this run evaluated: the decision is against this version.
        "rechecked_against": rechecked_against,
        "approval": approval,
        "version": version,
        "mlflow_run_id": run_id,
        "tracking_uri": tracking_uri,
    }


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def print_summary(summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    dataset = summary["dataset"]
    decision = summary["decision"]
    console.rule("[bold]ModelYard retrain")
    console.print(f"dataset   {dataset['path']}  md5 [bold]{dataset['md5']}[/]  "
                  f"({dataset['rows']} rows: {dataset['splits']})  git {dataset['git_commit'][:12]}")
    if summary.get("validation"):
        console.print(f"data      {summary['validation']['summary']}; Data Docs: "
                      f"{summary['validation']['docs']}")
    training = summary.get("training") or {}
    if training:
        resumed = training.get("resumed_from_step")
        note = f"; resumed from step {resumed}" if resumed is not None else ""
        console.print(f"training  {training['steps']} steps on {training['device']} "
                      f"({training['precision']}){note}")
        if training.get("dp_epsilon") is not None:
            console.print(f"privacy   differentially private: ε = {training['dp_epsilon']:.3f}")
        compute = training.get("compute") or {}
        if compute:
            console.print(
                f"compute   {compute['device_hours']:.4f} device-h, "
                f"{compute['energy_kwh'] * 1000:.2f} Wh ({compute['energy_source']}), "
                f"{compute['cost']:.4f} {compute['currency']}"
                + (f"; all {int(compute['attempts'])} attempts: {compute['total_cost']:.4f} "
                   f"{compute['currency']}" if compute.get("attempts", 1) > 1 else ""))
    table = Table(title="test split", show_edge=False)
    table.add_column("metric")
    table.add_column("candidate", justify="right")
    before = summary["production_version_before"]
    table.add_column(f"production (v{before})" if before else "production", justify="right")
    production = summary["production"] or {}
    for metric, value in summary["candidate"].items():
        table.add_row(metric, _fmt(value), _fmt(production.get(metric)))
    console.print(table)
    for note in decision.get("notes") or []:
        console.print(f"compared  {note}")
    console.print(f"baseline  always predicting the majority class: accuracy "
                  f"{summary['majority_baseline_accuracy']:.4f}")
    colour = "green" if decision["passed"] else "yellow"
    again = summary.get("rechecked_against")
    note = (f" (production moved to v{again} meanwhile: compared again against it)"
            if again else "")
    console.print(f"gate      [{colour}]{decision['verdict'].upper()}[/]{note}")
    for reason in decision["reasons"]:
        console.print(f"          - {reason}")
    name, version = summary["model"], summary["version"]
    if version is None:
        console.print("model     not registered")
    else:
        status = "" if decision["passed"] else " (tagged rejected, no alias)"
        console.print(f"model     {name} version {version}{status}")
    approval = summary.get("approval")
    if approval:
        console.print(f"approval  {approval['status']} by {approval['reviewer']}"
                      + (f": {approval['reason']}" if approval["reason"] else ""))
    console.print(f"aliases   staging → v{summary['staging_version']}, "
                  f"production → v{summary['production_version_after']}")
    if decision["passed"] is False and before:
        console.print(f"          production stays at version {before}")
    console.print(f"mlflow    run {summary['mlflow_run_id']}; open the UI with: "
                  f"[bold]mlflow ui --backend-store-uri {summary['tracking_uri']}[/]")

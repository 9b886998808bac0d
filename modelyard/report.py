"""The summary a person reads at the end of a retrain."""

from __future__ import annotations

from typing import Any


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
    table = Table(title="test split", show_edge=False)
    table.add_column("metric")
    table.add_column("candidate", justify="right")
    before = summary["production_version_before"]
    table.add_column(f"production (v{before})" if before else "production", justify="right")
    production = summary["production"] or {}
    for metric, value in summary["candidate"].items():
        table.add_row(metric, _fmt(value), _fmt(production.get(metric)))
    console.print(table)
    colour = "green" if decision["passed"] else "yellow"
    console.print(f"gate      [{colour}]{decision['verdict'].upper()}[/]")
    for reason in decision["reasons"]:
        console.print(f"          - {reason}")
    name, version = summary["model"], summary["version"]
    if version is None:
        console.print("model     not registered")
    else:
        status = "" if decision["passed"] else " (tagged rejected, no alias)"
        console.print(f"model     {name} version {version}{status}")
    console.print(f"aliases   staging → v{summary['staging_version']}, "
                  f"production → v{summary['production_version_after']}")
    if decision["passed"] is False and before:
        console.print(f"          production stays at version {before}")
    console.print(f"mlflow    run {summary['mlflow_run_id']}; open the UI with: "
                  f"[bold]mlflow ui --backend-store-uri {summary['tracking_uri']}[/]")

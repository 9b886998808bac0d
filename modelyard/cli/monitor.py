"""`modelyard monitor`: the monitor flow once, its verdict and what it did about it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer


def monitor(
    params: Annotated[Path, typer.Option(help="The params file (model.name, monitor).")] = Path(
        "params.yaml"
    ),
    alias: Annotated[str, typer.Option(help="The alias whose version is watched.")] = "production",
) -> None:
    """Run the monitor flow once: drift and live quality over the last window."""
    from modelyard.config import load_params

    load_params(params)
    from flows.monitor import monitor as monitor_flow

    report = monitor_flow(params_path=str(params), alias=alias)
    if report.get("version") is None:
        typer.echo(" ".join(report["notes"]))
        return
    verdict = "DEGRADED" if report["degraded"] else "healthy"
    typer.echo(
        f"{report['model']} version {report['version']}: {verdict} "
        f"({report['predictions']} predictions)"
    )
    for test in report.get("tests", []):
        typer.echo(f"  {'ALARM' if test['alarm'] else 'ok':5s} {test['name']}: {test['detail']}")
    if report.get("quality"):
        quality = report["quality"]
        typer.echo(
            f"  {'ALARM' if quality['alarm'] else 'ok':5s} live quality: {quality['detail']}"
        )
    for note in report.get("notes", []):
        typer.echo(f"  note: {note}")
    _print_action(report.get("action"))


def _print_action(action: dict[str, Any] | None) -> None:
    """What the monitor did about a degradation, the event it sent and the run that started."""
    if not action:
        return
    typer.echo(f"action: {action['kind']}: {action['reason']}")
    if action.get("dataset"):
        typer.echo(f"  dataset version {action['dataset']}")
    if action.get("event"):
        typer.echo(f"  event {action['event']} sent")
    elif action["kind"] in {"new-data", "alert"}:
        typer.echo("  no event sent (no Prefect server, or the version already existed)")
    if action.get("dataset") and action.get("event"):
        from modelyard.cli._follow import report_triggered_run

        report_triggered_run(action["dataset"])

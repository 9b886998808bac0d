"""Runs started elsewhere, followed from the terminal: a retrain on its deployment (its logs as
they come), or the retrain a dataset announcement triggered."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from modelyard.cli._common import Refused

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun


def retrain_remote(
    params: Path, data: str | None, data_repo: str | None, overrides: dict[str, Any]
) -> None:
    """Trigger the retrain deployment, print the run's logs as they come, exit with its
    outcome."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import get_current_settings
    from rich.console import Console

    from modelyard.orchestration.events import RETRAIN_DEPLOYMENT
    from modelyard.orchestration.follow import follow_flow_run

    if not get_current_settings().api.url:
        raise Refused("--remote needs a Prefect server with the deployment: set PREFECT_API_URL")
    run: FlowRun = run_deployment(  # type: ignore[assignment] # sync here: no event loop
        RETRAIN_DEPLOYMENT,
        timeout=0,
        parameters={
            "params_path": str(params.resolve()),
            "data_path": data,
            "data_repo": data_repo,
            "overrides": overrides or None,
        },
    )
    Console(stderr=True).print(f"flow run {run.id} ({run.name}) on the retrain deployment")
    with get_client(sync_client=True) as client:
        state = follow_flow_run(client, run.id, typer.echo)
    if not state.is_completed():
        raise Refused(f"flow run {run.id} ended {state.type.value}: {state.message}")


def report_triggered_run(ref: str) -> None:
    """Which run of the retrain deployment the announcement of `ref` started, or that none
    did within the wait."""
    from modelyard.orchestration.events import RETRAIN_DEPLOYMENT, triggered_retrain

    found = triggered_retrain(ref)
    if found is None:
        typer.echo(
            f"no run of the {RETRAIN_DEPLOYMENT} deployment on {ref} appeared within 30 s: "
            "is the deployment there with its trigger (`modelyard deploy`, or `make up`)?"
        )
    else:
        run, state = found
        typer.echo(
            f"started {RETRAIN_DEPLOYMENT} run {run} on {ref} ({state}; queued behind a "
            "running retrain if there is one, never cancelled)"
        )

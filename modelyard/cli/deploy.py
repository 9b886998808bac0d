"""`modelyard deploy`: the platform's flows as deployments on a work pool."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelyard.cli._common import Refused


def deploy(
    work_pool: Annotated[str, typer.Option(help="The work pool (process or kubernetes).")] = "cpu",
) -> None:
    """Create or update the deployments of the platform's flows on a work pool (PREFECT_API_URL
    must name a server)."""
    from prefect.settings import get_current_settings

    from modelyard.orchestration.deployments import deploy as deploy_flows

    if not get_current_settings().api.url:
        raise Refused(
            "deployments live on a Prefect server: set PREFECT_API_URL (`modelyard "
            "stack up` prints it)"
        )
    for name, identifier in deploy_flows(Path.cwd(), work_pool).items():
        typer.echo(f"{name}/{name} on {work_pool}: {identifier}")

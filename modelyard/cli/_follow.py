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
    params: Path,
    data: str | None,
    data_repo: str | None,
    overrides: dict[str, Any],
    deployment: str = "retrain",
    size: tuple[int, int] = (1, 1),
    force: bool = False,
) -> None:
    """Trigger a retrain deployment, print the run's logs as they come, exit with its outcome.
    `size` (train.nnodes, train.nproc) sizes the Job on a work pool whose job template takes
    `nodes` and `gpus_per_node` (infra/k8s/gpu-pool-job-template.json)."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import get_current_settings
    from rich.console import Console

    from modelyard.orchestration.events import RETRAIN_DEPLOYMENT
    from modelyard.orchestration.follow import follow_flow_run

    if not get_current_settings().api.url:
        raise Refused("--remote needs a Prefect server with the deployment: set PREFECT_API_URL")
    name = f"{RETRAIN_DEPLOYMENT.split('/')[0]}/{deployment}"
    with get_client(sync_client=True) as client:
        job_variables = _job_size(client, name, size)
    # A pod of a sized (Kubernetes) pool reads a relative --params in its own project folder,
    # the image's; a worker on this machine reads this file.
    in_image = job_variables is not None and not params.is_absolute()
    run: FlowRun = run_deployment(  # type: ignore[assignment] # sync here: no event loop
        name,
        timeout=0,
        parameters={
            "params_path": str(params if in_image else params.resolve()),
            "data_path": data,
            "data_repo": data_repo,
            "overrides": overrides or None,
            # Only when given: a deployment made before `force` existed takes no such parameter.
            **({"force": True} if force else {}),
        },
        job_variables=job_variables,
    )
    Console(stderr=True).print(f"flow run {run.id} ({run.name}) on the {name} deployment")
    with get_client(sync_client=True) as client:
        state = follow_flow_run(client, run.id, typer.echo)
    if not state.is_completed():
        raise Refused(f"flow run {run.id} ended {state.type.value}: {state.message}")


def _job_size(client: Any, name: str, size: tuple[int, int]) -> dict[str, int] | None:
    """{nodes, gpus_per_node} where the deployment's work pool sizes its Job by them (the
    params decide, so the pods and train.nnodes agree); None on any other pool, which
    refuses train.nnodes > 1 (nothing would join)."""
    from prefect.exceptions import ObjectNotFound

    try:
        pool = client.read_work_pool(client.read_deployment_by_name(name).work_pool_name)
    except ObjectNotFound:
        raise Refused(f"no deployment {name} on the Prefect server (`modelyard deploy`)") from None
    variables = pool.base_job_template.get("variables", {}).get("properties", {})
    if {"nodes", "gpus_per_node"} <= variables.keys():
        return {"nodes": size[0], "gpus_per_node": size[1]}
    if size[0] > 1:
        raise Refused(
            f"train.nnodes is {size[0]} but work pool {pool.name} runs one machine per flow run: "
            "use --deployment retrain-gpu (docs/operations/cluster.md)"
        )
    return None


def report_triggered_run(ref: str) -> None:
    """Which run of the retrain deployment the announcement of `ref` started, or that none
    did within the wait."""
    from modelyard.orchestration.events import RETRAIN_DEPLOYMENT, NotDeployed, triggered_retrain

    try:
        found = triggered_retrain(ref)
    except NotDeployed:
        typer.echo(
            f"no {RETRAIN_DEPLOYMENT} deployment on the Prefect server, so nothing retrains on "
            f"{ref} by itself: `modelyard deploy` (or `make up`) creates it; or run "
            f"`modelyard retrain --data {ref}`"
        )
        return
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

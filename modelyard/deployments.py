"""The platform's flows as Prefect deployments on work pools (the same ones `prefect.yaml`
declares for `prefect deploy --all`), and triggering one from the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# name → (entrypoint, description)
FLOWS = {
    "retrain": ("flows/retrain.py:retrain",
                "Validate, train, evaluate against production, gate, register, promote, deploy."),
    "batch-predict": ("flows/batch_predict.py:batch_predict",
                      "Score a file or table with a registered version; resumable."),
}


def deploy(source: Path, work_pool: str, names: tuple[str, ...] = tuple(FLOWS),
           job_variables: dict[str, Any] | None = None) -> dict[str, str]:
    """Create or update the deployments of `names` on `work_pool`, running the code in
    `source` (a checkout every worker of the pool can read). {name: deployment id}."""
    from prefect import flow

    ids = {}
    for name in names:
        entrypoint, description = FLOWS[name]
        loaded = flow.from_source(source=str(source.resolve()), entrypoint=entrypoint)
        ids[name] = str(loaded.deploy(
            name=name, work_pool_name=work_pool, build=False, push=False,
            job_variables={"working_dir": str(source.resolve()), **(job_variables or {})},
            description=description, tags=["modelyard"], ignore_warnings=True,
            print_next_steps=False))
    return ids


def trigger(flow_name: str, deployment: str, parameters: dict[str, Any],
            timeout_s: float | None = None) -> Any:
    """Start a run of the deployment and wait for it to end (None: no limit): its final flow
    run (state, id)."""
    from prefect.deployments import run_deployment

    return run_deployment(f"{flow_name}/{deployment}", parameters=parameters,
                          timeout=timeout_s, poll_interval=2)

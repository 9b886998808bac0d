"""The platform's flows as Prefect deployments on work pools (the same ones `prefect.yaml`
declares for `prefect deploy --all`), with their schedules and event triggers, and triggering
one from the CLI.

- retrain: weekly (`monitor.retrain_schedule`) and on every new dataset version (the
  `modelyard.dataset.added` event, with that version as `data_path`; the event id is derived
  from the version, so announcing it twice starts one run). One run at a time, the others
  queued behind it (ENQUEUE), never cancelled: a new version's retrain always runs. A degraded
  model does not retrain on the bytes it learnt from: the monitor turns labelled feedback into
  the next dataset version, whose announcement is what retrains (`flows/monitor.py`).
- monitor: hourly (`monitor.monitor_schedule`).
- rollout: every 15 minutes (`rollout.evaluate_schedule`): judges the open rollout of the
  model, if any (a run with none does nothing). One at a time; a run due while another still
  judges is not started (the next one comes soon).
- retention: daily at 02:30 UTC (`privacy.retention_days`).
- batch-predict: on request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelyard.orchestration.events import DATASET_ADDED

# name → (entrypoint, description)
FLOWS = {
    "retrain": (
        "flows/retrain.py:retrain",
        "Validate, train, evaluate against production, gate, register, promote, deploy.",
    ),
    "monitor": (
        "flows/monitor.py:monitor",
        "Drift and live quality of the production model over the last window.",
    ),
    "rollout": (
        "flows/rollout.py:rollout",
        "Judge the open rollout on live evidence: promote the challenger, abort it, or wait.",
    ),
    "retention": (
        "flows/retention.py:retention",
        "Delete prediction-log and feedback rows older than privacy.retention_days.",
    ),
    "batch-predict": (
        "flows/batch_predict.py:batch_predict",
        "Score a file or table with a registered version; resumable.",
    ),
}


def schedules_and_triggers(
    name: str, params: Any, params_path: str, data_repo: str | None = None
) -> dict[str, Any]:
    """What makes each deployment run by itself. `data_repo`: where dataset versions named by
    events live, when not in the deployment's own checkout."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.events import DeploymentEventTrigger

    if name == "retrain":
        return {
            "cron": params.monitor.retrain_schedule,
            "parameters": {"params_path": params_path},
            "concurrency_limit": ConcurrencyLimitConfig(
                limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE
            ),
            "triggers": [
                DeploymentEventTrigger(
                    name="new dataset version",
                    expect={DATASET_ADDED},
                    match={"prefect.resource.id": "modelyard.dataset.*"},
                    parameters={
                        "params_path": params_path,
                        "data_path": "{{ event.payload.ref }}",
                        **({"data_repo": data_repo} if data_repo else {}),
                    },
                ),
            ],
        }
    if name == "monitor":
        return {
            "cron": params.monitor.monitor_schedule,
            "parameters": {"params_path": params_path},
            "concurrency_limit": ConcurrencyLimitConfig(
                limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
            ),
        }
    if name == "rollout":
        return {
            "cron": params.rollout.evaluate_schedule,
            "parameters": {"params_path": params_path},
            "concurrency_limit": ConcurrencyLimitConfig(
                limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
            ),
        }
    if name == "retention":
        return {"cron": "30 2 * * *", "parameters": {"params_path": params_path}}
    return {}


def deploy(
    source: Path,
    work_pool: str,
    names: tuple[str, ...] = tuple(FLOWS),
    job_variables: dict[str, Any] | None = None,
    params_path: Path | None = None,
    automatic: bool = True,
    data_repo: str | None = None,
) -> dict[str, str]:
    """Create or update the deployments of `names` on `work_pool`, running the code in
    `source` (a checkout every worker of the pool can read), with their schedules and triggers
    unless `automatic` is False. {name: deployment id}."""
    from prefect import Flow, flow

    from modelyard.config import load_params

    params_file = (params_path or source / "params.yaml").resolve()
    params = load_params(params_file)
    ids = {}
    for name in names:
        entrypoint, description = FLOWS[name]
        loaded = flow.from_source(source=str(source.resolve()), entrypoint=entrypoint)
        if not isinstance(loaded, Flow):  # a coroutine only when called from async code
            raise TypeError(f"{entrypoint}: loaded {type(loaded).__name__}, not a flow")
        extra = (
            schedules_and_triggers(name, params, str(params_file), data_repo) if automatic else {}
        )
        ids[name] = str(
            loaded.deploy(
                name=name,
                work_pool_name=work_pool,
                build=False,
                push=False,
                job_variables={"working_dir": str(source.resolve()), **(job_variables or {})},
                description=description,
                tags=["modelyard"],
                ignore_warnings=True,
                print_next_steps=False,
                **extra,
            )
        )
    return ids


def trigger(
    flow_name: str, deployment: str, parameters: dict[str, Any], timeout_s: float | None = None
) -> Any:
    """Start a run of the deployment and wait for it to end (None: no limit): its final flow
    run (state, id)."""
    from prefect.deployments import run_deployment

    return run_deployment(
        f"{flow_name}/{deployment}", parameters=parameters, timeout=timeout_s, poll_interval=2
    )

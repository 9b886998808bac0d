"""The rollout verdict: the open rollout of a model → finish an ending an earlier run began, or
read the live evidence since it started → the policy's verdict → promote (the challenger takes
`production`), abort (the challenger alias removed) or wait (the statistics recorded).

On a schedule (`rollout.evaluate_schedule`) and on demand (`modelyard rollout evaluate`); a run
with no open rollout does nothing. Every outcome is an audit-trail row and a Prefect artifact.
"""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from modelyard.adapters.rollout_actions import Evaluated, Stores
from modelyard.config import Settings, load_params
from tasks.rollout import act, finish_interrupted, gather_evidence, judge


def _run_name() -> str:
    model = flow_run.parameters.get("model")
    return f"rollout {model}" if model else f"rollout of {flow_run.parameters.get('params_path')}"


@flow(name="rollout", log_prints=True, flow_run_name=_run_name)
def rollout(params_path: str = "params.yaml", model: str | None = None) -> Evaluated:
    """Judge the open rollout of `model` (default: `model.name`) on live evidence and act."""
    params = load_params(params_path)
    name = model or params.model.name
    settings = Settings()
    stores = Stores.from_settings(settings)
    actor = f"flow-run:{flow_run.id or 'local'}"
    found = stores.rollouts.current(name)
    if found is None:
        get_run_logger().info("%s has no open rollout: nothing to judge", name)
        return Evaluated(name, None, None, f"{name} has no open rollout: nothing to do")
    finished = finish_interrupted(stores, found, actor)
    if finished is not None:
        return finished
    now = datetime.now(UTC)
    evidence = gather_evidence(settings.resolved_database_url(), found, now, params.monitor)
    verdict = judge(evidence, params.rollout, found)
    return act(stores, found, verdict, actor)

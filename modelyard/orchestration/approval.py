"""Manual promotion, the reviewer's half: answer the retrain that paused for a version's approval
(`modelyard models approve|reject`), as the Prefect UI's form does.

The run's half is `tasks.promote.wait_for_approval`: it tags the version `approval=waiting` and
`approval_flow_run=<its flow run id>`, then pauses with a form. Those two tags are how a
reviewer who knows only the model and the version finds the run to resume.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from modelyard import tags as tag

if TYPE_CHECKING:
    from modelyard.registry.mlflow_registry import MlflowRegistry

# How long an answer is retried while the run is still on its way into the pause.
PAUSE_SETTLE_S = 60.0


class ApprovalError(Exception):
    """The answer could not be given; the message says why, in one sentence."""


def waiting_flow_run(name: str, version: str, tags: Mapping[str, str]) -> str:
    """The flow run waiting for an answer about `version`, read from the version's tags."""
    status, flow_run = tags.get(tag.APPROVAL), tags.get(tag.APPROVAL_FLOW_RUN)
    if status != tag.APPROVAL_WAITING or not flow_run:
        raise ApprovalError(
            f"{name} version {version} is not waiting for approval (approval: "
            f"{status or 'never asked'}); `modelyard models promote {name} {version}` moves "
            "production by hand"
        )
    return flow_run


def answer(
    registry: MlflowRegistry,
    name: str,
    version: str,
    approve: bool,
    reviewer: str,
    reason: str,
    settle_s: float = PAUSE_SETTLE_S,
    poll_s: float = 0.5,
) -> str:
    """Resume the retrain paused for `version` with the reviewer's answer; the flow run's id."""
    from mlflow.exceptions import MlflowException
    from prefect.settings import get_current_settings

    try:
        tags = registry.version_info(name, version).tags
    except MlflowException:
        raise ApprovalError(f"{name} has no version {version}") from None
    flow_run = waiting_flow_run(name, version, tags)
    if not get_current_settings().api.url:
        raise ApprovalError(
            f"the retrain waiting for it is flow run {flow_run} on a Prefect "
            "server: set PREFECT_API_URL to that server"
        )
    given = {"approve": approve, "reviewer": reviewer, "reason": reason}
    _resume(registry, name, version, flow_run, given, settle_s, poll_s)
    return flow_run


def _resume(
    registry: MlflowRegistry,
    name: str,
    version: str,
    flow_run: str,
    given: dict[str, object],
    settle_s: float,
    poll_s: float,
) -> None:
    from uuid import UUID

    from prefect.exceptions import FlowPauseTimeout, NotPausedError
    from prefect.flow_runs import resume_flow_run

    # The run tags the version "waiting" just before it pauses and saves its form's schema just
    # after: an answer given in between finds it still running, or paused without a schema.
    # Both last a moment, so the answer is retried for a while before it counts as too late.
    deadline = time.monotonic() + settle_s
    while True:
        try:
            resume_flow_run(UUID(flow_run), run_input=given)
            return
        except NotPausedError:
            if not _pausing(flow_run) or time.monotonic() > deadline:
                raise ApprovalError(
                    f"flow run {flow_run}, which asked for approval of {name} version {version}, "
                    "is no longer paused (answered, timed out or cancelled)"
                ) from None
        except FlowPauseTimeout:
            raise ApprovalError(
                f"flow run {flow_run} stopped waiting: its approval timed out"
            ) from None
        except RuntimeError as exc:
            if "schema not found" not in str(exc) or time.monotonic() > deadline:
                raise ApprovalError(f"flow run {flow_run} refused the answer: {exc}") from None
        if registry.version_info(name, version).tags.get(tag.APPROVAL) != tag.APPROVAL_WAITING:
            raise ApprovalError(f"{name} version {version} is no longer waiting for approval")
        time.sleep(poll_s)


def _pausing(flow_run: str) -> bool:
    """Whether the run is still on its way to the pause (running, not ended)."""
    from uuid import UUID

    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        state = client.read_flow_run(UUID(flow_run)).state
    return state is not None and (state.is_running() or state.is_paused())

"""The reviewer's half of manual promotion, without a Prefect server: which run waits for the
answer, the refusals, and the retry while the run is still on its way into its pause."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import pytest

from modelyard.orchestration import approval
from modelyard.orchestration.approval import ApprovalError, answer, waiting_flow_run

RUN = "6f1c1e3c-39d4-4a3e-9f55-0c8a3b0a9a10"
WAITING = {"approval": "waiting", "approval_flow_run": RUN}


def test_the_waiting_run_is_read_from_the_version_tags():
    assert waiting_flow_run("m", "3", WAITING) == RUN


@pytest.mark.parametrize(
    "tags, words",
    [
        ({}, "(approval: never asked)"),
        ({"approval": "approved", "approval_flow_run": RUN}, "(approval: approved)"),
        ({"approval": "waiting"}, "(approval: waiting)"),
    ],
)
def test_a_version_not_waiting_is_refused_pointing_at_promote(tags, words):
    with pytest.raises(ApprovalError) as refused:
        waiting_flow_run("m", "3", tags)
    assert words in str(refused.value)
    assert "`modelyard models promote m 3` moves production by hand" in str(refused.value)


@dataclass
class Registry:
    tags: dict[str, str] | None

    def version_info(self, name: str, version: str) -> SimpleNamespace:
        from mlflow.exceptions import MlflowException

        if self.tags is None:
            raise MlflowException("no such version")
        return SimpleNamespace(tags=dict(self.tags))


@pytest.fixture
def api(monkeypatch):
    """A Prefect API URL (or none), as the settings would name it."""
    import prefect.settings

    def set_url(url: str | None) -> None:
        monkeypatch.setattr(
            prefect.settings,
            "get_current_settings",
            lambda: SimpleNamespace(api=SimpleNamespace(url=url)),
        )

    set_url("http://127.0.0.1:4200/api")
    return set_url


@pytest.fixture
def resumes(monkeypatch):
    """resume_flow_run replaced: each call takes the next outcome (an error to raise, or None)."""
    import prefect.flow_runs

    outcomes: list[BaseException | None] = []
    given: list[dict] = []

    def resume(flow_run, run_input):
        given.append(run_input)
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome

    monkeypatch.setattr(prefect.flow_runs, "resume_flow_run", resume)
    monkeypatch.setattr(approval, "_pausing", lambda flow_run: True)
    return outcomes, given


def test_an_answer_resumes_the_run_with_the_reviewer_and_reason(api, resumes):
    outcomes, given = resumes
    outcomes.append(None)
    assert answer(Registry(WAITING), "m", "3", True, "ann", "looks good") == RUN
    assert given == [{"approve": True, "reviewer": "ann", "reason": "looks good"}]


def test_an_answer_before_the_pause_is_saved_is_retried(api, resumes):
    from prefect.exceptions import NotPausedError

    outcomes, given = resumes
    outcomes += [NotPausedError(), RuntimeError("Run input schema not found"), None]
    answer(Registry(WAITING), "m", "3", False, "ann", "", poll_s=0)
    assert len(given) == 3


@pytest.mark.parametrize(
    "case, words",
    [
        ("ended", "is no longer paused (answered, timed out or cancelled)"),
        ("timeout", "stopped waiting: its approval timed out"),
        ("refused", "refused the answer: bad input"),
    ],
)
def test_a_run_that_cannot_take_the_answer_is_named(api, resumes, monkeypatch, case, words):
    from prefect.exceptions import FlowPauseTimeout, NotPausedError

    outcomes, _ = resumes
    outcomes.append(
        {
            "ended": NotPausedError(),
            "timeout": FlowPauseTimeout(),
            "refused": RuntimeError("bad input"),
        }[case]
    )
    monkeypatch.setattr(approval, "_pausing", lambda flow_run: False)
    with pytest.raises(ApprovalError, match=words.replace("(", r"\(").replace(")", r"\)")):
        answer(Registry(WAITING), "m", "3", True, "ann", "", poll_s=0)


def test_a_version_answered_meanwhile_stops_the_retries(api, resumes):
    from prefect.exceptions import NotPausedError

    outcomes, _ = resumes
    outcomes.append(NotPausedError())
    # The first read finds it waiting; by the retry another answer (the UI's) has come.
    reads = iter([WAITING, {**WAITING, "approval": "approved"}])
    registry = Registry(WAITING)
    registry.version_info = lambda name, version: SimpleNamespace(tags=next(reads))
    with pytest.raises(ApprovalError, match="no longer waiting for approval"):
        answer(registry, "m", "3", True, "ann", "", poll_s=0)


@pytest.mark.parametrize(
    "tags, url, words",
    [
        (None, "http://127.0.0.1:4200/api", "m has no version 3"),
        (WAITING, None, f"flow run {RUN} on a Prefect server: set PREFECT_API_URL"),
    ],
)
def test_refused_before_any_resume(api, resumes, tags, url, words):
    api(url)
    with pytest.raises(ApprovalError, match=words):
        answer(Registry(tags), "m", "3", True, "ann", "")
    assert resumes[1] == []

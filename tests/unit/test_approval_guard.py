"""The retrain's pause for approval with `promotion.approvers`: an answer from anyone else
(the Prefect UI's form names its reviewer freely) is refused, noted, and the run waits again
under a fresh pause key for the time left. Prefect's pause is replaced by a fake."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import tasks.promote as promote


class Decision:
    def to_markdown(self) -> str:
        return "gate report"


def test_a_refused_answer_is_noted_and_the_run_waits_again(monkeypatch):
    answers = iter(
        [
            SimpleNamespace(approve=True, reviewer="bob", reason="looks fine"),
            SimpleNamespace(approve=True, reviewer="ann", reason="checked"),
        ]
    )
    keys: list[str] = []

    def pause_flow_run(**kwargs):
        keys.append(kwargs["key"])
        return next(answers)

    refused: list[tuple] = []

    def check_approver(registry, audit, name, actor, approvers, what):
        refused.append((actor, what))
        raise promote_refused(f"{name}@production stays at version 1: bob may not {what}")

    from modelyard.adapters import manual_moves

    promote_refused = manual_moves.MoveRefused
    monkeypatch.setattr("prefect.flow_runs.pause_flow_run", pause_flow_run)
    monkeypatch.setattr(manual_moves, "check_approver", check_approver)
    monkeypatch.setattr(promote, "get_run_logger", lambda: logging.getLogger("test"))

    def accepted(outcome):
        return promote._from_an_approver(None, object(), "m", "2", outcome, ("ann",))

    outcome = promote._paused_for_answer("m", "2", "run-id", 600, Decision(), accepted=accepted)
    assert (outcome.status, outcome.reviewer, outcome.reason) == ("approved", "ann", "checked")
    assert keys == ["approve-m-2", "approve-m-2-1"]
    assert refused == [("user:bob", "approve m version 2 (promotion.mode manual)")]


def test_without_approvers_the_first_answer_counts(monkeypatch):
    monkeypatch.setattr(
        "prefect.flow_runs.pause_flow_run",
        lambda **kwargs: SimpleNamespace(approve=False, reviewer="", reason="no"),
    )

    def accepted(outcome):
        return promote._from_an_approver(None, None, "m", "2", outcome, ())

    outcome = promote._paused_for_answer("m", "2", "run-id", 600, Decision(), accepted=accepted)
    assert (outcome.status, outcome.reviewer) == ("rejected", "unnamed reviewer")

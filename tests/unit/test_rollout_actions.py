"""The pure parts of acting on a rollout: which ending a half-done rollout was in the middle
of, the verdict as the rollout keeps it, and its one line in the audit trail."""

from __future__ import annotations

from datetime import UTC, datetime

from modelyard.adapters.rollout_actions import Decided, cut_short, summary
from modelyard.rollout import Outcome, RolloutVerdict
from modelyard.store.rollouts import Rollout, RolloutState

ROLLOUT = Rollout(1, "m", "1", "2", "shadow", 0.0, RolloutState.OPEN, datetime.now(UTC), "t")


def test_where_the_aliases_point_says_which_ending_was_cut_short():
    assert cut_short(ROLLOUT, production="1", challenger="2") is None  # untouched
    assert cut_short(ROLLOUT, production="2", challenger="2") is Outcome.PROMOTE
    assert cut_short(ROLLOUT, production="2", challenger=None) is Outcome.PROMOTE
    assert cut_short(ROLLOUT, production="1", challenger=None) is Outcome.ABORT
    assert cut_short(ROLLOUT, production="3", challenger=None) is Outcome.ABORT


def test_the_line_carries_reasons_and_statistics_but_not_the_clock():
    verdict = RolloutVerdict(
        Outcome.CONTINUE,
        ("Too few labels.", "Wait."),
        {"z": 1.23456, "elapsed_h": 0.5, "alpha": 0.05},
        labels_needed=15,
    )
    assert summary(verdict) == (
        "continue: Too few labels. Wait. [alpha=0.05, z=1.235, labels_needed=15]"
    )
    assert summary(RolloutVerdict(Outcome.ABORT, ("Worse.",))) == "abort: Worse."


def test_a_recorded_verdict_reads_back_and_anything_else_reads_as_none():
    verdict = RolloutVerdict(Outcome.PROMOTE, ("Better.",), {"z": 3.0})
    decided = Decided.of(verdict, "flow-run:x", datetime(2026, 1, 1, tzinfo=UTC))
    assert decided.summary == "promote: Better. [z=3]"
    acting = Decided(**{**decided.__dict__, "acting": Outcome.PROMOTE})
    assert Decided.from_dict(acting.to_dict()) == acting
    assert Decided.from_dict(decided.to_dict()) == decided
    assert Decided.from_dict(None) is None
    assert Decided.from_dict({"z": 1.0}) is None  # another shape
    assert Decided.from_dict({**decided.to_dict(), "outcome": "maybe"}) is None


def test_a_promote_superseded_by_a_moved_production_becomes_an_abort_saying_why():
    decided = Decided.of(RolloutVerdict(Outcome.PROMOTE, ("Better.",)), "flow-run:x")
    moved = decided.superseded("3", "1")
    assert moved.outcome is Outcome.ABORT
    assert moved.reasons[0].startswith("production moved to version 3 since the rollout")
    assert moved.summary.endswith("(the verdict was promote: Better.)")
    by_hand = Decided.by_hand(Outcome.ABORT, "wrong week", "user:ana")
    assert (by_hand.summary, by_hand.by) == ("abort: by hand: wrong week", "user:ana")

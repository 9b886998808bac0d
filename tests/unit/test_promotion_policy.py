"""The rules of hand-made alias moves (promote, rollback), without MLflow."""

from __future__ import annotations

import pytest

from modelyard.promotion import FORCED, Verdict, blockers, decide_alias_move

REJECTED = {
    "rejected": "true",
    "gate_decision": "reject",
    "gate_report": "REJECT\npass min_accuracy: 0.91 >= 0.5\n"
    "FAIL no_regression: accuracy 0.80 vs production 0.85",
}
DEPLOY_FAILED = {"deploy": "failed", "deploy_error": "http://s:8000: still reports version 1"}


def decide(tags, current="1", version="2", alias="production", reason=None, force=False):
    return decide_alias_move(version, tags, alias, current, reason, "rollback", force)


def test_an_ordinary_version_moves_with_the_default_or_given_reason():
    assert decide({}).verdict is Verdict.MOVE and decide({}).audit_reason == "rollback"
    moved = decide({"gate_decision": "pass"}, reason="latency regression")
    assert moved.moves and not moved.forced and moved.audit_reason == "latency regression"
    assert decide({}, current=None).moves  # nothing in production yet


@pytest.mark.parametrize(
    "tags, words",
    [
        (REJECTED, ["the gate rejected it", "no_regression: accuracy 0.80 vs production 0.85"]),
        (DEPLOY_FAILED, ["its deployment failed", "still reports version 1"]),
    ],
)
def test_rejected_or_failed_deployment_is_refused_and_says_why(tags, words):
    decision = decide(tags)
    assert decision.verdict is Verdict.REFUSED and not decision.moves
    assert decision.audit_reason is None
    for word in [*words, "version 2", "@production", "--force --reason"]:
        assert word in decision.refusal


def test_both_blockers_are_named():
    found = blockers({**REJECTED, **DEPLOY_FAILED}, "production")
    assert [b.split(" (")[0] for b in found] == ["the gate rejected it", "its deployment failed"]


def test_a_failed_deployment_only_blocks_production():
    assert decide(DEPLOY_FAILED, alias="staging").moves
    assert not decide(REJECTED, alias="staging").moves


def test_force_needs_a_reason_of_its_own():
    for reason in (None, "", "   "):
        refused = decide(REJECTED, force=True, reason=reason)
        assert refused.verdict is Verdict.REFUSED and "needs --reason" in refused.refusal


def test_forcing_is_audited_as_forced_over_what_and_why():
    decision = decide(
        {**REJECTED, **DEPLOY_FAILED}, force=True, reason="v1 leaks PII, v2 is the lesser evil"
    )
    assert decision.moves and decision.forced
    assert decision.audit_reason.startswith(FORCED)
    for word in ("the gate rejected it", "its deployment failed", "v1 leaks PII"):
        assert word in decision.audit_reason


def test_force_on_an_allowed_version_is_an_ordinary_move():
    decision = decide({}, force=True, reason="because")
    assert decision.moves and not decision.forced and decision.audit_reason == "because"


@pytest.mark.parametrize("tags", [{}, REJECTED, DEPLOY_FAILED])
def test_a_move_to_where_the_alias_is_changes_nothing(tags):
    for force in (False, True):
        decision = decide(tags, current="2", version="2", force=force, reason="again")
        assert decision.verdict is Verdict.ALREADY_THERE and not decision.moves
        assert decision.audit_reason is None and decision.refusal is None

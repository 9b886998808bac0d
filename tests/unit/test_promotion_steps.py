"""The decisions and records moved out of the promotion and training tasks, as plain values."""

from __future__ import annotations

import pandas as pd
import pytest

from modelyard.config import GateParams
from modelyard.data.dataset import Splits
from modelyard.data.membership import Membership, SplitLineage, comparison_set, fair_or_fail
from modelyard.evaluation.gate import decide
from modelyard.promotion import production_moved
from modelyard.registry.lineage import decision_tags
from modelyard.registry.tracking import flat
from modelyard.tags import GATE_DECISION, GATE_REPORT_URI, REJECTED, TRUE
from modelyard.training.cost import ComputeCost, gate_compute


@pytest.mark.parametrize(
    "current, compared_with, candidate, moved",
    [
        ("1", "1", "3", False),  # where the decision left it
        ("3", "1", "3", False),  # the candidate itself (an earlier attempt promoted it)
        (None, None, "1", False),  # still no production
        ("2", "1", "3", True),  # another retrain promoted meanwhile
        ("2", None, "3", True),  # a first model appeared meanwhile
    ],
)
def test_production_moved(current, compared_with, candidate, moved):
    assert production_moved(current, compared_with, candidate) is moved


def test_no_fair_comparison_when_the_champion_saw_every_test_text():
    test = pd.DataFrame({"text": ["a b", "c d"], "label": ["x", "y"]})
    champion = Membership.of(Splits(test, test.iloc[0:0], test.iloc[0:0]))
    lineage = SplitLineage(None, {}, {})
    with pytest.raises(ValueError, match="every one of the 2 test texts"):
        fair_or_fail(comparison_set(test, champion, "1", lineage))
    kept = comparison_set(test, None, None, lineage)
    assert fair_or_fail(kept) is kept


def test_decision_tags_mark_a_rejection_and_point_at_the_report():
    policy = GateParams()
    passed = decide({"accuracy": 0.9, "macro_f1": 0.9}, None, policy)
    failed = decide({"accuracy": 0.1, "macro_f1": 0.1}, None, policy)
    assert REJECTED not in decision_tags(passed, "r1")
    tags = decision_tags(failed, "r1")
    assert tags[REJECTED] == TRUE and tags[GATE_DECISION] == "reject"
    assert tags[GATE_REPORT_URI] == "runs:/r1/gate/decision.md"


def test_gate_compute_shows_this_attempt_and_the_runs_totals():
    cost = ComputeCost("cpu", "x86_64", 2, 10.0, 0.01, 30.0, 0.001, "estimate", 0.0, 0.5, "USD")
    shown = gate_compute(cost, {"attempts": 2.0, "cost": 0.8, "seconds": 16.0})
    assert shown["device"] == "cpu" and shown["cost"] == 0.5
    assert shown["attempts"] == 2.0 and shown["total_cost"] == 0.8
    assert "total_attempts" not in shown
    assert gate_compute(None, None) == {}
    assert gate_compute(cost, None)["attempts"] == 1.0


def test_params_flatten_to_dotted_keys():
    assert flat({"train": {"epochs": 2, "privacy": {"enabled": False}}, "seed": 1}) == {
        "train.epochs": 2,
        "train.privacy.enabled": False,
        "seed": 1,
    }

"""The gate decision table."""

import pytest

from modelyard.config import GateParams
from modelyard.evaluation.gate import decide

POLICY = GateParams(
    min_accuracy=0.6,
    min_macro_f1=0.55,
    max_regression=0.01,
    min_improvement=0.005,
    primary_metric="macro_f1",
)


def m(accuracy: float, macro_f1: float) -> dict[str, float]:
    return {"accuracy": accuracy, "macro_f1": macro_f1}


@pytest.mark.parametrize(
    ("candidate", "production", "passed", "failing"),
    [
        # First model: absolute thresholds only.
        (m(0.70, 0.65), None, True, set()),
        (m(0.59, 0.65), None, False, {("minimum", "accuracy")}),
        (m(0.70, 0.50), None, False, {("minimum", "macro_f1")}),
        (m(0.60, 0.55), None, True, set()),  # thresholds are inclusive
        # Against production: must improve the primary metric by the minimum delta...
        (m(0.80, 0.80), m(0.80, 0.80), False, {("improvement", "macro_f1")}),
        (m(0.80, 0.804), m(0.80, 0.80), False, {("improvement", "macro_f1")}),
        (m(0.80, 0.806), m(0.80, 0.80), True, set()),
        # ...without regressing another metric beyond the tolerance...
        (m(0.785, 0.83), m(0.80, 0.80), False, {("no_regression", "accuracy")}),
        (m(0.795, 0.83), m(0.80, 0.80), True, set()),
        # ...and still meeting the absolute minimums.
        (m(0.55, 0.60), m(0.55, 0.50), False, {("minimum", "accuracy")}),
        # A worse model fails on several counts, and every one is reported.
        (
            m(0.70, 0.60),
            m(0.80, 0.80),
            False,
            {
                ("no_regression", "accuracy"),
                ("no_regression", "macro_f1"),
                ("improvement", "macro_f1"),
            },
        ),
    ],
)
def test_gate_table(candidate, production, passed, failing):
    decision = decide(candidate, production, POLICY)
    assert decision.passed is passed
    assert {(c.name, c.metric) for c in decision.checks if not c.passed} == failing
    assert decision.verdict == ("promote" if passed else "reject")
    if not passed:
        assert len(decision.reasons) == len(failing)


def test_primary_metric_is_configurable():
    policy = POLICY.model_copy(update={"primary_metric": "accuracy"})
    decision = decide(m(0.82, 0.80), m(0.80, 0.80), policy)
    assert decision.passed
    improvement = next(c for c in decision.checks if c.name == "improvement")
    assert improvement.metric == "accuracy"
    assert improvement.threshold == pytest.approx(0.805)


def test_report_lists_every_check_with_values():
    decision = decide(m(0.80, 0.80), m(0.80, 0.80), POLICY)
    text = decision.to_markdown()
    assert "REJECT" in text
    assert text.count("| minimum |") == 2 and text.count("| no_regression |") == 2
    assert "improves by +0.0000" in text
    assert decision.to_dict()["checks"][0]["candidate"] == 0.80


def test_first_model_reason():
    assert decide(m(0.9, 0.9), None, POLICY).reasons == ["first model: all absolute thresholds met"]


def full(
    accuracy: float, macro_f1: float, recalls: tuple[float, float], short: float, **costs: float
) -> dict[str, float]:
    return {
        **m(accuracy, macro_f1),
        "recall_neg": recalls[0],
        "recall_pos": recalls[1],
        "slice_length_short_accuracy": short,
        **costs,
    }


SLICED = POLICY.model_copy(
    update={
        "min_class_recall": 0.5,
        "max_slice_regression": 0.05,
        "max_latency_p95_ms": 50.0,
        "max_model_size_mb": 100.0,
    }
)


@pytest.mark.parametrize(
    ("candidate", "production", "passed", "failing"),
    [
        # Every class must reach its recall floor, first model or not.
        (full(0.8, 0.8, (0.9, 0.7), 0.8), None, True, set()),
        (full(0.8, 0.8, (0.9, 0.45), 0.8), None, False, {("class_minimum", "recall_pos")}),
        # Better on average, worse on one class beyond the slice tolerance: rejected.
        (
            full(0.85, 0.85, (0.95, 0.70), 0.85),
            full(0.8, 0.8, (0.8, 0.80), 0.8),
            False,
            {("slice", "recall_pos")},
        ),
        (full(0.85, 0.85, (0.95, 0.76), 0.85), full(0.8, 0.8, (0.8, 0.80), 0.8), True, set()),
        # ...or on a text-length slice.
        (
            full(0.85, 0.85, (0.9, 0.9), 0.70),
            full(0.8, 0.8, (0.8, 0.8), 0.80),
            False,
            {("slice", "slice_length_short_accuracy")},
        ),
        # Budgets: p95 latency and model size, inclusive.
        (
            full(0.8, 0.8, (0.8, 0.8), 0.8, latency_p95_ms=50.0, model_size_mb=100.0),
            None,
            True,
            set(),
        ),
        (
            full(0.8, 0.8, (0.8, 0.8), 0.8, latency_p95_ms=51.0, model_size_mb=101.0),
            None,
            False,
            {("budget", "latency_p95_ms"), ("budget", "model_size_mb")},
        ),
    ],
)
def test_class_slice_and_budget_checks(candidate, production, passed, failing):
    decision = decide(candidate, production, SLICED)
    assert decision.passed is passed
    assert {(c.name, c.metric) for c in decision.checks if not c.passed} == failing


def test_budgets_and_floors_are_off_by_default():
    decision = decide(full(0.8, 0.8, (0.1, 0.1), 0.8, latency_p95_ms=1e6), None, POLICY)
    assert decision.passed and {c.name for c in decision.checks} == {"minimum"}


def test_tag_text_lists_every_check_and_fits_a_registry_tag():
    decision = decide(m(0.80, 0.70), m(0.82, 0.72), POLICY)
    lines = decision.to_text().splitlines()
    assert lines[0] == "REJECT" and len(lines) == 1 + len(decision.checks)
    assert "FAIL no_regression: accuracy 0.8000 vs production 0.8200" in lines[3]
    many = decide(
        {**m(0.9, 0.9), **{f"slice_{i}": 0.5 for i in range(300)}},
        {**m(0.8, 0.8), **{f"slice_{i}": 0.5 for i in range(300)}},
        POLICY,
    )
    text = many.to_text()
    assert len(text) <= 5000 and text.endswith("(cut; see the run)")


PRIVATE = POLICY.model_copy(update={"max_epsilon": 3.0})


@pytest.mark.parametrize(
    ("epsilon", "passed", "reason"),
    [
        (2.5, True, "ε 2.500 within the privacy budget 3"),
        (3.0, True, "ε 3.000 within the privacy budget 3"),  # inclusive
        (3.2, False, "ε 3.200 over the privacy budget 3"),
        (None, False, "trained without differential privacy"),
    ],
)
def test_privacy_budget(epsilon, passed, reason):
    candidate = {**m(0.9, 0.9), **({} if epsilon is None else {"dp_epsilon": epsilon})}
    decision = decide(candidate, None, PRIVATE)
    assert decision.passed is passed
    (check,) = [c for c in decision.checks if c.name == "privacy"]
    assert check.passed is passed and reason in check.reason
    # No budget: ε is not judged, with or without DP.
    assert [c for c in decide(candidate, None, POLICY).checks if c.name == "privacy"] == []


def test_compute_cost_is_shown_but_never_gated():
    compute = {
        "device": "cpu",
        "device_name": "x86_64",
        "devices": 2,
        "seconds": 36.0,
        "device_hours": 0.02,
        "samples_per_second": 500.0,
        "energy_kwh": 0.0004,
        "energy_source": "codecarbon",
        "cost": 0.0008,
        "currency": "USD",
        "attempts": 2.0,
        "total_device_hours": 0.03,
        "total_energy_kwh": 0.0006,
        "total_cost": 0.0012,
    }
    decision = decide(m(0.9, 0.9), None, POLICY, compute)
    assert decision.passed and decision.to_dict()["compute"] == compute
    line = (
        "2 × cpu (x86_64), 36.0 s, 0.0200 device-h, 500 samples/s, 0.40 Wh (codecarbon), "
        "0.0008 USD; all 2 attempt(s): 0.0300 device-h, 0.60 Wh, 0.0012 USD"
    )
    assert decision.to_text().splitlines()[-1] == f"info compute: {line}"
    assert f"**Compute** (not gated): {line}" in decision.to_markdown()

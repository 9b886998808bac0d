"""The rollout verdict (`modelyard.rollout.decide`) on constructed evidence: no database, no
server, no clock. Includes the false promotion rate at the non-inferiority null, simulated."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from modelyard.config import RolloutParams
from modelyard.rollout import (
    Evidence,
    Labelled,
    Outcome,
    Paired,
    VersionTraffic,
    decide,
    farrington_manning_z,
    newcombe_lower,
    normal_cdf,
    normal_quantile,
    tango_z,
    wilson,
)

START = datetime(2026, 1, 1, tzinfo=UTC)
CANARY = RolloutParams(strategy="canary", min_feedback=100, min_requests=50)
SHADOW = RolloutParams(strategy="shadow", min_feedback=100, min_requests=50)
HEALTHY = VersionTraffic(requests=1000, errors=0, p95_latency_ms=20.0)


def canary(
    champion: tuple[int, int],
    challenger: tuple[int, int],
    traffic: tuple[VersionTraffic, VersionTraffic] = (HEALTHY, HEALTHY),
    hours: float = 1.0,
) -> Evidence:
    """Canary evidence; labelled counts as (correct, total)."""
    return Evidence(
        "canary",
        START,
        START + timedelta(hours=hours),
        traffic[0],
        traffic[1],
        Labelled(*champion),
        Labelled(*challenger),
        None,
        None,
    )


def shadow(
    pairs: Paired,
    agreement: tuple[int, int] | None = None,
    drift: tuple[str, ...] = (),
    challenger: VersionTraffic = HEALTHY,
) -> Evidence:
    n = pairs.total
    agreed = agreement or (n, n)
    return Evidence(
        "shadow",
        START,
        START + timedelta(hours=1),
        HEALTHY,
        challenger,
        Labelled(pairs.both_right + pairs.only_champion, n),
        Labelled(pairs.both_right + pairs.only_challenger, n),
        pairs,
        Labelled(*agreed),
        drift,
    )


def test_the_normal_helpers_and_the_score_statistics_match_their_textbook_forms():
    assert normal_quantile(0.95) == pytest.approx(1.6448536269514722, abs=1e-9)
    assert normal_cdf(1.959963984540054) == pytest.approx(0.975, abs=1e-12)
    assert wilson(0, 10, 1.96) == pytest.approx((0.0, 0.2775), abs=1e-4)
    # At a zero margin the score tests are the pooled two-proportion z and McNemar's z.
    pooled = (80 + 70) / 200
    classic = (0.8 - 0.7) / math.sqrt(pooled * (1 - pooled) * (2 / 100))
    assert farrington_manning_z(80, 100, 70, 100, 0.0) == pytest.approx(classic)
    assert tango_z(15, 5, 200, 0.0) == pytest.approx((15 - 5) / math.sqrt(20))
    # Newcombe's bound: 0 of 50 errors against 50 of 50 is an increase of nearly all of them.
    assert 0.9 < newcombe_lower(50, 50, 0, 50, 1.645) < 1.0


@pytest.mark.parametrize("delta", [-0.05, -0.02, 0.03])
def test_the_score_statistics_use_the_likelihood_maximum_under_the_null(delta):
    # The closed-form restricted estimates against a brute-force maximum on a fine grid.
    grid = np.linspace(1e-6, 1 - 1e-6, 400_001)
    x1, n1, x2, n2 = 170, 200, 80, 100  # challenger, champion
    p1 = grid[(grid - delta > 0) & (grid - delta < 1)]
    p2 = p1 - delta
    ll = x1 * np.log(p1) + (n1 - x1) * np.log1p(-p1) + x2 * np.log(p2) + (n2 - x2) * np.log1p(-p2)
    r1 = p1[ll.argmax()]
    r2 = r1 - delta
    expected = (x1 / n1 - x2 / n2 - delta) / math.sqrt(r1 * (1 - r1) / n1 + r2 * (1 - r2) / n2)
    assert farrington_manning_z(x1, n1, x2, n2, delta) == pytest.approx(expected, rel=1e-4)
    gains, losses, n = 14, 9, 200  # only the challenger right, only the champion right
    q = grid[(grid + delta > 0) & (2 * grid + delta < 1)]  # P(only champion right)
    ll = (
        losses * np.log(q)
        + gains * np.log(q + delta)
        + (n - gains - losses) * np.log(1 - 2 * q - delta)
    )
    qt = q[ll.argmax()]
    variance = n * (2 * qt + delta - delta * delta)
    expected = (gains - losses - n * delta) / math.sqrt(variance)
    assert tango_z(gains, losses, n, delta) == pytest.approx(expected, rel=1e-4)


def test_a_better_canary_challenger_is_promoted_with_its_figures():
    verdict = decide(canary((850, 1000), (93, 100)), CANARY)
    assert verdict.outcome is Outcome.PROMOTE and verdict.labels_needed is None
    stats = verdict.statistics
    assert stats["challenger_accuracy"] == 0.93 and stats["champion_accuracy"] == 0.85
    assert stats["z"] > stats["z_critical"] and stats["p_noninferiority"] < 0.05
    assert stats["accuracy_difference_lower_bound"] > -CANARY.max_accuracy_drop
    assert "Farrington-Manning" in verdict.reasons[0] and "not worse" in verdict.reasons[0]
    json.dumps(verdict.to_dict(), allow_nan=False)  # goes into an audit row and an artifact
    assert "promote" in verdict.to_markdown() and "| z |" in verdict.to_markdown()


def test_a_worse_canary_challenger_is_aborted():
    verdict = decide(canary((900, 1000), (70, 100)), CANARY)
    assert verdict.outcome is Outcome.ABORT
    assert verdict.statistics["p_inferiority"] < 0.05
    assert verdict.statistics["accuracy_difference_upper_bound"] < -CANARY.max_accuracy_drop
    assert "worse by more than 2.0 points" in verdict.reasons[0]


def test_too_few_labels_continue_and_count_the_labels_at_the_traffic_split():
    # The challenger answers 10% of requests: its 60 missing labels take about 600 in all.
    split = (VersionTraffic(900, 0, 20.0), VersionTraffic(100, 0, 20.0))
    verdict = decide(canary((400, 500), (38, 40), split), CANARY)
    assert verdict.outcome is Outcome.CONTINUE and verdict.labels_needed == 600
    assert "100 labels" in verdict.reasons[0]
    paired = decide(shadow(Paired(50, 2, 3, 5)), SHADOW)
    assert paired.outcome is Outcome.CONTINUE and paired.labels_needed == 40


def test_an_undecided_comparison_estimates_the_labels_that_decide_it():
    verdict = decide(canary((170, 200), (168, 200)), CANARY)
    assert verdict.outcome is Outcome.CONTINUE
    needed = verdict.labels_needed
    assert needed is not None and needed > 0
    # The same accuracies on that many more labels (half each) would just reach a verdict:
    # with 10% fewer still not, with 10% more they do (counts rounded to whole labels).
    for share, outcome in [(0.9, Outcome.CONTINUE), (1.1, Outcome.PROMOTE)]:
        n = round((200 + share * needed / 2) / 100) * 100  # whole labels at 85% and 84%
        later = decide(canary((85 * n // 100, n), (84 * n // 100, n)), CANARY)
        assert later.outcome is outcome


def test_shadow_pairs_promote_a_better_challenger_and_abort_a_worse_one():
    better = decide(shadow(Paired(170, 2, 12, 16)), SHADOW)
    assert better.outcome is Outcome.PROMOTE and "Tango" in better.reasons[0]
    assert better.statistics["labelled_pairs"] == 200
    assert better.statistics["agreement"] == 1.0
    worse = decide(shadow(Paired(150, 30, 4, 16)), SHADOW)
    assert worse.outcome is Outcome.ABORT and "worse by more than" in worse.reasons[0]


def test_a_non_inferior_shadow_challenger_that_disagrees_or_drifts_is_aborted():
    pairs = Paired(170, 2, 12, 16)
    disagrees = decide(shadow(pairs, agreement=(140, 200)), SHADOW)
    assert disagrees.outcome is Outcome.ABORT
    assert any("agreed with the champion on 140 of 200" in r for r in disagrees.reasons)
    drifts = decide(shadow(pairs, drift=("label mix",)), SHADOW)
    assert drifts.outcome is Outcome.ABORT and "label mix" in drifts.reasons[-1]


def test_the_error_guardrail_aborts_before_quality_is_judged():
    failing = (HEALTHY, VersionTraffic(200, 20, 20.0))  # 10% errors against none
    verdict = decide(canary((850, 1000), (95, 100), failing), CANARY)
    assert verdict.outcome is Outcome.ABORT and "failed 20 of 200" in verdict.reasons[0]
    assert verdict.statistics["error_rate_increase_lower_bound"] > CANARY.max_error_rate_increase
    # One error more than the champion's rate is within the allowed increase.
    slight = (VersionTraffic(1000, 5, 20.0), VersionTraffic(200, 2, 20.0))
    assert decide(canary((850, 1000), (95, 100), slight), CANARY).outcome is Outcome.PROMOTE


@pytest.mark.parametrize("champion_share", [1, 9])  # shadow: as many; a 10% canary: 9 times
def test_a_challenger_failing_every_request_is_rolled_back_within_five(champion_share):
    for n in range(1, CANARY.min_requests + 1):
        traffic = (VersionTraffic(champion_share * n, 0, 20.0), VersionTraffic(n, n, 20.0))
        if decide(canary((0, 0), (0, 0), traffic), CANARY).outcome is Outcome.ABORT:
            break
    assert n <= 5


def test_the_latency_guardrail_is_a_canary_rule_from_min_requests():
    slow = (HEALTHY, VersionTraffic(200, 0, 40.0))  # p95 twice the champion's
    verdict = decide(canary((850, 1000), (95, 100), slow), CANARY)
    assert verdict.outcome is Outcome.ABORT and "2.00 times" in verdict.reasons[0]
    few = (HEALTHY, VersionTraffic(20, 0, 40.0))
    assert decide(canary((0, 0), (0, 0), few), CANARY).outcome is Outcome.CONTINUE
    # In shadow the challenger's latency is nobody's wait.
    assert decide(shadow(Paired(170, 2, 12, 16), challenger=slow[1]), SHADOW).outcome is (
        Outcome.PROMOTE
    )


def test_an_undecided_rollout_past_its_duration_is_aborted():
    limited = CANARY.model_copy(update={"max_duration_h": 24.0})
    assert decide(canary((0, 0), (0, 0), hours=23.9), limited).outcome is Outcome.CONTINUE
    late = decide(canary((0, 0), (0, 0), hours=24.0), limited)
    assert late.outcome is Outcome.ABORT and "24.0 hours" in late.reasons[0]
    assert late.statistics["elapsed_h"] == 24.0
    # A verdict reached in time stands.
    assert decide(canary((850, 1000), (93, 100), hours=30), limited).outcome is Outcome.PROMOTE


def test_an_unknown_strategy_is_refused_by_name():
    evidence = replace(canary((0, 0), (0, 0)), strategy="direct")
    with pytest.raises(ValueError, match="'direct'"):
        decide(evidence, CANARY)


def _promotion_rate(samples: np.ndarray, evidence_of, params: RolloutParams) -> float:
    """Share of simulated samples promoted. `decide` is pure, so each distinct sample is decided
    once and counted as often as it was drawn (the same rate, in a fraction of the time)."""
    distinct, counts = np.unique(samples, axis=0, return_counts=True)
    promoted = sum(
        int(count)
        for row, count in zip(distinct, counts, strict=True)
        if decide(evidence_of(*(int(x) for x in row)), params).outcome is Outcome.PROMOTE
    )
    return promoted / len(samples)


SEEDS = 2000
# Monte-Carlo slack: three standard errors of a rate alpha over SEEDS draws (about 0.015).
SLACK = 3 * math.sqrt(0.05 * 0.95 / SEEDS)


def test_false_promotion_rate_at_the_margin_two_sample():
    # The challenger is worse by exactly the margin (the null of non-inferiority).
    rng = np.random.default_rng(21)
    n_old, n_new, p_old = 400, 200, 0.85
    p_new = p_old - CANARY.max_accuracy_drop
    draws = np.column_stack([rng.binomial(n_old, p_old, SEEDS), rng.binomial(n_new, p_new, SEEDS)])

    def evidence_of(old: int, new: int) -> Evidence:
        return canary((old, n_old), (new, n_new))

    assert _promotion_rate(draws, evidence_of, CANARY) <= CANARY.alpha + SLACK


def test_false_promotion_rate_at_the_margin_paired():
    # Only-champion-right 6%, only-challenger-right 4%: the challenger is 2 points (the margin)
    # worse on the same requests.
    rng = np.random.default_rng(21)
    n = 300
    draws = rng.multinomial(n, [0.80, 0.06, 0.04, 0.10], SEEDS)

    def evidence_of(both: int, old: int, new: int, neither: int) -> Evidence:
        return shadow(Paired(both, old, new, neither))

    assert _promotion_rate(draws, evidence_of, SHADOW) <= SHADOW.alpha + SLACK

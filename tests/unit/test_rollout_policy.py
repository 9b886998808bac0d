"""The rollout verdict (`modelyard.rollout.decide`) on constructed evidence: no database, no
server, no clock. Includes the planned looks (fixed prefixes of the ordered outcomes), the false
promotion rate of a rollout evaluated again and again at the non-inferiority null, and the power
on a better challenger, simulated."""

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
    look_alpha,
    looks,
    newcombe_lower,
    normal_cdf,
    normal_quantile,
    planned_labels,
    tango_z,
    wilson,
)

START = datetime(2026, 1, 1, tzinfo=UTC)
CANARY = RolloutParams(strategy="canary", min_feedback=100, min_requests=50)
SHADOW = RolloutParams(strategy="shadow", min_feedback=100, min_requests=50)
HEALTHY = VersionTraffic(requests=1000, errors=0, p95_latency_ms=20.0)


# Outcome codes of a labelled pair: (champion right, challenger right); of a canary's labelled
# answer: (answered by the challenger, right).
PAIRS = ((True, True), (True, False), (False, True), (False, False))
ANSWERS = ((False, True), (False, False), (True, True), (True, False))


def shuffled(counts: tuple[int, ...], kinds: tuple[tuple[bool, bool], ...], seed: int = 0):
    """`counts[i]` outcomes of kind `kinds[i]`, in a fixed random order (as labels come in)."""
    codes = np.repeat(np.arange(len(kinds)), counts)
    np.random.default_rng(seed).shuffle(codes)
    return tuple(kinds[c] for c in codes)


def canary(
    champion: tuple[int, int],
    challenger: tuple[int, int],
    traffic: tuple[VersionTraffic, VersionTraffic] = (HEALTHY, HEALTHY),
    hours: float = 1.0,
    ordered: bool = True,
) -> Evidence:
    """Canary evidence; labelled counts as (correct, total), the answers in a random order."""
    (old, n_old), (new, n_new) = champion, challenger
    answers = shuffled((old, n_old - old, new, n_new - new), ANSWERS) if ordered else ()
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
        answer_outcomes=answers,
    )


def canary_of(answers: tuple[tuple[bool, bool], ...]) -> Evidence:
    """Canary evidence of ordered (challenger's, right) answers, at an even traffic split."""
    count = [answers.count(kind) for kind in ANSWERS]
    old, new = (count[0], count[0] + count[1]), (count[2], count[2] + count[3])
    return replace(canary(old, new, ordered=False), answer_outcomes=answers)


def shadow(
    pairs: Paired,
    agreement: tuple[int, int] | None = None,
    drift: tuple[str, ...] = (),
    challenger: VersionTraffic = HEALTHY,
    ordered: bool = True,
) -> Evidence:
    """Shadow evidence of these pair counts, the pairs in a random order."""
    n = pairs.total
    agreed = agreement or (n, n)
    counts = (pairs.both_right, pairs.only_champion, pairs.only_challenger, pairs.both_wrong)
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
        pair_outcomes=shuffled(counts, PAIRS) if ordered else (),
    )


def shadow_of(outcomes: tuple[tuple[bool, bool], ...]) -> Evidence:
    """Shadow evidence of ordered (champion right, challenger right) pairs."""
    pairs = Paired(*(outcomes.count(kind) for kind in PAIRS))
    return replace(shadow(pairs, ordered=False), pair_outcomes=outcomes)


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
    # Shown at look 0 (each version's first 100 labels), at half the rollout's alpha.
    assert (stats["look"], stats["look_alpha"]) == (0, CANARY.alpha / 2)
    assert stats["look_z"] > stats["look_z_critical"] == pytest.approx(1.959964, abs=1e-6)
    assert stats["look_p_noninferiority"] < stats["look_alpha"]
    assert stats["look_lower_bound"] > -CANARY.max_accuracy_drop
    assert "Farrington-Manning" in verdict.reasons[0] and "not worse" in verdict.reasons[0]
    assert "look 0" in verdict.reasons[0]
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


def test_an_undecided_comparison_waits_for_the_next_planned_look():
    # 150 pairs: look 0 (the first 100) did not show it; look 1 is at 200 pairs.
    verdict = decide(shadow(Paired(120, 9, 9, 12)), SHADOW)
    assert verdict.outcome is Outcome.CONTINUE and verdict.labels_needed == 50
    assert verdict.statistics["next_look_labels"] == 200 and verdict.statistics["look"] == 0
    assert "the next look is at 200 labels, about 50 more" in verdict.reasons[0]
    # A canary at a 10% share: the challenger's 50 missing labels take about 500 in all.
    split = (VersionTraffic(900, 0, 20.0), VersionTraffic(100, 0, 20.0))
    verdict = decide(canary((1275, 1500), (128, 150), split), CANARY)
    assert verdict.outcome is Outcome.CONTINUE and verdict.labels_needed == 500
    assert "at 200 labels each" in verdict.reasons[0]


def test_shadow_pairs_promote_a_better_challenger_and_abort_a_worse_one():
    better = decide(shadow(Paired(170, 2, 12, 16)), SHADOW)
    assert better.outcome is Outcome.PROMOTE and "Tango" in better.reasons[0]
    assert better.statistics["labelled_pairs"] == 200
    assert better.statistics["agreement"] == 1.0
    worse = decide(shadow(Paired(150, 30, 4, 16)), SHADOW)
    assert worse.outcome is Outcome.ABORT and "worse by more than" in worse.reasons[0]


def test_a_non_inferior_shadow_challenger_that_disagrees_or_drifts_is_aborted():
    pairs = Paired(170, 2, 12, 16)
    disagrees = decide(shadow(pairs, agreement=(90, 200)), SHADOW)
    assert disagrees.outcome is Outcome.ABORT
    assert any("agreed with the champion on 90 of 200" in r for r in disagrees.reasons)
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


def test_looks_are_planned_at_doubling_label_counts_with_halving_alphas():
    assert [planned_labels(SHADOW, k) for k in range(4)] == [100, 200, 400, 800]
    assert [look_alpha(SHADOW, k) for k in range(3)] == [0.025, 0.0125, 0.00625]
    assert sum(look_alpha(SHADOW, k) for k in range(60)) == pytest.approx(SHADOW.alpha)
    taken = looks(shadow(Paired(700, 40, 60, 99)), SHADOW)  # 899 pairs: looks 0 to 3
    assert [(look.index, look.sample.labels) for look in taken] == [
        (0, 100),
        (1, 200),
        (2, 400),
        (3, 800),
    ]
    # A canary's look k: the answers until each version has n_k (all the champion's until then).
    answers = ((False, True),) * 250 + ((True, True),) * 99 + ((True, False), (False, False))
    (first,) = looks(canary_of(answers), CANARY)
    assert (first.sample.champion, first.sample.challenger) == (
        Labelled(250, 250),
        Labelled(99, 100),
    )
    assert looks(shadow(Paired(90, 0, 9, 0)), SHADOW) == ()  # before min_feedback: none


def test_adding_labels_never_changes_an_earlier_look():
    rng = np.random.default_rng(2)
    pairs = tuple(PAIRS[c] for c in rng.choice(4, 900, p=[0.80, 0.04, 0.08, 0.08]))
    answers = tuple(ANSWERS[c] for c in rng.choice(4, 900, p=[0.42, 0.08, 0.45, 0.05]))
    for evidence_of, outcomes, params in [(shadow_of, pairs, SHADOW), (canary_of, answers, CANARY)]:
        final = looks(evidence_of(outcomes), params)
        # A better challenger whose first look did not show it, a later one did.
        assert len(final) >= 3 and not final[0].promotes and final[-1].promotes
        promoted = False
        for m in range(100, len(outcomes) + 1, 37):
            early = looks(evidence_of(outcomes[:m]), params)
            assert early == final[: len(early)]  # each look reached: the same prefix, z, verdict
            outcome = decide(evidence_of(outcomes[:m]), params).outcome
            assert outcome is not Outcome.ABORT
            promoted = promoted or outcome is Outcome.PROMOTE
            assert (outcome is Outcome.PROMOTE) == promoted  # never taken back
        assert promoted


def test_ordered_outcomes_must_add_up_to_the_counts():
    evidence = shadow(Paired(170, 2, 12, 16))
    wrong = replace(evidence, pair_outcomes=evidence.pair_outcomes[:-1])
    with pytest.raises(ValueError, match="199 ordered labelled pairs do not add up"):
        decide(wrong, SHADOW)
    evidence = canary((850, 1000), (93, 100))
    flipped = ((True, not evidence.answer_outcomes[0][1]), *evidence.answer_outcomes[1:])
    with pytest.raises(ValueError, match="ordered labelled answers do not add up"):
        decide(replace(evidence, answer_outcomes=flipped), CANARY)


def test_evidence_without_its_order_is_judged_as_the_latest_look_it_reaches():
    verdict = decide(shadow(Paired(170, 2, 12, 16), ordered=False), SHADOW)
    assert verdict.outcome is Outcome.PROMOTE and verdict.statistics["look"] == 1
    assert verdict.statistics["look_labels"] == 200 and verdict.statistics["look_alpha"] == 0.0125
    unordered = decide(canary((850, 1000), (93, 100), ordered=False), CANARY)
    assert unordered.outcome is Outcome.PROMOTE and unordered.statistics["look_labels"] == 1100


SEEDS = 1000
# Monte-Carlo slack: three standard errors of a rate alpha over SEEDS draws (about 0.021).
SLACK = 3 * math.sqrt(0.05 * 0.95 / SEEDS)
# The simulated rollouts: evaluated after every 25 new labels (each version's, in a canary),
# up to 8 times min_feedback (looks at 25, 50, 100, 200), as the flow's schedule does while
# labels come in. A small min_feedback keeps the test fast (the score tests' normal
# approximation is at its roughest there); the module docstring gives the rates simulated at
# the defaults (min_feedback 100, 3000 seeds: 3.5% paired, 4.0% two-sample).
REPEATED = RolloutParams(strategy="shadow", min_feedback=25, min_requests=50)
EVERY, UP_TO = 25, 8 * REPEATED.min_feedback


def _ever_promoted(evidence_at: list, naive_z) -> tuple[float, float]:
    """Over the seeds' rollouts (each a list of the evidence at every evaluation): the share
    `decide` ever promoted, and the share a fixed-sample test at alpha on every evaluation's
    labels (`naive_z(evidence)` > z_alpha) would have."""
    z_alpha = normal_quantile(1 - REPEATED.alpha)
    promoted = naive = 0
    for rollout in evidence_at:
        outcomes = (decide(evidence, REPEATED).outcome for evidence in rollout)
        promoted += any(outcome is Outcome.PROMOTE for outcome in outcomes)
        naive += any(naive_z(evidence) > z_alpha for evidence in rollout)
    return promoted / len(evidence_at), naive / len(evidence_at)


def test_a_rollout_evaluated_again_and_again_at_the_margin_is_promoted_within_alpha_paired():
    # Only-champion-right 6%, only-challenger-right 4%: the challenger is worse by exactly the
    # margin on the same requests (the null of non-inferiority).
    rng = np.random.default_rng(21)
    codes = rng.choice(4, (SEEDS, UP_TO), p=[0.80, 0.06, 0.04, 0.10])
    counts = np.cumsum(codes[..., None] == np.arange(4), axis=1)  # pairs of each kind so far
    template = shadow(Paired(0, 0, 0, 0), ordered=False)
    evidence_at = []
    for seed in range(SEEDS):
        outcomes = tuple(PAIRS[c] for c in codes[seed])
        rollout = []
        for m in range(EVERY, UP_TO + 1, EVERY):
            pairs = Paired(*(int(x) for x in counts[seed, m - 1]))
            both, old, new = pairs.both_right, pairs.only_champion, pairs.only_challenger
            rollout.append(
                replace(
                    template,
                    champion_labelled=Labelled(both + old, m),
                    challenger_labelled=Labelled(both + new, m),
                    paired=pairs,
                    agreement=Labelled(m, m),
                    pair_outcomes=outcomes[:m],
                )
            )
        evidence_at.append(rollout)

    def naive_z(evidence: Evidence) -> float:
        pairs = evidence.paired
        margin = -REPEATED.max_accuracy_drop
        return tango_z(pairs.only_challenger, pairs.only_champion, pairs.total, margin)

    promoted, naive = _ever_promoted(evidence_at, naive_z)
    assert promoted <= REPEATED.alpha + SLACK
    assert naive > REPEATED.alpha + SLACK  # the inflation the planned looks prevent


def test_a_rollout_evaluated_again_and_again_at_the_margin_is_promoted_within_alpha_two_sample():
    # Champion 85%, challenger 83% (the margin worse), at an even canary split: evaluated
    # after every 50 answers (about 25 labels each).
    rng = np.random.default_rng(21)
    challenger = rng.random((SEEDS, 2 * UP_TO)) < 0.5
    right = rng.random((SEEDS, 2 * UP_TO)) < np.where(challenger, 0.83, 0.85)
    codes = 2 * challenger + ~right  # indexes ANSWERS
    counts = np.cumsum(codes[..., None] == np.arange(4), axis=1)
    template = canary((0, 0), (0, 0), ordered=False)
    evidence_at = []
    for seed in range(SEEDS):
        outcomes = tuple(ANSWERS[c] for c in codes[seed])
        rollout = []
        for m in range(2 * EVERY, 2 * UP_TO + 1, 2 * EVERY):
            a, b, c, d = (int(x) for x in counts[seed, m - 1])
            rollout.append(
                replace(
                    template,
                    champion_labelled=Labelled(a, a + b),
                    challenger_labelled=Labelled(c, c + d),
                    answer_outcomes=outcomes[:m],
                )
            )
        evidence_at.append(rollout)

    def naive_z(evidence: Evidence) -> float:
        old, new = evidence.champion_labelled, evidence.challenger_labelled
        if min(old.total, new.total) < REPEATED.min_feedback:
            return 0.0
        margin = -REPEATED.max_accuracy_drop
        return farrington_manning_z(new.correct, new.total, old.correct, old.total, margin)

    promoted, naive = _ever_promoted(evidence_at, naive_z)
    assert promoted <= REPEATED.alpha + SLACK
    assert naive > REPEATED.alpha + SLACK


def test_a_clearly_better_challenger_is_promoted_within_400_labels():
    # Champion 85%, challenger 90%, at the default policy (min_feedback 100, alpha 0.05): by 400
    # labelled requests in shadow (simulated: 98%), by 400 of the challenger's labels in a 10%
    # canary (93%). A verdict never takes a promotion back, so one look at the end suffices.
    rng = np.random.default_rng(5)
    default = RolloutParams(strategy="shadow")
    seeds, promoted = 200, [0, 0]
    split = (VersionTraffic(9000, 0, 20.0), VersionTraffic(1000, 0, 20.0))
    for _ in range(seeds):
        pairs = tuple(PAIRS[c] for c in rng.choice(4, 400, p=[0.82, 0.03, 0.08, 0.07]))
        promoted[0] += decide(shadow_of(pairs), default).outcome is Outcome.PROMOTE
        old, new = rng.binomial(3600, 0.85), rng.binomial(400, 0.90)
        evidence = canary((old, 3600), (new, 400), split)  # in a random order
        promoted[1] += decide(evidence, default).outcome is Outcome.PROMOTE
    assert promoted[0] / seeds >= 0.9 and promoted[1] / seeds >= 0.85

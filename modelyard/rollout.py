"""Rollout verdicts: promote the challenger, abort it, or keep waiting, as a pure function of the
live evidence (`Evidence`, read from the prediction log and feedback by
`modelyard.adapters.rollout_evidence`) and the policy (`RolloutParams`). No Prefect, no SQL.

The rules, in order (every figure behind a verdict goes into its `statistics`):

1. Guardrails. Errors (shadow and canary; in shadow only the challenger's scoring errors count,
   its latency is off the request path): abort when the challenger's error rate exceeds the
   champion's by more than `max_error_rate_increase`, i.e. when the one-sided (1 - alpha) lower
   bound of the increase (Newcombe's hybrid score interval, built from Wilson intervals: valid at
   0 and n errors, where a Wald interval collapses) is above it, once each version has
   `min_requests`. Before that, an increase shown above OVERWHELMING_ERROR_INCREASE aborts at
   once: at alpha = 0.05 a challenger failing every request against an error-free champion is
   rolled back after 5 of its requests (3 when the champion has many more), and in any case by
   `min_requests`.
   Latency (canary only): abort when the challenger's p95 is more than `max_latency_ratio` times
   the champion's, once each has `min_requests`.
2. Quality, once every version has `min_feedback` labels (shadow: labelled requests, each
   labelling both versions' answers). With d = challenger accuracy - champion accuracy and the
   margin m = `max_accuracy_drop`, a score statistic z of H0: d = -m tests both sides. Score
   tests keep their size near the nominal level at the proportions near 1 that accuracies live
   at, and their variance does not vanish at zero discordant pairs. Canary (different requests
   per version): Farrington and Manning's two-sample score test. Shadow (the same requests):
   Tango's paired score test on the discordant pairs (only one version right).
   - Worse (abort): z on all the labels so far below -z_alpha shows d < -m at `alpha`.
   - Non-inferior (promote): shown at one of the planned looks below, z > z_(alpha_k) there.
   - Otherwise continue. The statistics give the one-sided bounds of d the tests invert to.
   A shadow challenger shown non-inferior is still aborted when it agrees with the champion on
   fewer than `min_agreement` of the requests (point estimate), or when a drift test fired.
3. An undecided rollout is aborted once `max_duration_h` have passed since it started.

Statistics over repeated evaluations. The rollout flow evaluates every `evaluate_schedule`
while labels accumulate, any number of times, across restarts; a fixed-sample test at `alpha`
on each evaluation's data would promote a challenger exactly at the margin far more often than
alpha (about 15% with looks at 100, 200, 400 and 800 labels, about 20% with one every 25; alpha
0.05, simulated). So promotion is decided at planned looks, k = 0, 1, 2, ...: look k is the
FIRST `n_k = min_feedback * 2**k` labelled outcomes in the order they were labelled (canary:
the shortest run of them in which each version has n_k), a prefix that labels coming later never
change, tested at `alpha_k = alpha / 2**(k + 1)`. The alpha_k sum to alpha, so by the union
bound the chance that any look ever promotes a challenger at the margin is at most alpha
however often the flow runs, and the verdict stays a pure function of the stored data. A
verdict promotes when any look available so far promotes (so it never takes a promotion back),
and reports the first such look, else the latest. Aborting for being worse uses every label at
`alpha` at each evaluation: the safe direction, it acts as soon as the data show harm (repeated
looks only make it readier to drop a challenger at the margin; one exactly as good as the
champion is dropped 3-4% of the time). Simulated at the defaults (min_feedback 100, alpha 0.05,
margin 0.02) with an evaluation after every 25 labels up to 800, a challenger at the margin is
ever promoted 3.5% of the time in shadow, 4.0% in an even canary (19-20% with a fixed-sample
test at every evaluation); one 5 points better (85% -> 90%) is promoted by 200 labels 82% of the
time in shadow, 72% in a 10% canary (the challenger's labels), by 400 98% and 93%.
tests/unit/test_rollout_policy.py simulates the repeated evaluation and the power.
Evidence without its ordered outcomes (built by hand) is judged on all its labels as the latest
look its count reaches: that look's level, without the guarantee over repeated evaluations.

`labels_needed` (continue only) is how many more feedback labels, in all, it takes to reach the
next planned look (first `min_feedback`), at the current traffic split in a canary.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from itertools import compress
from operator import itemgetter, not_
from typing import Any

from modelyard.config import RolloutParams


class Outcome(StrEnum):
    PROMOTE = "promote"
    ABORT = "abort"
    CONTINUE = "continue"


@dataclass(frozen=True)
class VersionTraffic:
    """One version's requests in the window (errors included) and its p95 latency."""

    requests: int
    errors: int
    p95_latency_ms: float | None


@dataclass(frozen=True)
class Labelled:
    """One version's labelled answers: how many, and how many were right."""

    correct: int
    total: int


@dataclass(frozen=True)
class Paired:
    """Labelled requests both versions scored (shadow), by who was right."""

    both_right: int
    only_champion: int
    only_challenger: int
    both_wrong: int

    @property
    def total(self) -> int:
        return self.both_right + self.only_champion + self.only_challenger + self.both_wrong


@dataclass(frozen=True)
class Evidence:
    strategy: str  # shadow | canary
    started_at: datetime
    now: datetime
    champion: VersionTraffic
    challenger: VersionTraffic
    champion_labelled: Labelled  # canary (two-sample)
    challenger_labelled: Labelled
    paired: Paired | None  # shadow (same requests)
    agreement: Labelled | None  # shadow: correct = requests where both predicted the same class
    drift_alarms: tuple[str, ...] = ()  # shadow: the monitor's drift tests that fired
    # The labelled outcomes in the order they were labelled, the planned looks' prefixes (the
    # counts above are their totals). Shadow: (champion right, challenger right) per pair.
    pair_outcomes: tuple[tuple[bool, bool], ...] = ()
    # Canary: (answered by the challenger, right) per labelled answer of either version.
    answer_outcomes: tuple[tuple[bool, bool], ...] = ()


@dataclass(frozen=True)
class RolloutVerdict:
    outcome: Outcome
    reasons: tuple[str, ...]
    statistics: dict[str, float] = field(default_factory=dict)
    labels_needed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["outcome"] = str(self.outcome)
        out["reasons"] = list(self.reasons)
        return out

    def to_markdown(self) -> str:
        lines = [f"**Verdict: {self.outcome}**", ""]
        lines += [f"- {reason}" for reason in self.reasons]
        if self.labels_needed is not None:
            lines += ["", f"Labels still needed: about {self.labels_needed}."]
        lines += ["", "| statistic | value |", "|---|---|"]
        lines += [f"| {name} | {value:.6g} |" for name, value in self.statistics.items()]
        return "\n".join(lines)


@dataclass(frozen=True)
class Sample:
    """Both versions' labelled outcomes: paired on the same requests (shadow, `paired` set) or
    two independent samples (canary)."""

    champion: Labelled
    challenger: Labelled
    paired: Paired | None = None

    @property
    def labels(self) -> int:
        """Labelled requests (shadow) or labelled answers of both versions (canary)."""
        return self.paired.total if self.paired else self.champion.total + self.challenger.total

    @property
    def accuracies(self) -> tuple[float, float]:
        """(champion, challenger)."""
        return (
            _rate(self.champion.correct, self.champion.total),
            _rate(self.challenger.correct, self.challenger.total),
        )

    @property
    def spread(self) -> float:
        """The difference's standard error by the plain (Wald) formula: a scale, not a test."""
        old, new = self.accuracies
        if self.paired is not None:
            n = self.paired.total
            gains, losses = self.paired.only_challenger / n, self.paired.only_champion / n
            return math.sqrt(max(gains + losses - (gains - losses) ** 2, 0.0) / n)
        return math.sqrt(
            old * (1 - old) / self.champion.total + new * (1 - new) / self.challenger.total
        )

    def score(self, delta: float) -> float:
        """The score statistic of H0: challenger - champion accuracy = delta (Tango's paired,
        else Farrington-Manning's two-sample); positive: the difference is above delta."""
        if self.paired is not None:
            pairs = self.paired
            return tango_z(pairs.only_challenger, pairs.only_champion, pairs.total, delta)
        old, new = self.champion, self.challenger
        return farrington_manning_z(new.correct, new.total, old.correct, old.total, delta)


@dataclass(frozen=True)
class Look:
    """The k-th planned look (`index`): the first labelled outcomes in the order they came, up
    to `planned` = `min_feedback * 2**k` (each version's, in a canary), tested for
    non-inferiority at `alpha` = the rollout's `alpha / 2**(k + 1)`."""

    index: int
    planned: int
    alpha: float
    sample: Sample
    z: float  # the score statistic at the margin (H0: difference = -max_accuracy_drop)
    z_critical: float

    @property
    def promotes(self) -> bool:
        return self.z > self.z_critical


def planned_labels(params: RolloutParams, index: int) -> int:
    """Labels (each version's, in a canary) that look `index` is planned at."""
    return params.min_feedback << index


def look_alpha(params: RolloutParams, index: int) -> float:
    """The one-sided level of look `index`: `alpha / 2**(index + 1)`, summing to alpha."""
    return params.alpha / (1 << (index + 1))


# An error-rate increase this large, shown at `alpha`, aborts before `min_requests`: a challenger
# that fails (nearly) every request is rolled back after a handful of them, not fifty.
OVERWHELMING_ERROR_INCREASE = 0.5
_BIG_Z = 40.0  # a score statistic whose variance vanished: the sign is certain


@dataclass(frozen=True)
class _Finding:
    """What one check found: a verdict (None: no verdict from it), why, and its figures."""

    outcome: Outcome | None
    reasons: tuple[str, ...] = ()
    statistics: dict[str, float] = field(default_factory=dict)
    labels_needed: int | None = None


def decide(evidence: Evidence, params: RolloutParams) -> RolloutVerdict:
    """Promote, abort or continue the rollout the evidence describes (see the module docstring
    for the rules and the tests behind them)."""
    if evidence.strategy not in ("shadow", "canary"):
        raise ValueError(f"a rollout's strategy is shadow or canary, not {evidence.strategy!r}")
    z_alpha = normal_quantile(1 - params.alpha)
    statistics: dict[str, float] = {
        "alpha": params.alpha,
        "z_critical": z_alpha,
        "margin": params.max_accuracy_drop,
    }
    findings = [_errors(evidence, params, z_alpha)]
    if evidence.strategy == "canary":
        findings.append(_latency(evidence, params))
    quality = _quality(evidence, params, z_alpha)
    findings.append(quality)
    if evidence.strategy == "shadow" and quality.outcome is Outcome.PROMOTE:
        findings.append(_shadow_agreement(evidence, params))
    for finding in findings:
        statistics.update(finding.statistics)
    verdict = _verdict(findings, statistics)
    return _past_deadline(evidence, params, verdict)


def _verdict(findings: list[_Finding], statistics: dict[str, float]) -> RolloutVerdict:
    # Guardrails come first in the list; the first abort wins, and a promotion stands only
    # if nothing after it aborts (shadow agreement, drift). Undecided past the deadline: abort.
    aborts = [f for f in findings if f.outcome is Outcome.ABORT]
    if aborts:
        reasons = tuple(r for f in aborts for r in f.reasons)
        return RolloutVerdict(Outcome.ABORT, reasons, statistics, None)
    decided = [f for f in findings if f.outcome is Outcome.PROMOTE]
    if decided:
        reasons = tuple(r for f in findings if f.outcome is not None for r in f.reasons)
        return RolloutVerdict(Outcome.PROMOTE, reasons, statistics, None)
    waiting = [f for f in findings if f.outcome is Outcome.CONTINUE]
    reasons = tuple(r for f in waiting for r in f.reasons)
    needed = max((f.labels_needed for f in waiting if f.labels_needed is not None), default=None)
    return RolloutVerdict(Outcome.CONTINUE, reasons, statistics, needed)


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def _errors(evidence: Evidence, params: RolloutParams, z_alpha: float) -> _Finding:
    """The error guardrail: abort when the challenger's error rate exceeds the champion's by more
    than `max_error_rate_increase`, shown by the lower one-sided (1 - alpha) Newcombe bound of the
    increase; before `min_requests` each, only an overwhelming increase (> 1/2) aborts."""
    old, new = evidence.champion, evidence.challenger
    lower = newcombe_lower(new.errors, new.requests, old.errors, old.requests, z_alpha)
    old_rate, new_rate = _rate(old.errors, old.requests), _rate(new.errors, new.requests)
    statistics = {
        "champion_requests": float(old.requests),
        "champion_errors": float(old.errors),
        "champion_error_rate": old_rate,
        "challenger_requests": float(new.requests),
        "challenger_errors": float(new.errors),
        "challenger_error_rate": new_rate,
        "error_rate_increase": new_rate - old_rate,
        "error_rate_increase_lower_bound": lower,
    }
    enough = min(old.requests, new.requests) >= params.min_requests
    limit = params.max_error_rate_increase if enough else OVERWHELMING_ERROR_INCREASE
    if lower <= limit:
        return _Finding(None, (), statistics)
    reason = (
        f"The challenger failed {new.errors} of {new.requests} requests "
        f"({_percent(new_rate)}) against the champion's {old.errors} of {old.requests} "
        f"({_percent(old_rate)}): its error rate is higher by at least {_percent(lower)} "
        f"(one-sided {_percent(1 - params.alpha)} Newcombe bound), more than the "
        f"{_percent(limit)} allowed"
        + ("." if enough else f" even before {params.min_requests} requests each.")
    )
    return _Finding(Outcome.ABORT, (reason,), statistics)


def _latency(evidence: Evidence, params: RolloutParams) -> _Finding:
    """The latency guardrail (canary: the challenger answers users): abort when its p95 latency
    is more than `max_latency_ratio` times the champion's, once each has `min_requests`."""
    old, new = evidence.champion, evidence.challenger
    if old.p95_latency_ms is None or new.p95_latency_ms is None or old.p95_latency_ms <= 0:
        return _Finding(None)
    ratio = new.p95_latency_ms / old.p95_latency_ms
    statistics = {
        "champion_p95_latency_ms": old.p95_latency_ms,
        "challenger_p95_latency_ms": new.p95_latency_ms,
        "latency_ratio": ratio,
    }
    if min(old.requests, new.requests) < params.min_requests or ratio <= params.max_latency_ratio:
        return _Finding(None, (), statistics)
    reason = (
        f"The challenger's p95 latency ({new.p95_latency_ms:.1f} ms) is {ratio:.2f} times the "
        f"champion's ({old.p95_latency_ms:.1f} ms), more than the {params.max_latency_ratio:g} "
        "allowed."
    )
    return _Finding(Outcome.ABORT, (reason,), statistics)


def _past_deadline(
    evidence: Evidence, params: RolloutParams, verdict: RolloutVerdict
) -> RolloutVerdict:
    elapsed_h = (evidence.now - evidence.started_at).total_seconds() / 3600
    statistics = {**verdict.statistics, "elapsed_h": elapsed_h}
    limit = params.max_duration_h
    if verdict.outcome is not Outcome.CONTINUE or limit is None or elapsed_h < limit:
        return RolloutVerdict(verdict.outcome, verdict.reasons, statistics, verdict.labels_needed)
    reason = (
        f"The rollout is still undecided after {elapsed_h:.1f} hours, past the "
        f"{limit:g} hours allowed."
    )
    return RolloutVerdict(Outcome.ABORT, (reason, *verdict.reasons), statistics, None)


# --- quality: the planned looks (see the module docstring) ---


def looks(evidence: Evidence, params: RolloutParams) -> tuple[Look, ...]:
    """The planned looks the evidence has reached, in order (none before `min_feedback`). Each
    is a fixed prefix of the ordered outcomes: labels that come later never change it."""
    if evidence.strategy == "shadow":
        samples = _paired_samples(evidence, params)
    else:
        samples = _canary_samples(evidence, params)
    margin = params.max_accuracy_drop
    found = []
    for index, sample in samples:
        alpha = look_alpha(params, index)
        planned = planned_labels(params, index)
        z_critical = normal_quantile(1 - alpha)
        found.append(Look(index, planned, alpha, sample, sample.score(-margin), z_critical))
    return tuple(found)


def _reached(params: RolloutParams, labels: int) -> list[int]:
    """The looks planned at no more than `labels`."""
    index = 0
    while planned_labels(params, index) <= labels:
        index += 1
    return list(range(index))


def _paired_sample(pairs: Paired) -> Sample:
    return Sample(
        Labelled(pairs.both_right + pairs.only_champion, pairs.total),
        Labelled(pairs.both_right + pairs.only_challenger, pairs.total),
        pairs,
    )


def _paired_of(counts: Counter[tuple[bool, bool]]) -> Paired:
    """Pairs counted by (champion right, challenger right)."""
    return Paired(
        counts[True, True], counts[True, False], counts[False, True], counts[False, False]
    )


def _paired_samples(evidence: Evidence, params: RolloutParams) -> list[tuple[int, Sample]]:
    """(look, its sample) of a shadow rollout: look k is the first n_k labelled pairs."""
    pairs = evidence.paired or Paired(0, 0, 0, 0)
    reached = _reached(params, pairs.total)
    ordered = evidence.pair_outcomes
    if not ordered:  # no order known: all of them, as the latest look their count reaches
        return [(reached[-1], _paired_sample(pairs))] if reached else []
    counts: Counter[tuple[bool, bool]] = Counter()
    samples, done = [], 0
    for index in reached:
        end = planned_labels(params, index)
        counts.update(ordered[done:end])
        samples.append((index, _paired_sample(_paired_of(counts))))
        done = end
    counts.update(ordered[done:])  # every outcome counted once, the check included
    if _paired_of(counts) != pairs:
        raise _mismatch(f"{len(ordered)} ordered labelled pairs", str(pairs))
    return samples


def _mismatch(ordered: str, counts: str) -> ValueError:
    return ValueError(f"the evidence's {ordered} do not add up to its counts ({counts})")


def _canary_of(counts: Counter[tuple[bool, bool]]) -> tuple[Labelled, Labelled]:
    """(champion, challenger) labelled answers counted by (the challenger's, right)."""
    return (
        Labelled(counts[False, True], counts[False, True] + counts[False, False]),
        Labelled(counts[True, True], counts[True, True] + counts[True, False]),
    )


def _canary_samples(evidence: Evidence, params: RolloutParams) -> list[tuple[int, Sample]]:
    """(look, its sample) of a canary: look k is the shortest run of the labelled answers, in
    the order they came, in which each version has n_k (all the champion's labels up to then)."""
    old, new = evidence.champion_labelled, evidence.challenger_labelled
    reached = _reached(params, min(old.total, new.total))
    ordered = evidence.answer_outcomes
    if not ordered:  # no order known: all of them, as the latest look their count reaches
        return [(reached[-1], Sample(old, new))] if reached else []
    # Where each version's answers lie in the order (champion's, challenger's).
    where = (
        list(compress(range(len(ordered)), map(not_, map(itemgetter(0), ordered)))),
        list(compress(range(len(ordered)), map(itemgetter(0), ordered))),
    )
    mismatch = _mismatch(
        f"{len(ordered)} ordered labelled answers", f"champion {old}, challenger {new}"
    )
    if (len(where[0]), len(where[1])) != (old.total, new.total):
        raise mismatch
    counts: Counter[tuple[bool, bool]] = Counter()
    samples, done = [], 0
    for index in reached:
        planned = planned_labels(params, index)
        end = max(where[0][planned - 1], where[1][planned - 1]) + 1
        counts.update(ordered[done:end])
        samples.append((index, Sample(*_canary_of(counts))))
        done = end
    counts.update(ordered[done:])  # every outcome counted once, the check included
    if _canary_of(counts) != (old, new):
        raise mismatch
    return samples


def _quality(evidence: Evidence, params: RolloutParams, z_alpha: float) -> _Finding:
    """Non-inferiority at the planned looks, inferiority on every label (module docstring)."""
    if evidence.strategy == "shadow":
        pairs = evidence.paired or Paired(0, 0, 0, 0)
        sample, unit = _paired_sample(pairs), "the paired requests have"
        design = f"{pairs.total} labelled requests both answered, Tango's paired score test"
    else:
        sample = Sample(evidence.champion_labelled, evidence.challenger_labelled)
        unit = "each version has"
        design = (
            f"{sample.champion.total} and {sample.challenger.total} labelled answers, "
            "Farrington-Manning score test"
        )
    statistics = _sample_statistics(sample)
    taken = looks(evidence, params)  # (and the ordered outcomes checked against the counts)
    shortfall = _shortfall(evidence, sample, params.min_feedback)
    if shortfall:
        return _not_enough(params, statistics, shortfall, unit)
    following = planned_labels(params, taken[-1].index + 1)
    next_look = (following, _shortfall(evidence, sample, following))
    judged = _judge(sample, taken, params, z_alpha, next_look)
    return _with_design(judged, statistics, design)


def _sample_statistics(sample: Sample) -> dict[str, float]:
    if sample.paired is not None:
        pairs = sample.paired
        return {
            "labelled_pairs": float(pairs.total),
            "both_right": float(pairs.both_right),
            "only_champion_right": float(pairs.only_champion),
            "only_challenger_right": float(pairs.only_challenger),
            "both_wrong": float(pairs.both_wrong),
        }
    return {
        "champion_labelled": float(sample.champion.total),
        "champion_correct": float(sample.champion.correct),
        "challenger_labelled": float(sample.challenger.total),
        "challenger_correct": float(sample.challenger.correct),
    }


def _shortfall(evidence: Evidence, sample: Sample, target: int) -> int:
    """More labels it takes, in all, before the sample has `target` labels (shadow pairs) or
    each version has (canary: labels come in as the traffic is split, so the scarcer version's
    shortfall is scaled by its share)."""
    if sample.paired is not None:
        return max(target - sample.paired.total, 0)
    counts = (sample.champion.total, sample.challenger.total)
    traffic = (evidence.champion.requests, evidence.challenger.requests)
    shares = [t / sum(traffic) for t in traffic] if min(traffic) > 0 else [0.5, 0.5]
    return max(
        (
            math.ceil((target - n) / share)
            for n, share in zip(counts, shares, strict=True)
            if n < target
        ),
        default=0,
    )


def _not_enough(
    params: RolloutParams, statistics: dict[str, float], needed: int, unit: str
) -> _Finding:
    reason = (
        f"Quality is not judged before {unit} {params.min_feedback} labels; "
        f"about {needed} more labels are needed."
    )
    return _Finding(Outcome.CONTINUE, (reason,), statistics, needed)


def _with_design(judged: _Finding, statistics: dict[str, float], design: str) -> _Finding:
    reasons = tuple(f"{reason} ({design})." for reason in judged.reasons)
    return _Finding(
        judged.outcome, reasons, {**statistics, **judged.statistics}, judged.labels_needed
    )


def _judge(
    sample: Sample,
    taken: Sequence[Look],
    params: RolloutParams,
    z_alpha: float,
    next_look: tuple[int, int],
) -> _Finding:
    """Worse by more than the margin (abort) when the score statistic at the margin on every
    label is below -z_alpha; else non-inferior (promote) when a look shows it (the first such
    look is reported, else the latest); else continue until the next look, (planned, needed)."""
    old, new = sample.accuracies
    margin = params.max_accuracy_drop
    z = sample.score(-margin)
    upper = _bound(sample, -z_alpha)
    look = next((look for look in taken if look.promotes), taken[-1])
    lower = _bound(look.sample, look.z_critical)
    statistics = {
        "champion_accuracy": old,
        "challenger_accuracy": new,
        "accuracy_difference": new - old,
        "accuracy_difference_upper_bound": upper,
        "z": z,
        "p_inferiority": normal_cdf(z),
        **_look_statistics(look, lower),
    }
    said = (
        f"The challenger's live accuracy is {_percent(new)} against the champion's "
        f"{_percent(old)} (difference {100 * (new - old):+.1f} points"
    )
    points = f"{100 * margin:.1f} points"
    if z < -z_alpha:
        level = _percent(1 - params.alpha)
        reason = f"{said}, at most {100 * upper:+.1f} at {level}): worse by more than {points}"
        return _Finding(Outcome.ABORT, (reason,), statistics)
    shown = f"{_look_words(look, params)} shows it at least {100 * lower:+.1f}"
    if look.promotes:
        reason = f"{said}); {shown}: not worse by more than {points}"
        return _Finding(Outcome.PROMOTE, (reason,), statistics)
    planned, needed = next_look
    each = " each" if sample.paired is None else ""
    reason = (
        f"{said}): not shown worse by more than {points}, nor within them ({shown}); the next "
        f"look is at {planned} labels{each}, about {needed} more labels are needed"
    )
    return _Finding(
        Outcome.CONTINUE, (reason,), {**statistics, "next_look_labels": planned}, needed
    )


@functools.lru_cache(maxsize=4096)
def _bound(sample: Sample, target: float) -> float:
    """The bound of the difference at which the sample's score statistic is `target` (kept: a
    rollout is evaluated again and again on the same looks, fixed prefixes)."""
    old, new = sample.accuracies
    return _invert(sample.score, target, new - old, sample.spread)


def _look_statistics(look: Look, lower: float) -> dict[str, float]:
    old, new = look.sample.accuracies
    return {
        "look": float(look.index),
        "look_labels": float(look.sample.labels),
        "look_alpha": look.alpha,
        "look_z_critical": look.z_critical,
        "look_z": look.z,
        "look_p_noninferiority": 1 - normal_cdf(look.z),
        "look_accuracy_difference": new - old,
        "look_lower_bound": lower,
    }


def _look_words(look: Look, params: RolloutParams) -> str:
    """Which labels a look weighed, and at what level."""
    sample = look.sample
    if sample.paired is not None:
        labels = f"its first {sample.labels} labelled requests"
    else:
        labels = f"its first {sample.champion.total} and {sample.challenger.total} labelled answers"
    return (
        f"look {look.index} ({labels}, one-sided at {look.alpha:.3g} so that all looks "
        f"together keep {params.alpha:g})"
    )


def _invert(
    z_of: Callable[[float], float], target: float, observed: float, spread: float = 0.01
) -> float:
    """The difference delta at which the (decreasing) score statistic equals `target`: the
    one-sided confidence bound that the test inverts to. The statistic is 0 at the `observed`
    difference; steps growing away from it (the first `target` times the estimate's `spread`,
    about where a Wald bound would be) bracket the root, regula falsi (Illinois) closes in."""
    edge = -1 + 1e-9 if target > 0 else 1 - 1e-9
    # z_of(observed) is 0 (no difference from the observed one to standardise): not evaluated.
    near, f_near, step = observed, -target, max(abs(target) * spread, 1e-3)
    while True:
        far = max(edge, observed - step) if target > 0 else min(edge, observed + step)
        f_far = z_of(far) - target
        if (f_far > 0) != (f_near > 0) or far == edge:
            break
        near, f_near, step = far, f_far, step * 4
    if (f_far > 0) == (f_near > 0):
        return -1.0 if target > 0 else 1.0
    return _illinois(z_of, target, (near, f_near), (far, f_far))


def _illinois(
    z_of: Callable[[float], float],
    target: float,
    one: tuple[float, float],
    other: tuple[float, float],
) -> float:
    """Regula falsi with the Illinois step on a bracket whose ends' values differ in sign."""
    (a, f_a), (b, f_b) = one, other
    side, mid = 0, a
    for _ in range(100):
        mid = (a * f_b - b * f_a) / (f_b - f_a)
        f_mid = z_of(mid) - target
        if abs(f_mid) < 1e-9 or abs(b - a) < 1e-9:
            break
        if (f_mid > 0) == (f_a > 0):
            a, f_a = mid, f_mid
            f_b, side = (f_b / 2 if side == 1 else f_b), 1
        else:
            b, f_b = mid, f_mid
            f_a, side = (f_a / 2 if side == -1 else f_a), -1
    return mid


def _shadow_agreement(evidence: Evidence, params: RolloutParams) -> _Finding:
    """A shadow challenger shown non-inferior is still aborted when it agrees with the champion
    on fewer than `min_agreement` of the requests, or when a drift test fired on it."""
    agreement = evidence.agreement or Labelled(0, 0)
    rate = _rate(agreement.correct, agreement.total)
    statistics = {
        "agreement": rate,
        "agreement_requests": float(agreement.total),
        "drift_alarms": float(len(evidence.drift_alarms)),
    }
    reasons = []
    if rate < params.min_agreement:
        reasons.append(
            f"The challenger agreed with the champion on {agreement.correct} of "
            f"{agreement.total} requests ({_percent(rate)}), fewer than the "
            f"{_percent(params.min_agreement)} required."
        )
    if evidence.drift_alarms:
        reasons.append(
            "The monitor's drift tests fired on the challenger's predictions: "
            + ", ".join(evidence.drift_alarms)
            + "."
        )
    return _Finding(Outcome.ABORT if reasons else None, tuple(reasons), statistics)


# --- statistics (normal approximations; the normal CDF from math.erf, no SciPy needed) ---


def normal_cdf(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


@functools.cache
def normal_quantile(p: float) -> float:
    """The standard normal quantile, by bisection on `normal_cdf` (exact to 1e-12)."""
    low, high = -40.0, 40.0
    for _ in range(200):
        mid = (low + high) / 2
        low, high = (mid, high) if normal_cdf(mid) < p else (low, mid)
    return (low + high) / 2


def wilson(successes: int, n: int, z: float) -> tuple[float, float]:
    """Wilson score interval of a proportion, each side at the normal quantile `z`."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_lower(x2: int, n2: int, x1: int, n1: int, z: float) -> float:
    """Lower confidence bound of p2 - p1 (Newcombe's hybrid score method 10, one-sided at the
    normal quantile `z`): defined at 0 and n events, so it works from the first requests."""
    p1 = x1 / n1 if n1 else 0.0
    p2 = x2 / n2 if n2 else 0.0
    low2, _ = wilson(x2, n2, z)
    _, high1 = wilson(x1, n1, z)
    return (p2 - p1) - math.sqrt((p2 - low2) ** 2 + (high1 - p1) ** 2)


def farrington_manning_z(x1: int, n1: int, x2: int, n2: int, delta: float) -> float:
    """Score statistic of H0: p1 - p2 = delta for two independent proportions (Farrington and
    Manning 1990; variance at the maximum-likelihood estimates restricted to H0, in closed form
    as in Miettinen and Nurminen 1985). Positive: p1 - p2 is above delta."""
    p1, p2 = x1 / n1, x2 / n2
    theta = n2 / n1
    a = 1 + theta
    b = -(1 + theta + p1 + theta * p2 + delta * (theta + 2))
    c = delta * delta + delta * (2 * p1 + theta + 1) + p1 + theta * p2
    d = -p1 * delta * (1 + delta)
    v = b**3 / (27 * a**3) - b * c / (6 * a * a) + d / (2 * a)
    u = math.copysign(math.sqrt(max(b * b / (9 * a * a) - c / (3 * a), 0.0)), v)
    cosine = max(-1.0, min(1.0, v / u**3)) if u != 0 else 0.0
    w = (math.pi + math.acos(cosine)) / 3
    r1 = min(1.0, max(0.0, 2 * u * math.cos(w) - b / (3 * a)))
    r2 = min(1.0, max(0.0, r1 - delta))
    variance = r1 * (1 - r1) / n1 + r2 * (1 - r2) / n2
    difference = p1 - p2 - delta
    if variance <= 0:
        return 0.0 if difference == 0 else math.copysign(_BIG_Z, difference)
    return difference / math.sqrt(variance)


def tango_z(gains: int, losses: int, n: int, delta: float) -> float:
    """Score statistic of H0: p_new - p_old = delta for paired proportions (Tango 1998), from the
    discordant pairs: `gains` right only with the new, `losses` right only with the old, of `n`.
    Positive: the difference is above delta."""
    margin = -delta  # the derivation below uses p_old - p_new = margin
    rest = n - gains - losses
    big_b = losses * (1 + 3 * margin) + gains * (1 + margin) + 2 * rest * margin
    root = max(big_b * big_b - 8 * n * losses * margin * (1 + margin), 0.0)
    old_only = (big_b + math.sqrt(root)) / (4 * n)  # restricted MLE of P(only the old right)
    variance = n * (2 * old_only - margin * (1 + margin))
    difference = gains - losses - n * delta
    if variance <= 0:
        return 0.0 if difference == 0 else math.copysign(_BIG_Z, difference)
    return difference / math.sqrt(variance)

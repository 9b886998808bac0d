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
   margin m = `max_accuracy_drop`, one score statistic z of H0: d = -m decides both one-sided
   tests at `alpha`: z > z_alpha shows non-inferiority (d > -m): promote; z < -z_alpha shows the
   challenger worse by more than the margin (d < -m): abort; otherwise continue. Score tests
   keep their size near alpha at the proportions near 1 that accuracies live at, and their
   variance does not vanish at zero discordant pairs. Canary (different requests per version):
   Farrington and Manning's two-sample score test. Shadow (the same requests): Tango's paired
   score test on the discordant pairs (only one version right). The statistics also give the
   one-sided (1 - alpha) bounds of d that the tests invert to.
   A shadow challenger shown non-inferior is still aborted when it agrees with the champion on
   fewer than `min_agreement` of the requests (point estimate), or when a drift test fired.
3. An undecided rollout is aborted once `max_duration_h` have passed since it started.

`labels_needed` (continue only) is how many more feedback labels, in all, it likely takes: to
reach `min_feedback` at the current traffic split; after that, until |z| reaches z_alpha if the
observed accuracies hold (a score statistic grows with the square root of the sample).

Each verdict is a fixed-sample test of the evidence so far: at one look, a challenger exactly at
the margin is promoted with probability alpha (tests/unit/test_rollout_policy.py simulates it).
The rollout flow looks again every `evaluate_schedule`, and repeated looks at growing data raise
that chance: simulated at alpha = 0.05 in shadow, looks at 100, 200, 400, 800 labels promote
about 15% of such challengers, a look every 25 labels from 100 to 1000 about 20%. Fewer looks
(a larger `min_feedback`, a sparser schedule) or a smaller `alpha` keep it down.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
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
    quality = (_paired_quality if evidence.strategy == "shadow" else _canary_quality)(
        evidence, params, z_alpha
    )
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


def _canary_quality(evidence: Evidence, params: RolloutParams, z_alpha: float) -> _Finding:
    """Two samples (different requests): the Farrington-Manning score test of the difference."""
    old, new = evidence.champion_labelled, evidence.challenger_labelled
    statistics = {
        "champion_labelled": float(old.total),
        "champion_correct": float(old.correct),
        "challenger_labelled": float(new.total),
        "challenger_correct": float(new.correct),
    }
    shortfall = _canary_shortfall(evidence, params)
    if shortfall:
        return _not_enough(params, statistics, shortfall, "each version has")

    def z_of(delta: float) -> float:
        return farrington_manning_z(new.correct, new.total, old.correct, old.total, delta)

    accuracies = (_rate(old.correct, old.total), _rate(new.correct, new.total))
    judged = _judge(z_of, accuracies, params, z_alpha, old.total + new.total)
    design = f"{old.total} and {new.total} labelled answers, Farrington-Manning score test"
    return _with_design(judged, statistics, design)


def _canary_shortfall(evidence: Evidence, params: RolloutParams) -> int:
    """More labels it takes, in all, before each version has `min_feedback`: labels come in
    as the traffic is split, so the scarcer version's shortfall is scaled by its share."""
    counts = (evidence.champion_labelled.total, evidence.challenger_labelled.total)
    traffic = (evidence.champion.requests, evidence.challenger.requests)
    shares = [t / sum(traffic) for t in traffic] if min(traffic) > 0 else [0.5, 0.5]
    return max(
        (
            math.ceil((params.min_feedback - n) / share)
            for n, share in zip(counts, shares, strict=True)
            if n < params.min_feedback
        ),
        default=0,
    )


def _paired_quality(evidence: Evidence, params: RolloutParams, z_alpha: float) -> _Finding:
    """Paired (the same requests, shadow): Tango's score test on the discordant pairs."""
    pairs = evidence.paired or Paired(0, 0, 0, 0)
    n = pairs.total
    statistics = {
        "labelled_pairs": float(n),
        "both_right": float(pairs.both_right),
        "only_champion_right": float(pairs.only_champion),
        "only_challenger_right": float(pairs.only_challenger),
        "both_wrong": float(pairs.both_wrong),
    }
    if n < params.min_feedback:
        return _not_enough(params, statistics, params.min_feedback - n, "the paired requests have")

    def z_of(delta: float) -> float:
        return tango_z(pairs.only_challenger, pairs.only_champion, n, delta)

    accuracies = (
        (pairs.both_right + pairs.only_champion) / n,
        (pairs.both_right + pairs.only_challenger) / n,
    )
    judged = _judge(z_of, accuracies, params, z_alpha, n)
    design = f"{n} labelled requests both answered, Tango's paired score test"
    return _with_design(judged, statistics, design)


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
    z_of: Callable[[float], float],
    accuracies: tuple[float, float],
    params: RolloutParams,
    z_alpha: float,
    labels: int,
) -> _Finding:
    """Both one-sided tests at the margin's boundary (difference = -max_accuracy_drop), with the
    score statistic `z_of(delta)` of H0: challenger - champion accuracy = delta: non-inferior
    (promote) when z > z_alpha, worse by more than the margin (abort) when z < -z_alpha."""
    old, new = accuracies
    margin = params.max_accuracy_drop
    z = z_of(-margin)
    lower, upper = _invert(z_of, z_alpha, new - old), _invert(z_of, -z_alpha, new - old)
    statistics = {
        "champion_accuracy": old,
        "challenger_accuracy": new,
        "accuracy_difference": new - old,
        "accuracy_difference_lower_bound": lower,
        "accuracy_difference_upper_bound": upper,
        "z": z,
        "p_noninferiority": 1 - normal_cdf(z),
        "p_inferiority": normal_cdf(z),
    }
    level = _percent(1 - params.alpha)
    said = (
        f"The challenger's live accuracy is {_percent(new)} against the champion's "
        f"{_percent(old)} (difference {100 * (new - old):+.1f} points"
    )
    if z > z_alpha:
        reason = f"{said}, at least {100 * lower:+.1f} at {level}): not worse by more than"
        reason += f" {100 * margin:.1f} points"
        return _Finding(Outcome.PROMOTE, (reason,), statistics)
    if z < -z_alpha:
        reason = (
            f"{said}, at most {100 * upper:+.1f} at {level}): worse by more than "
            f"{100 * margin:.1f} points"
        )
        return _Finding(Outcome.ABORT, (reason,), statistics)
    needed = _labels_to_significance(z, z_alpha, labels)
    reason = (
        f"{said}, between {100 * lower:+.1f} and {100 * upper:+.1f} at {level} each side): "
        f"neither shown within {100 * margin:.1f} points nor worse by more; about {needed} "
        "more labels are needed if the accuracies hold"
    )
    return _Finding(Outcome.CONTINUE, (reason,), statistics, needed)


def _labels_to_significance(z: float, z_alpha: float, labels: int) -> int:
    """More labels until |z| reaches z_alpha if the observed proportions hold: a score
    statistic grows with the square root of the sample (no effect seen: twice the sample)."""
    if abs(z) < 1e-9:
        return max(labels, 1)
    return max(math.ceil(labels * ((z_alpha / z) ** 2 - 1)), 1)


def _invert(z_of: Callable[[float], float], target: float, observed: float) -> float:
    """The difference delta at which the (decreasing) score statistic equals `target`: the
    one-sided confidence bound that the test inverts to. The statistic is 0 at the `observed`
    difference; steps growing away from it bracket the root, regula falsi (Illinois) closes in."""
    edge = -1 + 1e-9 if target > 0 else 1 - 1e-9
    near, f_near, step = observed, z_of(observed) - target, 0.01
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
        if f_mid == 0 or abs(b - a) < 1e-9:
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

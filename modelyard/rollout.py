"""Rollout verdicts: promote, abort or keep waiting, as a pure function of the live evidence
(`Evidence`, read from the prediction log and feedback by `modelyard.adapters.rollout_evidence`)
and the policy (`RolloutParams`). No Prefect, no SQL: a unit test checks every decision."""

from __future__ import annotations

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


def decide(evidence: Evidence, params: RolloutParams) -> RolloutVerdict:
    """Placeholder rule (statistics follow): continue until enough labels, then compare."""
    need = params.min_feedback - min(
        evidence.champion_labelled.total, evidence.challenger_labelled.total
    )
    if need > 0:
        return RolloutVerdict(Outcome.CONTINUE, ("Not enough labels yet.",), {}, need)
    return RolloutVerdict(Outcome.CONTINUE, ("Undecided.",), {}, None)

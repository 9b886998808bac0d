"""The promotion gate: (candidate metrics, production metrics on the same split, policy) → decision.

Pure: no I/O, no clock, no randomness, so the table of cases in the unit tests is the whole
specification. A failed gate is acted on by the flow doing nothing to the aliases.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from modelyard.config import GateParams

_GATED = ("accuracy", "macro_f1")


# What the candidate cost to train, as the gate report shows it (not gated): device, figures
# of this attempt and `total_*` over every attempt of its run.
Compute = Mapping[str, float | str]


@dataclass(frozen=True)
class GateCheck:
    name: str
    metric: str
    candidate: float
    production: float | None
    threshold: float
    passed: bool
    reason: str


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    checks: list[GateCheck] = field(default_factory=list)
    has_production: bool = False
    # What the candidate cost to train (informational, not gated): this attempt and the total
    # over every attempt of its run.
    compute: dict[str, float | str] = field(default_factory=dict)
    # How the comparison set was made (what was held out of it and why): informational.
    notes: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return "promote" if self.passed else "reject"

    @property
    def reasons(self) -> list[str]:
        """Why it failed (every failing check), or why it passed."""
        failed = [check.reason for check in self.checks if not check.passed]
        return (
            failed
            or [check.reason for check in self.checks if check.name == "improvement"]
            or ["first model: all absolute thresholds met"]
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "verdict": self.verdict,
            "reasons": self.reasons,
            "checks": [asdict(check) for check in self.checks],
            "compute": self.compute,
            "notes": self.notes,
        }

    def compute_line(self) -> str | None:
        c = self.compute
        if not c:
            return None
        return (
            f"{c['devices']} × {c['device']} ({c['device_name']}), {c['seconds']:.1f} s, "
            f"{c['device_hours']:.4f} device-h, {c['samples_per_second']:.0f} samples/s, "
            f"{c['energy_kwh'] * 1000:.2f} Wh ({c['energy_source']}), "
            f"{c['cost']:.4f} {c['currency']}; all {int(c['attempts'])} attempt(s): "
            f"{c['total_device_hours']:.4f} device-h, {c['total_energy_kwh'] * 1000:.2f} Wh, "
            f"{c['total_cost']:.4f} {c['currency']}"
        )

    def to_text(self, limit: int = 5000) -> str:
        """Every check on one line, for a registry tag (MLflow caps tag values at 5,000
        characters: the tail is cut, the full report stays in the run)."""
        lines = [f"{self.verdict.upper()}"] + [
            f"{'pass' if check.passed else 'FAIL'} {check.name}: {check.reason}"
            for check in self.checks
        ]
        if self.compute_line():
            lines.append(f"info compute: {self.compute_line()}")
        lines += [f"info comparison: {note}" for note in self.notes]
        text = "\n".join(lines)
        cut = "\n… (cut; see the run)"
        return text if len(text) <= limit else text[: limit - len(cut)] + cut

    def to_markdown(self) -> str:
        lines = [
            f"**Gate: {self.verdict.upper()}**",
            "",
            "| check | metric | candidate | production | threshold | result |",
            "|---|---|---|---|---|---|",
        ]
        for check in self.checks:
            production = "—" if check.production is None else f"{check.production:.4f}"
            lines.append(
                f"| {check.name} | {check.metric} | {check.candidate:.4f} | {production} | "
                f"{check.threshold:.4f} | {'pass' if check.passed else '**FAIL**'} |"
            )
        lines += ["", *[f"- {reason}" for reason in self.reasons]]
        if self.compute_line():
            lines += ["", f"**Compute** (not gated): {self.compute_line()}"]
        if self.notes:
            lines += ["", "**Comparison set**:", *[f"- {note}" for note in self.notes]]
        return "\n".join(lines)


def decide(
    candidate: Mapping[str, float],
    production: Mapping[str, float] | None,
    policy: GateParams,
    compute: Compute | None = None,
    notes: list[str] | None = None,
) -> GateDecision:
    checks: list[GateCheck] = []
    minimums = {"accuracy": policy.min_accuracy, "macro_f1": policy.min_macro_f1}
    for metric in _GATED:
        value, floor = candidate[metric], minimums[metric]
        ok = value >= floor
        checks.append(
            GateCheck(
                "minimum",
                metric,
                value,
                None if production is None else production.get(metric),
                floor,
                ok,
                f"{metric} {value:.4f} {'>=' if ok else '<'} minimum {floor:.4f}",
            )
        )
    if production is not None:
        checks += [
            _not_worse(
                "no_regression",
                metric,
                candidate[metric],
                production[metric],
                policy.max_regression,
            )
            for metric in _GATED
        ]
        metric = policy.primary_metric
        value, before = candidate[metric], production[metric]
        gain = value - before
        ok = gain >= policy.min_improvement
        checks.append(
            GateCheck(
                "improvement",
                metric,
                value,
                before,
                before + policy.min_improvement,
                ok,
                f"{metric} improves by {gain:+.4f} over production; "
                f"{'meets' if ok else 'below'} the required {policy.min_improvement:+.4f}",
            )
        )
    checks += _class_and_slice_checks(candidate, production, policy)
    checks += _budget_checks(candidate, policy)
    return GateDecision(
        all(check.passed for check in checks),
        checks,
        production is not None,
        dict(compute or {}),
        list(notes or []),
    )


def _class_and_slice_checks(
    candidate: Mapping[str, float], production: Mapping[str, float] | None, policy: GateParams
) -> list[GateCheck]:
    checks = []
    recalls = sorted(key for key in candidate if key.startswith("recall_"))
    if policy.min_class_recall > 0:
        for metric in recalls:
            value = candidate[metric]
            ok = value >= policy.min_class_recall
            checks.append(
                GateCheck(
                    "class_minimum",
                    metric,
                    value,
                    None,
                    policy.min_class_recall,
                    ok,
                    f"{metric} {value:.4f} {'>=' if ok else '<'} minimum "
                    f"{policy.min_class_recall:.4f}",
                )
            )
    if production is None:
        return checks
    slices = recalls + sorted(key for key in candidate if key.startswith("slice_"))
    checks += [
        _not_worse(
            "slice", metric, candidate[metric], production[metric], policy.max_slice_regression
        )
        for metric in slices
        if metric in production
    ]
    return checks


def _not_worse(name: str, metric: str, value: float, before: float, tolerance: float) -> GateCheck:
    """The candidate may fall at most `tolerance` below production on `metric`."""
    floor = before - tolerance
    ok = value >= floor
    label = f"slice {metric}" if name == "slice" else metric
    return GateCheck(
        name,
        metric,
        value,
        before,
        floor,
        ok,
        f"{label} {value:.4f} vs production {before:.4f}: "
        + ("within" if ok else "regresses beyond")
        + f" the allowed {tolerance:.4f}",
    )


def _budget_checks(candidate: Mapping[str, float], policy: GateParams) -> list[GateCheck]:
    checks = []
    for metric, budget, unit in (
        ("latency_p95_ms", policy.max_latency_p95_ms, "ms"),
        ("model_size_mb", policy.max_model_size_mb, "MB"),
    ):
        if budget is None or metric not in candidate:
            continue
        value = candidate[metric]
        ok = value <= budget
        checks.append(
            GateCheck(
                "budget",
                metric,
                value,
                None,
                budget,
                ok,
                f"{metric} {value:.1f} {unit} {'within' if ok else 'over'} the budget {budget:.1f}",
            )
        )
    if policy.max_epsilon is not None:
        budget = policy.max_epsilon
        epsilon = candidate.get("dp_epsilon")
        if epsilon is None:
            checks.append(
                GateCheck(
                    "privacy",
                    "dp_epsilon",
                    float("inf"),
                    None,
                    budget,
                    False,
                    f"trained without differential privacy; gate.max_epsilon requires ε <= "
                    f"{budget:g} (set train.privacy.enabled)",
                )
            )
        else:
            ok = epsilon <= budget
            checks.append(
                GateCheck(
                    "privacy",
                    "dp_epsilon",
                    epsilon,
                    None,
                    budget,
                    ok,
                    f"ε {epsilon:.3f} {'within' if ok else 'over'} the privacy budget {budget:g}",
                )
            )
    return checks

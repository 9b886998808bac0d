"""The promotion gate: (candidate metrics, production metrics on the same split, policy) → decision.

Pure: no I/O, no clock, no randomness, so the table of cases in the unit tests is the whole
specification. A failed gate is acted on by the flow doing nothing to the aliases.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from modelyard.config import GateParams
from modelyard.evaluation.baselines import BAG_OF_WORDS, BASELINES, TITLES

_GATED = ("accuracy", "macro_f1")
# Per-class floors: the policy's map and the headline metric's prefix.
_CLASS_FLOORS = (("min_precision", "precision"), ("min_recall", "recall"), ("min_f1", "f1"))
# Costs the candidate's figures carry besides quality: budgeted, not compared with baselines.
_COSTS = ("latency_p95_ms", "model_size_mb", "dp_epsilon")


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
    # Every model's headline metrics on the comparison set, by column: candidate, production
    # (when there is one) and each baseline (majority, bag_of_words) when measured.
    figures: dict[str, dict[str, float]] = field(default_factory=dict)
    # The parity check of the exported runtimes, once a passed candidate is exported
    # (`modelyard.evaluation.parity.RuntimeReport.lines`): informational, the gate's verdict
    # stands whatever it says (a variant that fails is kept out; eager torch answers).
    runtime: list[str] = field(default_factory=list)

    @property
    def baselines(self) -> dict[str, dict[str, float]]:
        return {name: self.figures[name] for name in BASELINES if name in self.figures}

    @property
    def verdict(self) -> str:
        return "promote" if self.passed else "reject"

    @property
    def reasons(self) -> list[str]:
        """Why it failed (every failing check), or why it passed: the improvement over
        production (or that it is the first model) and the lift over the baseline."""
        failed = [check.reason for check in self.checks if not check.passed]
        if failed:
            return failed
        improved = [check.reason for check in self.checks if check.name == "improvement"]
        lift = [check.reason for check in self.checks if check.name == "baseline"]
        return (improved or ["first model: all absolute thresholds met"]) + lift

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "verdict": self.verdict,
            "reasons": self.reasons,
            "checks": [asdict(check) for check in self.checks],
            "compute": self.compute,
            "notes": self.notes,
            "figures": self.figures,
            "runtime": self.runtime,
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

    def baselines_line(self) -> str | None:
        """The candidate's accuracy, macro-F1 and AUCs next to each baseline's."""
        if not self.baselines:
            return None
        candidate = self.figures.get("candidate", {})
        shown = [m for m in ("accuracy", "macro_f1", "roc_auc", "pr_auc") if m in candidate]
        columns = {"candidate": candidate, **self.baselines}
        return "; ".join(
            f"{column} " + ", ".join(f"{m} {values.get(m, float('nan')):.4f}" for m in shown)
            for column, values in columns.items()
        )

    def figures_markdown(self) -> list[str]:
        """Every headline metric (per-class figures and AUCs included) of every model compared:
        the candidate, production, the baselines."""
        candidate = self.figures.get("candidate", {})
        columns = list(self.figures)
        if not candidate:
            return []
        titles = {**TITLES, "candidate": "candidate", "production": "production"}
        lines = [
            "",
            "**Scores on the comparison set**:",
            "",
            "| metric | " + " | ".join(titles.get(c, c) for c in columns) + " |",
            "|---" * (len(columns) + 1) + "|",
        ]
        for metric in candidate:
            values = [self.figures[c].get(metric) for c in columns]
            cells = ["—" if v is None else f"{v:.4f}" for v in values]
            lines.append(f"| {metric} | " + " | ".join(cells) + " |")
        return lines

    def to_text(self, limit: int = 5000) -> str:
        """Every check on one line, for a registry tag (MLflow caps tag values at 5,000
        characters: the tail is cut, the full report stays in the run)."""
        lines = [f"{self.verdict.upper()}"] + [
            f"{'pass' if check.passed else 'FAIL'} {check.name}: {check.reason}"
            for check in self.checks
        ]
        if self.baselines_line():
            lines.append(f"info baselines: {self.baselines_line()}")
        if self.compute_line():
            lines.append(f"info compute: {self.compute_line()}")
        lines += [f"info comparison: {note}" for note in self.notes]
        lines += [f"info runtime: {line}" for line in self.runtime]
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
        lines += self.figures_markdown()
        if self.compute_line():
            lines += ["", f"**Compute** (not gated): {self.compute_line()}"]
        if self.notes:
            lines += ["", "**Comparison set**:", *[f"- {note}" for note in self.notes]]
        if self.runtime:
            lines += ["", "**Runtimes** (parity with the PyTorch model on the test split):"]
            lines += [f"- {line}" for line in self.runtime]
        return "\n".join(lines)


def decide(
    candidate: Mapping[str, float],
    production: Mapping[str, float] | None,
    policy: GateParams,
    compute: Compute | None = None,
    notes: list[str] | None = None,
    baselines: Mapping[str, Mapping[str, float]] | None = None,
) -> GateDecision:
    """`candidate` and `production`: headline metrics on the same comparison set (the
    candidate's costs too); `baselines`: each baseline's headline metrics on that set."""
    checks = _minimum_checks(candidate, production, policy)
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
        checks.append(_improvement(candidate, production, policy))
    checks += _class_and_slice_checks(candidate, production, policy)
    checks += _baseline_checks(candidate, baselines or {}, policy)
    checks += _budget_checks(candidate, policy)
    return GateDecision(
        all(check.passed for check in checks),
        checks,
        production is not None,
        dict(compute or {}),
        list(notes or []),
        _figures(candidate, production, baselines or {}),
    )


def _figures(
    candidate: Mapping[str, float],
    production: Mapping[str, float] | None,
    baselines: Mapping[str, Mapping[str, float]],
) -> dict[str, dict[str, float]]:
    quality = {k: v for k, v in candidate.items() if k not in _COSTS}
    columns = {"candidate": quality, **({} if production is None else {"production": production})}
    # The baselines in their usual order (majority, then bag of words), whatever was passed.
    ordered = sorted(baselines, key=lambda n: BASELINES.index(n) if n in BASELINES else 99)
    columns.update({name: baselines[name] for name in ordered})
    return {name: dict(values) for name, values in columns.items()}


def _unmeasured(name: str, metric: str, threshold: float, why: str) -> GateCheck:
    """A check whose metric the evaluation did not produce: it fails, saying so."""
    return GateCheck(
        name, metric, float("nan"), None, threshold, False, f"{metric} was not measured: {why}"
    )


def _floor(
    name: str,
    metric: str,
    candidate: Mapping[str, float],
    production: Mapping[str, float] | None,
    floor: float,
) -> GateCheck:
    """The candidate's `metric` must reach `floor`."""
    if metric not in candidate:
        why = "an AUC needs texts of the positive class and of the rest in the comparison set"
        return _unmeasured(name, metric, floor, why)
    value = candidate[metric]
    ok = value >= floor
    return GateCheck(
        name,
        metric,
        value,
        None if production is None else production.get(metric),
        floor,
        ok,
        f"{metric} {value:.4f} {'>=' if ok else '<'} minimum {floor:.4f}",
    )


def _minimum_checks(
    candidate: Mapping[str, float], production: Mapping[str, float] | None, policy: GateParams
) -> list[GateCheck]:
    """Accuracy and macro-F1 floors, and the AUC floors where the policy sets them."""
    floors: dict[str, float | None] = {
        "accuracy": policy.min_accuracy,
        "macro_f1": policy.min_macro_f1,
        "roc_auc": policy.min_roc_auc,
        "pr_auc": policy.min_pr_auc,
    }
    return [
        _floor("minimum", metric, candidate, production, floor)
        for metric, floor in floors.items()
        if floor is not None
    ]


def _improvement(
    candidate: Mapping[str, float], production: Mapping[str, float], policy: GateParams
) -> GateCheck:
    metric = policy.primary_metric
    if metric not in candidate or metric not in production:
        why = "the primary metric needs both models scored on both sides of the positive class"
        return _unmeasured("improvement", metric, policy.min_improvement, why)
    value, before = candidate[metric], production[metric]
    gain = value - before
    ok = gain >= policy.min_improvement
    return GateCheck(
        "improvement",
        metric,
        value,
        before,
        before + policy.min_improvement,
        ok,
        f"{metric} improves by {gain:+.4f} over production; "
        f"{'meets' if ok else 'below'} the required {policy.min_improvement:+.4f}",
    )


def _baseline_checks(
    candidate: Mapping[str, float],
    baselines: Mapping[str, Mapping[str, float]],
    policy: GateParams,
) -> list[GateCheck]:
    """The candidate must beat the bag-of-words baseline on the primary metric by at least
    `min_lift_over_baseline` (no check when that is unset)."""
    lift, metric = policy.min_lift_over_baseline, policy.primary_metric
    if lift is None:
        return []
    base = baselines.get(BAG_OF_WORDS, {}).get(metric)
    if base is None or metric not in candidate:
        why = "no bag-of-words baseline score to compare with"
        return [_unmeasured("baseline", metric, lift, why)]
    value = candidate[metric]
    gain = value - base
    ok = value >= base + lift
    return [
        GateCheck(
            "baseline",
            metric,
            value,
            None,
            base + lift,
            ok,
            f"{metric} {value:.4f} vs the bag-of-words baseline {base:.4f}: lift {gain:+.4f}, "
            + ("meets" if ok else "below")
            + f" the required {lift:+.4f}",
        )
    ]


def _class_and_slice_checks(
    candidate: Mapping[str, float], production: Mapping[str, float] | None, policy: GateParams
) -> list[GateCheck]:
    recalls = sorted(key for key in candidate if key.startswith("recall_"))
    checks = [
        _floor("class_minimum", metric, candidate, None, policy.min_class_recall)
        for metric in (recalls if policy.min_class_recall > 0 else [])
    ]
    for key, measure in _CLASS_FLOORS:
        checks += [
            _floor("class_minimum", f"{measure}_{label}", candidate, None, floor)
            for label, floor in getattr(policy, key).items()
        ]
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

"""What a retrain did — the retrain flow's return value — and how a person reads it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelyard.evaluation.baselines import TITLES
from modelyard.evaluation.gate import GateDecision


@dataclass(frozen=True)
class DatasetSummary:
    path: str
    md5: str
    git_commit: str
    rows: int
    splits: dict[str, int]  # part → rows


@dataclass(frozen=True)
class ValidationSummary:
    summary: str
    docs: str  # the Data Docs' index.html


@dataclass(frozen=True)
class ComputeSummary:
    """What training cost (see `modelyard.training.cost.gate_compute`): device, this attempt's
    figures, and `total_*` over every attempt of the run."""

    figures: dict[str, float | str]

    def line(self) -> str | None:
        c = self.figures
        if not c:
            return None
        attempts = float(c.get("attempts", 1))
        return (
            f"{float(c['device_hours']):.4f} device-h, "
            f"{float(c['energy_kwh']) * 1000:.2f} Wh ({c['energy_source']}), "
            f"{float(c['cost']):.4f} {c['currency']}"
            + (
                f"; all {int(attempts)} attempts: {float(c['total_cost']):.4f} {c['currency']}"
                if attempts > 1
                else ""
            )
        )


@dataclass(frozen=True)
class TrainingSummary:
    resumed_from_step: int | None
    resumed_run: bool
    steps: int
    device: str
    precision: str
    dp_epsilon: float | None
    compute: ComputeSummary


@dataclass(frozen=True)
class ApprovalSummary:
    status: str  # approved | rejected | timed out
    reviewer: str
    reason: str


@dataclass(frozen=True)
class RetrainSummary:
    model: str
    dataset: DatasetSummary
    validation: ValidationSummary | None
    training: TrainingSummary | None
    candidate: dict[str, float]  # headline metric → value, on the comparison set
    majority_baseline_accuracy: float
    production: dict[str, float] | None  # the champion's, on the same set
    production_version_before: str | None
    production_version_after: str | None
    staging_version: str | None
    decision: GateDecision
    # Production moved while this run evaluated: the decision is against this version.
    rechecked_against: str | None
    approval: ApprovalSummary | None
    version: str | None  # the registered version (None: not registered)
    mlflow_run_id: str
    tracking_uri: str
    # The rollout the candidate opened (shadow, canary), in one line; None: no rollout.
    rollout: str | None = None


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def _metrics_table(summary: RetrainSummary) -> Any:
    """Every headline metric (per-class figures and AUCs included) of the candidate, production
    and the baselines, on the comparison set."""
    from rich.table import Table

    table = Table(title="test split", show_edge=False)
    table.add_column("metric")
    table.add_column("candidate", justify="right")
    before = summary.production_version_before
    table.add_column(f"production (v{before})" if before else "production", justify="right")
    baselines = summary.decision.baselines
    for name in baselines:
        table.add_column(f"baseline: {name.replace('_', ' ')}", justify="right")
    production = summary.production or {}
    for metric, value in summary.candidate.items():
        others = [production.get(metric), *(b.get(metric) for b in baselines.values())]
        table.add_row(metric, _fmt(value), *(_fmt(v) for v in others))
    return table


def _baseline_lines(summary: RetrainSummary) -> list[str]:
    lines = [
        f"baseline  always predicting the majority class: accuracy "
        f"{summary.majority_baseline_accuracy:.4f}"
    ]
    bag = summary.decision.baselines.get("bag_of_words")
    if bag is not None:
        lines.append(
            f"baseline  {TITLES['bag_of_words']} on the training split: accuracy "
            f"{bag['accuracy']:.4f}, macro-F1 {bag['macro_f1']:.4f}"
        )
    return lines


def _training_lines(training: TrainingSummary) -> list[str]:
    note = (
        f"; resumed from step {training.resumed_from_step}"
        if training.resumed_from_step is not None
        else ""
    )
    lines = [f"training  {training.steps} steps on {training.device} ({training.precision}){note}"]
    if training.dp_epsilon is not None:
        lines.append(f"privacy   differentially private: ε = {training.dp_epsilon:.3f}")
    if (compute := training.compute.line()) is not None:
        lines.append(f"compute   {compute}")
    return lines


def print_summary(summary: RetrainSummary) -> None:
    from rich.console import Console

    console = Console()
    dataset, decision = summary.dataset, summary.decision
    console.rule("[bold]ModelYard retrain")
    console.print(
        f"dataset   {dataset.path}  md5 [bold]{dataset.md5}[/]  "
        f"({dataset.rows} rows: {dataset.splits})  git {dataset.git_commit[:12]}"
    )
    if summary.validation is not None:
        console.print(
            f"data      {summary.validation.summary}; Data Docs: {summary.validation.docs}"
        )
    if summary.training is not None:
        for line in _training_lines(summary.training):
            console.print(line)
    console.print(_metrics_table(summary))
    for note in decision.notes:
        console.print(f"compared  {note}")
    for line in _baseline_lines(summary):
        console.print(line)
    colour = "green" if decision.passed else "yellow"
    again = summary.rechecked_against
    note = f" (production moved to v{again} meanwhile: compared again against it)" if again else ""
    console.print(f"gate      [{colour}]{decision.verdict.upper()}[/]{note}")
    for reason in decision.reasons:
        console.print(f"          - {reason}")
    name, version = summary.model, summary.version
    if version is None:
        console.print("model     not registered")
    else:
        status = "" if decision.passed else " (tagged rejected, no alias)"
        console.print(f"model     {name} version {version}{status}")
    approval = summary.approval
    if approval is not None:
        console.print(
            f"approval  {approval.status} by {approval.reviewer}"
            + (f": {approval.reason}" if approval.reason else "")
        )
    console.print(
        f"aliases   staging → v{summary.staging_version}, "
        f"production → v{summary.production_version_after}"
    )
    if summary.rollout is not None:
        console.print(f"rollout   {summary.rollout} (modelyard rollout status {summary.model})")
    before = summary.production_version_before
    if not decision.passed and before:
        console.print(f"          production stays at version {before}")
    console.print(
        f"mlflow    run {summary.mlflow_run_id}; open the UI with: "
        f"[bold]mlflow ui --backend-store-uri {summary.tracking_uri}[/]"
    )

"""The retrain loop: resolve the dataset version → read → validate → split → train → evaluate
(candidate and production on the same comparison set) → gate → register → `staging` →
`production`.

Bad data ends the flow Failed, with the message of the first refusal, before anything is trained
or written to MLflow.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import State, flow, get_run_logger
from prefect.runtime import flow_run
from prefect.settings import get_current_settings
from prefect.states import Failed

from flows.promote import Promoted, promote_candidate
from modelyard import tags as tag
from modelyard.adapters.catalog import CatalogError
from modelyard.adapters.datasets import Source, project_root
from modelyard.adapters.dvc_pipeline import pipeline_root
from modelyard.adapters.promotion import Case
from modelyard.config import Params, Settings, load_params
from modelyard.data.dataset import Splits
from modelyard.data.membership import Membership, SplitLineage
from modelyard.data.validation import ValidationReport
from modelyard.evaluation.gate import GateDecision
from modelyard.evaluation.metrics import Metrics
from modelyard.evaluation.parity import RuntimeReport
from modelyard.inference.runtime import CPU, CUDA
from modelyard.lineage_key import LineageKey, Repeat
from modelyard.orchestration.runs import flow_run_url, name_flow_run
from modelyard.registry.lineage import lineage_tags
from modelyard.registry.mlflow_registry import MlflowRegistry
from modelyard.registry.splits import membership_md5
from modelyard.registry.tracking import DataOrigin, OpenedRun, RunStory
from modelyard.report import (
    ApprovalSummary,
    ComputeSummary,
    DatasetSummary,
    RetrainSummary,
    TrainingSummary,
    ValidationSummary,
)
from modelyard.store.audit import AuditLog
from modelyard.training.checkpoint import training_key
from modelyard.training.fit import Trained
from tasks.cards import publish_card, record_card_inputs
from tasks.data import (
    Rejected,
    load_dataset,
    rejection,
    resolve_dataset,
    split_dataset,
    validate_dataset,
)
from tasks.evaluate import (
    champion_split,
    evaluate_baselines,
    evaluate_candidate,
    evaluate_production,
    fair_comparison,
    find_champion,
    gate,
)
from tasks.explain import explain_candidate
from tasks.lineage import find_repeat, lineage_key
from tasks.pipeline import record_pipeline_outputs
from tasks.promote import register_candidate
from tasks.registry import (
    describe_and_link,
    log_evaluation,
    log_validation,
    open_tracking_run,
    origin_of,
)
from tasks.runtime import check_runtimes, log_runtimes
from tasks.train import train_candidate

MANUAL_WITHOUT_SERVER = (
    "promotion.mode is manual, but this run uses Prefect's ephemeral API, which no reviewer can "
    "reach to approve: start a server (`prefect server start`) and set PREFECT_API_URL, or use "
    "promotion.mode auto"
)


def _provisional_name() -> str:
    """The run's name until its data is resolved (then `retrain NAME on DATASET@V`)."""
    parameters = flow_run.parameters
    data = parameters.get("data_path") or f"data.path of {parameters.get('params_path')}"
    return f"retrain on {data}"


@flow(name="retrain", log_prints=True, flow_run_name=_provisional_name)
def retrain(
    params_path: str = "params.yaml",
    data_path: str | None = None,
    overrides: dict[str, Any] | None = None,
    data_repo: str | None = None,
    force: bool = False,
) -> RetrainSummary | Repeat | State:
    """Train a candidate on a dataset version and promote it only if it passes the gate.

    `data_path` is a file or a dataset version `NAME@VERSION` (default: `data.path`), read from
    `data_repo` (a path or git URL) when given. `overrides` replaces params by dotted key
    (`{"train.epochs": 1}`), validated like the file. A registered version with this run's
    lineage key is returned as a `Repeat` and nothing trains, unless `force`.
    """
    params = load_params(params_path).updated(overrides or {})
    if params.promotion.mode == "manual" and not get_current_settings().api.url:
        return _reject(Rejected(MANUAL_WITHOUT_SERVER))
    settings = Settings()
    data = _read_inputs(params, data_path, data_repo, settings)
    if isinstance(data, Rejected):
        return _reject(data)
    flow_run_id, origin = str(flow_run.id or "local"), origin_of(data.source)
    name_flow_run(flow_run_id, params.model.name, origin.ref)
    registry, name = MlflowRegistry.from_settings(settings), params.model.name
    key = lineage_key(params, data.source.version)
    if (repeat := _repeat(registry, key, data, params, force)) is not None:
        return repeat
    docs_dir = settings.validation_dir() / data.docs_name(params)
    validation, docs = validate_dataset(data.frame, data.test, params, data.label, docs_dir)
    if not validation.success:
        return _reject(rejection(validation, data.label, docs))
    # The production model's split membership: texts it trained on stay out of this test split.
    parent_version = registry.alias_version(name, tag.PRODUCTION)
    parent = champion_split(registry, name, parent_version)
    splits, lineage = split_dataset(data.frame, data.test, params.data, parent, parent_version)
    run_dir = _run_dir(settings, data, params)
    opened = open_tracking_run(registry, params, origin, splits, flow_run_id, run_dir)
    run_id = opened.run_id
    with _finishing(registry, run_id, run_dir):
        log_validation(registry, run_id, validation, docs)
        trained = _train(registry, params, settings, splits, run_id, run_dir)
        root = _pipeline_root(params_path, data, params, overrides, data_repo)
        record_pipeline_outputs(root, splits, trained.model_dir)
        audit = AuditLog.from_url(settings.resolved_database_url())
        judged = _judge(
            registry, audit, params, trained, splits, (parent_version, parent), lineage, run_id
        )
        judged = _check_runtimes(registry, params, trained, splits, judged, run_id)
        version = _register(
            registry, params, key, validation, judged, trained, splits, flow_run_id, run_id
        )
        promoted = _promote(
            registry, audit, params, settings, judged, version, splits, lineage, run_id, flow_run_id
        )
        _describe_run(registry, settings, name, origin, flow_run_id, run_id, promoted, version)
    summary = _summary(
        registry, params, data, splits, judged, promoted, version, opened, validation, docs, trained
    )
    return _outcome(summary, promoted)


def _repeat(
    registry: MlflowRegistry, key: LineageKey, data: Inputs, params: Params, force: bool
) -> Repeat | None:
    """The registered version this run would make again (nothing trains then), found before
    anything is validated or trained; None when it trains (always with `force`)."""
    if force:
        get_run_logger().info("force: training whatever versions have this lineage key")
        return None
    repeat = find_repeat(registry, params.model.name, key, data.frame, data.test, params.data)
    return None if repeat.version is None else repeat


def _run_dir(settings: Settings, data: Inputs, params: Params) -> Path:
    """Same inputs → same directory: a retrain killed mid-training finds its checkpoints and its
    MLflow run there and carries on, so the end result is one run and one model version."""
    return settings.resolved_runs_dir() / training_key(data.md5, params.digest(), params.model.name)


def _pipeline_root(
    params_path: str,
    data: Inputs,
    params: Params,
    overrides: dict[str, Any] | None,
    data_repo: str | None,
) -> Path | None:
    """The project whose DVC pipeline this retrain reproduced, if it did."""
    return pipeline_root(
        Path(params_path), data.source.path, params.data.path, bool(overrides), bool(data_repo)
    )


def _train(
    registry: MlflowRegistry,
    params: Params,
    settings: Settings,
    splits: Splits,
    run_id: str,
    run_dir: Path,
) -> Trained:
    """The candidate, trained (resumed from `run_dir`'s checkpoints when a retry finds them)."""
    return train_candidate(
        splits,
        params,
        registry,
        run_id,
        run_dir / "model",
        run_dir / "checkpoints",
        settings.rdzv_endpoint,  # where the other train.nnodes - 1 machines join
    )


def _describe_run(
    registry: MlflowRegistry,
    settings: Settings,
    name: str,
    origin: DataOrigin,
    flow_run_id: str,
    run_id: str,
    promoted: Promoted,
    version: str | None,
) -> None:
    """The MLflow run's description and links, once the decision is known."""
    story = RunStory(
        name,
        origin.ref,
        origin.version.md5,
        flow_run_id,
        flow_run_url(flow_run_id),
        decision=promoted.decision,
        version=version,
        production=registry.alias_version(name, tag.PRODUCTION),
    )
    describe_and_link(registry, run_id, story, settings.resolved_mlflow_ui_url())


def _outcome(summary: RetrainSummary, promoted: Promoted) -> RetrainSummary | State:
    """The summary; Failed (carrying it) when the new version did not deploy."""
    get_run_logger().info(
        "decision %s; %s@production is version %s",
        promoted.decision.verdict,
        summary.model,
        summary.production_version_after,
    )
    if promoted.deploy_failure is not None:
        return Failed(message=promoted.deploy_failure, data=summary)
    return summary


@dataclass(frozen=True)
class Inputs:
    source: Source
    frame: pd.DataFrame
    test_source: Source | None = None
    test: pd.DataFrame | None = None

    @property
    def md5(self) -> str:
        return self.source.version.md5

    @property
    def label(self) -> str:
        held_out = f" with test file {self.test_source.label}" if self.test_source else ""
        return self.source.label + held_out

    def docs_name(self, params: Params) -> str:
        """Where this data's Data Docs go: one directory per dataset and params."""
        return f"{self.md5[:12]}-{params.digest()[:8]}"


def _read_inputs(
    params: Params, data_path: str | None, data_repo: str | None, settings: Settings
) -> Inputs | Rejected:
    """The dataset (and the separate test file, when `data.test_path` names one), read."""
    try:
        root: Path | None = project_root()
    except CatalogError:
        root = None
    cache = settings.dataset_cache()
    data = _read(data_path or str(params.data.path), data_repo, root, cache, params)
    if isinstance(data, Rejected) or params.data.test_path is None:
        return data if isinstance(data, Rejected) else Inputs(*data)
    held_out = _read(str(params.data.test_path), data_repo, root, cache, params)
    return held_out if isinstance(held_out, Rejected) else Inputs(*data, *held_out)


def _read(
    spec: str, repo: str | None, root: Path | None, cache: Path, params: Params
) -> tuple[Source, pd.DataFrame] | Rejected:
    """Resolve a file or dataset version and read it as `data:` says; the first refusal."""
    source = resolve_dataset(spec, repo, root, cache)
    if isinstance(source, Rejected):
        return source
    frame = load_dataset(source, params.data)
    return frame if isinstance(frame, Rejected) else (source, frame)


@dataclass(frozen=True)
class Judged:
    candidate: Metrics
    production: tuple[str, Metrics] | None
    decision: GateDecision
    majority_baseline: float

    # The exported runtimes' parity check (a candidate that passed, with `runtime.export`).
    runtime: RuntimeReport | None = None

    @property
    def production_version(self) -> str | None:
        return None if self.production is None else self.production[0]

    def runtime_tags(self) -> dict[str, str]:
        """The version's `runtime` (and, checked on a GPU, `runtime_cuda`) tags: the variant
        chosen for each kind of server. None without an export: the version answers eager."""
        if self.runtime is None:
            return {}
        keys = {CPU: tag.RUNTIME, CUDA: tag.RUNTIME_CUDA}
        return {keys[kind]: name for kind, name in self.runtime.chosen.items() if kind in keys}


def _judge(
    registry: MlflowRegistry,
    audit: AuditLog,
    params: Params,
    trained: Trained,
    splits: Splits,
    parent: tuple[str | None, Membership | None],
    lineage: SplitLineage,
    run_id: str,
) -> Judged:
    """Evaluation, the retrain's middle group of steps: the champion, the comparison set the
    champion never trained on, both models on it, the explanation report, the gate."""
    name, labels, positive = params.model.name, list(params.data.labels), params.data.positive
    champion = find_champion(registry, audit, name, run_id)
    membership = parent[1] if champion == parent[0] else champion_split(registry, name, champion)
    comparison = fair_comparison(splits.test, membership, champion, lineage)
    candidate = evaluate_candidate(
        trained.model_dir, comparison.test, labels, trained.result.epsilon, positive
    )
    if params.explain.report:
        explain_candidate(
            trained.model_dir, comparison.test, params.explain, registry, run_id, name
        )
    record_card_inputs(trained.model_dir, comparison.test, splits, labels, registry, run_id)
    production = evaluate_production(registry, name, champion, comparison.test, labels, positive)
    baselines = evaluate_baselines(splits.train, comparison.test, labels, positive)
    decision = gate(
        candidate,
        None if production is None else production[1],
        params.gate,
        trained.compute(),
        comparison.notes(),
        baselines,
        name,
    )
    log_evaluation(
        registry,
        run_id,
        candidate,
        None if production is None else production[1],
        None if production is None else production[0],
        decision,
        baselines,
    )
    return Judged(candidate, production, decision, baselines.majority.accuracy)


def _check_runtimes(
    registry: MlflowRegistry,
    params: Params,
    trained: Trained,
    splits: Splits,
    judged: Judged,
    run_id: str,
) -> Judged:
    """A candidate that passed the gate, exported (ONNX fp32, int8) and each variant checked
    against it on the test split; the report joins the gate report and the MLflow run. A
    candidate that failed, or `runtime.export: false`, stays as it is (eager)."""
    if not (judged.decision.passed and params.runtime.export):
        return judged
    report = check_runtimes(
        trained.model_dir, splits.test, list(params.data.labels), params.runtime, params.model.name
    )
    decision = replace(judged.decision, runtime=report.lines())
    log_runtimes(registry, run_id, report, decision)
    return replace(judged, decision=decision, runtime=report)


def _register(
    registry: MlflowRegistry,
    params: Params,
    key: LineageKey,
    validation: ValidationReport,
    judged: Judged,
    trained: Trained,
    splits: Splits,
    flow_run_id: str,
    run_id: str,
) -> str | None:
    """A model version for a candidate that passed (or for any, with
    `promotion.register_rejected`), with its lineage (the key of the training as it ran, the
    production version it was judged against); None when it is not registered."""
    if not (judged.decision.passed or params.promotion.register_rejected):
        return None
    ran = key.trained_on(trained.result.device, trained.result.precision)
    lineage = (
        lineage_tags(
            key.dataset,
            params.digest(),
            flow_run_id,
            run_id,
            validation,
            judged.candidate,
            membership_md5(Membership.of(splits)),
        )
        | judged.runtime_tags()
        | ran.tags()
        | {tag.JUDGED_AGAINST: judged.production_version or tag.NO_VERSION}
    )
    return register_candidate(
        registry,
        params.model.name,
        run_id,
        trained.model_dir,
        splits,
        lineage,
        judged.decision,
        params.privacy,
    )


def _promote(
    registry: MlflowRegistry,
    audit: AuditLog,
    params: Params,
    settings: Settings,
    judged: Judged,
    version: str | None,
    splits: Splits,
    lineage: SplitLineage,
    run_id: str,
    flow_run_id: str,
) -> Promoted:
    """Promotion, the retrain's last group of steps (`flows/promote.py`), for a registered
    candidate that passed the gate; nothing moves otherwise. Every registered version's model
    card is published first, and again once its aliases have moved."""
    if version is not None:
        _publish_card(registry, audit, settings, params.model.name, version)
    if not judged.decision.passed or version is None:
        return Promoted(judged.decision)
    labels = list(params.data.labels)
    case = Case(
        params.model.name,
        version,
        run_id,
        judged.candidate,
        splits.test,
        labels,
        params.gate,
        lineage,
    )
    promoted = promote_candidate(
        registry,
        audit,
        case,
        judged.decision,
        judged.production_version,
        params,
        settings,
        flow_run_id,
    )
    _publish_card(registry, audit, settings, params.model.name, version)
    return promoted


def _publish_card(
    registry: MlflowRegistry, audit: AuditLog, settings: Settings, name: str, version: str
) -> None:
    """The version's model card, in its run and as a Prefect artifact. A card that cannot be
    made is a warning, not the retrain's failure: it documents the version, it decides
    nothing."""
    state = publish_card(
        registry, audit, name, version, settings.resolved_mlflow_ui_url(), return_state=True
    )
    if state.is_failed():
        get_run_logger().warning("%s version %s: no model card (%s)", name, version, state.message)


@contextmanager
def _finishing(registry: MlflowRegistry, run_id: str, run_dir: Path) -> Iterator[None]:
    """End the MLflow run FINISHED and drop its run directory, or FAILED and keep it: the next
    retrain with the same inputs resumes from it."""
    try:
        yield
    except BaseException:
        registry.end_run(run_id, "FAILED")
        raise
    registry.end_run(run_id, "FINISHED")
    shutil.rmtree(run_dir, ignore_errors=True)


def _summary(
    registry: MlflowRegistry,
    params: Params,
    data: Inputs,
    splits: Splits,
    judged: Judged,
    promoted: Promoted,
    version: str | None,
    opened: OpenedRun,
    validation: ValidationReport,
    docs: Path,
    trained: Trained,
) -> RetrainSummary:
    name, run_id, resumed = params.model.name, opened.run_id, opened.resumed
    result, dataset, approval = trained.result, data.source.version, promoted.approval
    return RetrainSummary(
        model=name,
        dataset=DatasetSummary(
            dataset.path,
            dataset.md5,
            dataset.git_commit,
            sum(splits.sizes().values()),
            splits.sizes(),
        ),
        validation=ValidationSummary(validation.summary(), str(docs / "index.html")),
        training=TrainingSummary(
            result.resumed_from_step,
            resumed,
            result.steps,
            result.device,
            result.precision,
            result.epsilon,
            ComputeSummary(trained.compute()),
        ),
        candidate=judged.candidate.headline(),
        majority_baseline_accuracy=judged.majority_baseline,
        production=None if judged.production is None else judged.production[1].headline(),
        production_version_before=judged.production_version,
        production_version_after=registry.alias_version(name, tag.PRODUCTION),
        staging_version=registry.alias_version(name, tag.STAGING),
        decision=promoted.decision,
        rechecked_against=promoted.rechecked_against,
        approval=None
        if approval is None
        else ApprovalSummary(approval.status, approval.reviewer, approval.reason),
        version=version,
        mlflow_run_id=run_id,
        tracking_uri=registry.tracking_uri,
        rollout=promoted.rollout_line,
    )


def _reject(reason: Rejected) -> State:
    """End the run Failed with the reason as its message: no traceback, nothing tracked."""
    get_run_logger().error("refused, nothing trained or registered:\n%s", reason.message)
    return Failed(message=f"{reason.message}\nNothing was trained, registered or promoted.")

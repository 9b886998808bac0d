"""The retrain loop: resolve the dataset version → read → validate → split → train → evaluate
(candidate and production on the same split) → gate → register → `staging` → `production`.

Bad data ends the flow Failed, with the message of the first refusal, before anything is trained
or written to MLflow.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, replace
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from prefect.settings import get_current_settings
from prefect.states import Failed, State

from modelyard.config import Settings, load_params
from modelyard.adapters.catalog import CatalogError
from modelyard.data.dataset import LABEL, TEXT
from modelyard.data.membership import Membership
from modelyard.adapters.datasets import Source, project_root
from modelyard.evaluation.metrics import Metrics, majority_baseline
from modelyard.promotion import DEPLOY_ERROR_TAG, DEPLOY_FAILED, DEPLOY_TAG
from modelyard.registry.lineage import lineage_tags
from modelyard.registry.mlflow_registry import PRODUCTION, STAGING, MlflowRegistry
from modelyard.registry.splits import membership_md5
from modelyard.report import retrain_summary
from modelyard.store.audit import AuditLog
from modelyard.training.checkpoint import training_key
from modelyard.training.fit import Trained
from tasks.data import (
    Rejected,
    load_dataset,
    rejection,
    resolve_dataset,
    split_dataset,
    validate_dataset,
)
from tasks.deploy import reload_servers, roll_back_production, verify_deployment
from tasks.evaluate import (
    champion_split,
    evaluate_candidate,
    evaluate_production,
    fair_comparison,
    find_champion,
    gate,
)
from tasks.explain import explain_candidate
from tasks.promote import compare_and_promote, register_candidate, wait_for_approval
from tasks.registry import log_evaluation, log_validation, open_tracking_run
from tasks.train import train_candidate


@flow(name="retrain", log_prints=True)
def retrain(
    params_path: str = "params.yaml",
    data_path: str | None = None,
    overrides: dict[str, Any] | None = None,
    data_repo: str | None = None,
) -> dict[str, Any] | State:
    """Train a candidate on a dataset version and promote it only if it passes the gate.

    `data_path` is a file or a dataset version `NAME@VERSION` (default: `data.path`), read from
    `data_repo` (a path or git URL) when given. `overrides` replaces params by dotted key
    (`{"train.epochs": 1}`), validated like the file.
    """
    params = load_params(params_path)
    if overrides:
        params = params.updated(overrides)
    if params.promotion.mode == "manual" and not get_current_settings().api.url:
        return _reject(Rejected(
            "promotion.mode is manual, but this run uses Prefect's ephemeral API, which no "
            "reviewer can reach to approve: start a server (`prefect server start`) and set "
            "PREFECT_API_URL, or use promotion.mode auto"))
    settings = Settings()
    name, labels = params.model.name, list(params.data.labels)
    try:
        root: Path | None = project_root()
    except CatalogError:
        root = None

    data = _read(data_path or str(params.data.path), data_repo, root, settings.dataset_cache())
    if isinstance(data, Rejected):
        return _reject(data)
    source, raw = data
    test_source, test = None, None
    if params.data.test_path is not None:
        held_out = _read(str(params.data.test_path), data_repo, root, settings.dataset_cache())
        if isinstance(held_out, Rejected):
            return _reject(held_out)
        test_source, test = held_out
    dataset = source.version
    label = source.label + (f" with test file {test_source.label}" if test_source else "")
    docs_dir = settings.validation_dir() / f"{dataset.md5[:12]}-{params.digest()[:8]}"
    validation, docs = validate_dataset(raw, test, params, label, docs_dir)
    if not validation.success:
        return _reject(rejection(validation, label, docs))
    registry = MlflowRegistry(
        settings.resolved_tracking_uri(), settings.experiment, settings.artifact_root()
    )
    # The production model's split membership: texts it trained on stay out of this test split.
    parent_version = registry.alias_version(name, PRODUCTION)
    parent = champion_split(registry, name, parent_version)
    splits, split_lineage = split_dataset(raw, test, params.data, parent, parent_version)
    flow_run_id = str(flow_run.id or "local")
    # Same inputs → same directory: a retrain killed mid-training finds its checkpoints and its
    # MLflow run there and carries on, so the end result is one run and one model version.
    run_dir = settings.resolved_runs_dir() / training_key(dataset.md5, params.digest(), name)
    run_id, resumed = open_tracking_run(registry, params, dataset, splits, flow_run_id, run_dir)
    try:
        log_validation(registry, run_id, validation, docs)
        trained = train_candidate(splits, params, registry, run_id, run_dir / "model",
                                  run_dir / "checkpoints")
        audit = AuditLog.from_url(settings.resolved_database_url())
        champion = find_champion(registry, audit, name, run_id)
        comparison = fair_comparison(
            splits.test, parent if champion == parent_version else
            champion_split(registry, name, champion), champion, split_lineage)
        candidate = _evaluate(trained, comparison.test, labels)
        if params.explain.report:
            explain_candidate(trained.model_dir, comparison.test, params.explain, registry,
                              run_id)
        production = evaluate_production(registry, name, champion, comparison.test, labels)
        production_version, production_metrics = production or (None, None)
        decision = gate(candidate, production_metrics, params.gate, _compute(trained),
                        comparison.notes())
        baseline = majority_baseline(splits.train[LABEL].tolist(),
                                     comparison.test[LABEL].tolist())
        log_evaluation(registry, run_id, candidate, production_metrics, production_version,
                       decision, baseline)

        version, approval, rechecked_against, deploy_failure = None, None, None, None
        if decision.passed or params.promotion.register_rejected:
            lineage = lineage_tags(dataset, params.digest(), flow_run_id, run_id, validation,
                                   candidate, membership_md5(Membership.of(splits)))
            version = register_candidate(registry, name, run_id, trained.model_dir, splits,
                                         lineage, decision, params.privacy)
        if decision.passed and version is not None:
            actor = f"flow-run:{flow_run_id}"
            promote = partial(compare_and_promote, registry, audit, name, version, run_id,
                              candidate, test=splits.test, labels=labels, policy=params.gate,
                              lineage=split_lineage)
            manual = params.promotion.mode == "manual"
            promotion = promote(decision, production_version,
                                aliases=[STAGING] if manual else [STAGING, PRODUCTION],
                                actor=actor, reason=f"passed the gate: "
                                                    f"{'; '.join(decision.reasons)}")
            if manual and promotion.moved:
                approval = wait_for_approval(registry, name, version, flow_run_id,
                                             params.promotion.approval_timeout_s,
                                             promotion.decision)
                if approval.approved:
                    promotion = promote(promotion.decision, promotion.compared_with,
                                        aliases=[PRODUCTION],
                                        actor=f"user:{approval.reviewer} via {actor}",
                                        reason=f"approved: {approval.reason or 'no reason given'}")
            decision = promotion.decision
            if promotion.compared_with != production_version:
                rechecked_against = promotion.compared_with
            if PRODUCTION in promotion.moved and settings.servers_following(
                    name, params.deploy.servers):
                deploy_failure = _deploy(registry, audit, name, version, splits, labels, params,
                                         settings, actor)
        registry.end_run(run_id, "FINISHED")
    except BaseException:
        # The run directory stays: the next retrain with the same inputs resumes from it.
        registry.end_run(run_id, "FAILED")
        raise
    shutil.rmtree(run_dir, ignore_errors=True)

    summary = retrain_summary(
        name, dataset, splits.sizes(), candidate, baseline, production, decision, version, run_id,
        registry.tracking_uri, registry.alias_version(name, STAGING),
        registry.alias_version(name, PRODUCTION),
        approval=None if approval is None else asdict(approval),
        rechecked_against=rechecked_against,
        validation={"summary": validation.summary(), "docs": str(docs / "index.html")},
        training={"resumed_from_step": trained.result.resumed_from_step, "resumed_run": resumed,
                  "steps": trained.result.steps, "device": trained.result.device,
                  "precision": trained.result.precision, "dp_epsilon": trained.result.epsilon,
                  "compute": _compute(trained)},
    )
    get_run_logger().info("decision %s; %s@production is version %s", decision.verdict, name,
                          summary["production_version_after"])
    if deploy_failure is not None:
        return Failed(message=deploy_failure, data=summary)
    return summary


def _evaluate(trained: Trained, test: pd.DataFrame, labels: list[str]) -> Metrics:
    """The candidate on the comparison set, with the privacy budget it spent (for the gate)."""
    candidate = evaluate_candidate(trained.model_dir, test, labels)
    if trained.result.epsilon is None:
        return candidate
    return replace(candidate, costs={**candidate.costs, "dp_epsilon": trained.result.epsilon})


def _compute(trained: Any) -> dict[str, Any]:
    """This attempt's compute figures and the run's totals over every attempt, for the gate."""
    if trained.cost is None:
        return {}
    totals = trained.cost_total or {}
    return {**asdict(trained.cost), "attempts": totals.get("attempts", 1.0),
            **{f"total_{key}": value for key, value in totals.items() if key != "attempts"}}


def _deploy(registry: MlflowRegistry, audit: AuditLog, name: str, version: str, splits: Any,
            labels: list[str], params: Any, settings: Settings, actor: str) -> str | None:
    """Check the servers that follow production; on any failure put production back. The
    failure's message, or None when every server serves `version`."""
    servers = settings.servers_following(name, params.deploy.servers)
    texts = splits.test[TEXT].head(params.deploy.smoke_requests).tolist()
    checks = verify_deployment(servers, version, texts, labels,
                               params.deploy.timeout_s, settings.admin_token)
    failed = [check for check in checks if not check.ok]
    if not failed:
        return None
    why = "; ".join(f"{check.server}: {check.detail}" for check in failed)
    back = roll_back_production(registry, audit, name, version, actor,
                                f"deploy check failed: {why}")
    if back is not None:
        reload_servers(servers, settings.admin_token)
    registry.set_version_tags(name, version, {DEPLOY_TAG: DEPLOY_FAILED,
                                                DEPLOY_ERROR_TAG: why[:4000]})
    where = (f"production rolled back to version {back}" if back is not None else
             "production left at it: there is no earlier version to go back to")
    return f"deployment of {name} version {version} failed ({why}); {where}"


def _read(spec: str, repo: str | None, root: Path | None,
          cache: Path) -> tuple[Source, pd.DataFrame] | Rejected:
    """Resolve a file or dataset version and read it; the first refusal, if any."""
    source = resolve_dataset(spec, repo, root, cache)
    if isinstance(source, Rejected):
        return source
    frame = load_dataset(source)
    return frame if isinstance(frame, Rejected) else (source, frame)


def _reject(reason: Rejected) -> State:
    """End the run Failed with the reason as its message: no traceback, nothing tracked."""
    get_run_logger().error("refused, nothing trained or registered:\n%s", reason.message)
    return Failed(message=f"{reason.message}\nNothing was trained, registered or promoted.")



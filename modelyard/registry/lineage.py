"""The lineage contract: the tags every registered model version carries (DESIGN.md)."""

from __future__ import annotations

from modelyard import tags as tag
from modelyard.data.identity import DatasetVersion
from modelyard.data.validation import ValidationReport
from modelyard.evaluation.gate import GateDecision
from modelyard.evaluation.metrics import Metrics


def lineage_tags(
    dataset: DatasetVersion,
    params_hash: str,
    flow_run_id: str,
    mlflow_run_id: str,
    validation: ValidationReport,
    candidate: Metrics,
    split_md5: str,
) -> dict[str, str]:
    """Enough to answer "what made this model?" from the registry alone. The gate decision is
    added where the version is registered, next to the `rejected` tag it may imply."""
    return {
        tag.DATASET_MD5: dataset.md5,
        tag.DATASET_PATH: dataset.path,
        tag.GIT_COMMIT: dataset.git_commit,
        tag.PARAMS_HASH: params_hash,
        tag.PREFECT_FLOW_RUN_ID: flow_run_id,
        tag.MLFLOW_RUN_ID: mlflow_run_id,
        tag.VALIDATION: "passed" if validation.success else "failed",
        tag.TEST_ACCURACY: f"{candidate.accuracy:.4f}",
        tag.TEST_MACRO_F1: f"{candidate.macro_f1:.4f}",
        tag.TEST_ROWS: str(candidate.support),
        tag.SPLIT_MD5: split_md5,
    }


def decision_tags(decision: GateDecision, run_id: str) -> dict[str, str]:
    """The gate's decision on the model version itself: verdict, every check, the full report;
    `rejected=true` when it failed (such a version never takes an alias)."""
    tags = {
        tag.GATE_DECISION: decision.verdict,
        tag.GATE_REPORT: decision.to_text(),
        tag.GATE_REPORT_URI: f"runs:/{run_id}/gate/decision.md",
    }
    if not decision.passed:
        tags[tag.REJECTED] = tag.TRUE
    return tags


def model_description(name: str) -> str:
    """The registered model's description (markdown) on MLflow's model page."""
    return (
        f"**{name}**, trained and judged by ModelYard's retrain flow. The aliases are the "
        f"stages: `@{tag.STAGING}` passed the gate, `@{tag.PRODUCTION}` serves (every move is "
        "in the audit trail: `modelyard models history`). Each version's description is its "
        "gate report; its tags carry the lineage (dataset md5, git commit, params hash, the "
        "MLflow and Prefect runs)."
    )


def version_description(
    decision: GateDecision,
    lineage: dict[str, str],
    experiment_id: str | None = None,
    flow_run_url: str | None = None,
) -> str:
    """A version's description (markdown): its gate report, then where it came from, with links
    to its MLflow run and Data Docs (relative: they open in the same MLflow UI, whatever its
    address) and to its Prefect flow run (`flow_run_url`; its id alone without a Prefect UI)."""
    run_id = lineage.get(tag.MLFLOW_RUN_ID, "?")
    flow_run_id = lineage.get(tag.PREFECT_FLOW_RUN_ID, "?")
    prefect = f"[{flow_run_id}]({flow_run_url})" if flow_run_url else f"`{flow_run_id}`"
    where = [
        f"- dataset: `{lineage.get(tag.DATASET_PATH, '?')}` "
        f"(md5 `{lineage.get(tag.DATASET_MD5, '?')}`)",
        f"- Prefect flow run: {prefect}",
        f"- git commit `{lineage.get(tag.GIT_COMMIT, '?')}`, params hash "
        f"`{lineage.get(tag.PARAMS_HASH, '?')}`",
    ]
    if experiment_id is None:
        where.insert(1, f"- MLflow run: `{run_id}`")
    else:
        run = f"#/experiments/{experiment_id}/runs/{run_id}"
        where.insert(1, f"- MLflow run: [{run_id}]({run})")
        docs = f"[{tag.DATA_DOCS_INDEX}]({run}/artifacts/{tag.DATA_DOCS_INDEX})"
        where.insert(2, f"- Data Docs: {docs}")
    return "\n".join([decision.to_markdown(), "", "**Lineage**", "", *where])

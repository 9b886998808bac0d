"""The lineage contract: the tags every registered model version carries (DESIGN.md)."""

from __future__ import annotations

from modelyard.data.identity import DatasetVersion
from modelyard.data.validation import ValidationReport
from modelyard.evaluation.metrics import Metrics

# The md5 of the version's split membership (which split every training text went to).
SPLIT_MD5 = "split_md5"


def lineage_tags(
    dataset: DatasetVersion, params_hash: str, flow_run_id: str, mlflow_run_id: str,
    validation: ValidationReport, candidate: Metrics, split_md5: str,
) -> dict[str, str]:
    """Enough to answer "what made this model?" from the registry alone. The gate decision is
    added where the version is registered, next to the `rejected` tag it may imply."""
    return {
        "dataset_md5": dataset.md5,
        "dataset_path": dataset.path,
        "git_commit": dataset.git_commit,
        "params_hash": params_hash,
        "prefect_flow_run_id": flow_run_id,
        "mlflow_run_id": mlflow_run_id,
        "validation": "passed" if validation.success else "failed",
        "test_accuracy": f"{candidate.accuracy:.4f}",
        "test_macro_f1": f"{candidate.macro_f1:.4f}",
        # How much the test accuracy can be trusted: the monitor weighs live accuracy against it.
        "test_rows": str(candidate.support),
        SPLIT_MD5: split_md5,
    }

"""The export and parity check of a candidate that passed the gate, as Prefect tasks: each one
call into `modelyard`, plus its log lines and artifact."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from modelyard.config import RuntimeParams
from modelyard.data.dataset import LABEL, TEXT
from modelyard.evaluation import parity
from modelyard.evaluation.gate import GateDecision
from modelyard.evaluation.parity import RuntimeReport
from modelyard.orchestration.runs import artifact_key
from modelyard.registry import tracking
from modelyard.registry.mlflow_registry import MlflowRegistry


@task(name="export-and-check-runtimes", cache_policy=NO_CACHE)
def check_runtimes(
    model_dir: Path, test: pd.DataFrame, labels: list[str], policy: RuntimeParams, model: str
) -> RuntimeReport:
    """Export the candidate to ONNX (fp32, int8) next to its weights and check each variant
    against the PyTorch model on the test split: agreement, accuracy and macro-F1 deltas,
    texts/s on this machine, size. The fastest that passes is chosen; one that fails is deleted
    (the model never carries it) and its reason reported."""
    report = parity.check_runtimes(
        model_dir, test[TEXT].tolist(), test[LABEL].tolist(), labels, policy, parity.devices_here()
    )
    logger = get_run_logger()
    for line in report.lines():
        logger.info("runtime %s", line)
    create_markdown_artifact(
        key=artifact_key("runtime-parity", model),
        markdown="\n".join(["**Runtimes**", "", *[f"- {line}" for line in report.lines()]]),
        description="Exported runtimes against the PyTorch model on the test split",
    )
    return report


@task(name="log-runtimes", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def log_runtimes(
    registry: MlflowRegistry, run_id: str, report: RuntimeReport, decision: GateDecision
) -> None:
    """The parity figures under `runtime/`, the report, and the gate report with it."""
    tracking.log_runtimes(registry, run_id, report, decision)

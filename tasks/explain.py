from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from modelyard.config import ExplainParams
from modelyard.data.dataset import LABEL, TEXT
from modelyard.explain import ExplanationReport, report_on, report_title
from modelyard.inference import TextClassifier
from modelyard.orchestration.runs import artifact_key
from modelyard.registry.mlflow_registry import MlflowRegistry


@task(name="explain-candidate", cache_policy=NO_CACHE)
def explain_candidate(
    model_dir: Path,
    test: pd.DataFrame,
    params: ExplainParams,
    registry: MlflowRegistry,
    run_id: str,
    model: str = "model",
) -> ExplanationReport:
    """The candidate's explanation report on its test split: under `explanations/` in its
    MLflow run (HTML + JSON) and as the `explanations-<model>` Prefect artifact."""
    report = report_on(
        TextClassifier.load(model_dir), test[TEXT].tolist(), test[LABEL].tolist(), params
    )
    title = report_title(model, run_id)
    registry.log_text(run_id, report.to_html(title), "explanations/report.html")
    registry.log_dict(run_id, report.to_dict(), "explanations/report.json")
    create_markdown_artifact(
        key=artifact_key("explanations", model),
        markdown=f"### {title}\n\n{report.to_markdown()}",
        description="Integrated-gradients explanations of the candidate",
    )
    get_run_logger().info("explanations: %s", report.headline())
    return report

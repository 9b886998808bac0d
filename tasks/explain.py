from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from modelyard.config import ExplainParams
from modelyard.data.dataset import LABEL, TEXT
from modelyard.explain import Explainer, ExplanationReport, explanation_report
from modelyard.registry.mlflow_registry import MlflowRegistry
from modelyard.inference import TextClassifier


@task(name="explain-candidate", cache_policy=NO_CACHE)
def explain_candidate(model_dir: Path, test: pd.DataFrame, params: ExplainParams,
                      registry: MlflowRegistry, run_id: str) -> ExplanationReport:
    """The candidate's explanation report on its test split: under `explanations/` in its
    MLflow run (HTML + JSON) and as the `explanations` Prefect artifact."""
    explainer = Explainer(TextClassifier.load(model_dir), params.report_n_steps)
    report = explanation_report(explainer, test[TEXT].tolist(), test[LABEL].tolist(),
                                params.report_texts_per_class, params.report_top_tokens,
                                params.report_worst)
    registry.log_text(run_id, report.to_html(), "explanations/report.html")
    registry.log_dict(run_id, report.to_dict(), "explanations/report.json")
    create_markdown_artifact(key="explanations", markdown=report.to_markdown(),
                             description="Integrated-gradients explanations of the candidate")
    get_run_logger().info("explanations: %s", "; ".join(
        f"{d.label}: {', '.join(w for w, _, _ in d.tokens[:3])}" for d in report.drivers))
    return report

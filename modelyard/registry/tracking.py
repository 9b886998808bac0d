"""What a retrain records in its MLflow run: the run itself (params, datasets, split membership),
the validation, the evaluation and the model. The retrain's tasks call these, one each."""

from __future__ import annotations

import platform
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from modelyard import tags as tag
from modelyard.config import Params, PrivacyParams
from modelyard.data.dataset import TEXT, Splits
from modelyard.data.identity import DatasetVersion
from modelyard.data.membership import Membership
from modelyard.data.validation import ValidationReport
from modelyard.evaluation.baselines import Baselines
from modelyard.evaluation.gate import GateDecision
from modelyard.evaluation.metrics import Metrics, confusion_figure
from modelyard.inference import TextClassifier
from modelyard.registry.mlflow_registry import MlflowRegistry
from modelyard.registry.pyfunc import predictions_frame
from modelyard.registry.splits import log_membership


class Log(Protocol):
    """Where progress lines go: a `logging.Logger`, or a Prefect run logger."""

    def info(self, msg: str, *args: object) -> None: ...


def flat(tree: Mapping[str, object], prefix: str = "") -> dict[str, object]:
    """A nested mapping as dotted keys (`train.learning_rate`), as MLflow params are."""
    out: dict[str, object] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def start_run(
    registry: MlflowRegistry,
    params: Params,
    dataset: DatasetVersion,
    splits: Splits,
    flow_run_id: str,
) -> str:
    """One MLflow run per retrain: params, the dataset (digest = DVC md5) and where it came from,
    and which split each text went to."""
    import torch
    import transformers

    run_id = registry.start_run(
        run_name=f"retrain-{dataset.short}",
        tags={
            tag.RUN_DATASET_MD5: dataset.md5,
            tag.RUN_GIT_COMMIT: dataset.git_commit,
            tag.RUN_PARAMS_HASH: params.digest(),
            tag.RUN_FLOW_RUN_ID: flow_run_id,
            "mlflow.source.git.commit": dataset.git_commit.removesuffix("-dirty"),
        },
    )
    registry.log_params(
        run_id,
        {
            **flat(params.model_dump(mode="json")),
            "dataset.md5": dataset.md5,
            "dataset.path": dataset.path,
            **{f"split.{name}": size for name, size in splits.sizes().items()},
            "env.python": platform.python_version(),
            "env.torch": torch.__version__,
            "env.transformers": transformers.__version__,
        },
    )
    for context, frame in (
        ("train", splits.train),
        ("validation", splits.val),
        ("test", splits.test),
    ):
        registry.log_dataset(run_id, dataset, frame, context, name=f"{Path(dataset.path).stem}")
    # The next retrain inherits this split if this model reaches production, and the gate keeps
    # this model's training texts out of any later comparison.
    log_membership(registry, run_id, Membership.of(splits))
    return run_id


@dataclass(frozen=True)
class OpenedRun:
    run_id: str
    resumed: bool


def open_run(
    registry: MlflowRegistry,
    params: Params,
    dataset: DatasetVersion,
    splits: Splits,
    flow_run_id: str,
    run_dir: Path,
) -> OpenedRun:
    """The unfinished run a killed retrain with the same inputs left in `run_dir` (resumed, so
    one run and one model in the end), or a new one, remembered there."""
    marker = run_dir / "mlflow_run_id"
    if marker.is_file():
        previous = marker.read_text().strip()
        if registry.reopen_run(previous):
            registry.set_run_tags(previous, {tag.RUN_RESUMED_BY: flow_run_id})
            return OpenedRun(previous, resumed=True)
    run_id = start_run(registry, params, dataset, splits, flow_run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    partial = marker.with_name(marker.name + ".partial")
    partial.write_text(run_id)
    partial.replace(marker)
    return OpenedRun(run_id, resumed=False)


def log_validation(
    registry: MlflowRegistry, run_id: str, report: ValidationReport, docs: Path
) -> None:
    """Data Docs (HTML + JSON) under `validation/`, the dataset figures as metrics."""
    registry.log_artifacts(run_id, docs, "validation")
    registry.log_metrics(
        run_id, {f"data_{k}": float(v) for k, v in report.statistics.items() if v != float("inf")}
    )
    registry.set_run_tags(run_id, {tag.RUN_VALIDATION: "passed" if report.success else "failed"})


def log_evaluation(
    registry: MlflowRegistry,
    run_id: str,
    candidate: Metrics,
    production: Metrics | None,
    production_version: str | None,
    decision: GateDecision,
    baselines: Baselines,
) -> None:
    """Both models' test metrics, the baselines', the confusion matrix and the gate's
    decision. Metric names: `test_<metric>` (the candidate), `production_test_<metric>`,
    `baseline_<majority|bag_of_words>_test_<metric>`."""
    registry.log_metrics(run_id, {f"test_{k}": v for k, v in candidate.headline().items()})
    registry.log_metrics(run_id, candidate.costs)
    registry.log_metrics(run_id, {"test_majority_baseline_accuracy": baselines.majority.accuracy})
    for name, figures in baselines.headlines().items():
        registry.log_metrics(run_id, {f"baseline_{name}_test_{k}": v for k, v in figures.items()})
    registry.log_dict(run_id, candidate.to_dict(), "evaluation/candidate.json")
    registry.log_dict(
        run_id,
        {
            "majority": baselines.majority.to_dict(),
            "bag_of_words": baselines.bag_of_words.to_dict(),
        },
        "evaluation/baselines.json",
    )
    registry.log_figure(
        run_id,
        confusion_figure(candidate, "candidate (test split)"),
        "evaluation/confusion_matrix.png",
    )
    if production is not None:
        registry.log_metrics(
            run_id, {f"production_test_{k}": v for k, v in production.headline().items()}
        )
        registry.log_dict(
            run_id,
            {"version": production_version, **production.to_dict()},
            "evaluation/production.json",
        )
    registry.log_dict(run_id, decision.to_dict(), "gate/decision.json")
    registry.log_text(run_id, decision.to_markdown(), "gate/decision.md")
    registry.set_run_tags(run_id, {tag.RUN_GATE: decision.verdict})


def log_model(
    registry: MlflowRegistry,
    run_id: str,
    model_dir: Path,
    splits: Splits,
    privacy: PrivacyParams | None = None,
) -> str:
    """The pyfunc model with a signature and an input example drawn from the test split, as
    much of it as `privacy.mode` allows to be stored. The model reads its texts from the
    column the run's `data.text_column` param names (as well as `text`), and the example
    shows that column."""
    import pandas as pd

    from modelyard.privacy import protect_all

    privacy = privacy or PrivacyParams()
    texts = protect_all(splits.test[TEXT].head(3).tolist(), privacy.mode, privacy.redactor())
    column = registry.run_params(run_id).get("data.text_column", TEXT)
    outputs = predictions_frame(TextClassifier.load(model_dir), texts)
    return registry.log_model(run_id, model_dir, pd.DataFrame({column: texts}), outputs, column)

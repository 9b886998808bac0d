"""What a retrain records in its MLflow run: the run itself (params, datasets, split membership),
the validation, the evaluation and the model. The retrain's tasks call these, one each."""

from __future__ import annotations

import getpass
import hashlib
import platform
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

from modelyard import tags as tag
from modelyard.config import Params, PrivacyParams
from modelyard.data.dataset import LABEL, TEXT, Splits
from modelyard.data.identity import DatasetVersion
from modelyard.data.membership import Membership
from modelyard.data.validation import ValidationReport
from modelyard.evaluation.baselines import Baselines
from modelyard.evaluation.gate import GateDecision
from modelyard.evaluation.metrics import Metrics, confusion_figure
from modelyard.evaluation.parity import RuntimeReport
from modelyard.inference import TextClassifier
from modelyard.registry.mlflow_registry import InputDataset, MlflowRegistry
from modelyard.registry.pyfunc import predictions_frame
from modelyard.registry.splits import log_membership

if TYPE_CHECKING:
    import pandas as pd


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


@dataclass(frozen=True)
class DataOrigin:
    """What names a dataset version in MLflow: its version, how people refer to it (`NAME@V`,
    or the file's path) and a URI where its bytes resolve (the DVC remote's copy, or the file)."""

    version: DatasetVersion
    ref: str
    uri: str

    @classmethod
    def of_file(cls, version: DatasetVersion) -> DataOrigin:
        path = Path(version.path).resolve()
        return cls(version, f"{path.stem}@{version.short}", str(path))


def rows_md5(frame: pd.DataFrame) -> str:
    """The digest of a split's rows (label, text, in order): two splits of one file differ, the
    same rows under another file name do not."""
    digest = hashlib.md5()
    for label, text in zip(frame[LABEL].astype(str), frame[TEXT].astype(str), strict=True):
        digest.update(f"{label}\t{text}\n".encode())
    return digest.hexdigest()


def split_inputs(origin: DataOrigin, splits: Splits) -> list[InputDataset]:
    """One dataset input per split: `NAME@V/train`, the digest of its rows, its row count, the
    URI of the whole file (whose DVC md5 is an input tag)."""
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    schema = [{"type": "string", "name": TEXT, "required": True}]
    schema += [{"type": "string", "name": LABEL, "required": True}]
    contexts = (
        (tag.INPUT_CONTEXT_TRAIN, splits.train),
        (tag.INPUT_CONTEXT_VAL, splits.val),
        (tag.INPUT_CONTEXT_TEST, splits.test),
    )
    return [
        InputDataset(
            name=f"{origin.ref}/{context}",
            digest=rows_md5(frame),
            source_uri=origin.uri,
            rows=len(frame),
            elements=len(frame) * 2,
            schema=cast(list[dict[str, str]], schema),
            tags={
                MLFLOW_DATASET_CONTEXT: context,
                tag.INPUT_FILE_MD5: origin.version.md5,
                tag.INPUT_ROWS: str(len(frame)),
            },
        )
        for context, frame in contexts
    ]


def code_commit(fallback: str) -> str:
    """The git commit of the code running the retrain (this checkout of ModelYard), else
    `fallback` (the dataset's: an installed package is in no repository)."""
    import modelyard
    from modelyard.data.identity import git_commit

    found = git_commit(Path(modelyard.__file__).resolve().parent)
    return fallback if found == "unknown" else found


def source_tags(git_commit_value: str) -> dict[str, str]:
    """MLflow's standard provenance tags: who ran it, what code (the flow's file, its git
    commit and whether the tree had uncommitted changes)."""
    from mlflow.entities import SourceType
    from mlflow.utils import mlflow_tags as mt

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container's)
        user = "unknown"
    tags = {
        mt.MLFLOW_USER: user,
        mt.MLFLOW_SOURCE_TYPE: SourceType.to_string(SourceType.JOB),
        mt.MLFLOW_SOURCE_NAME: "flows/retrain.py:retrain",
    }
    if git_commit_value != "unknown":
        tags[mt.MLFLOW_GIT_COMMIT] = git_commit_value.removesuffix("-dirty")
        tags[mt.MLFLOW_GIT_DIRTY] = str(git_commit_value.endswith("-dirty")).lower()
    return tags


EXPERIMENT_DESCRIPTION = (
    "ModelYard's retrains: one run per retrain (params, one dataset input per split, training "
    "curves under `train/` and `val/`, test figures under `test/` and `slice/`, the gate's "
    "report under `gate/`, the Data Docs under `validation/`). Each run's description says what "
    "the gate decided and links its Prefect flow run; the registered models' versions carry "
    "the lineage."
)


def start_run(
    registry: MlflowRegistry,
    params: Params,
    origin: DataOrigin,
    splits: Splits,
    flow_run_id: str,
    flow_run_url: str | None = None,
) -> str:
    """One MLflow run per retrain: params, one dataset input per split (digest = the split's
    rows; the file's DVC md5 a tag), provenance, and which split each text went to."""
    import torch
    import transformers
    from mlflow.utils.mlflow_tags import MLFLOW_RUN_NOTE

    dataset = origin.version
    registry.describe_experiment(EXPERIMENT_DESCRIPTION)
    run_id = registry.start_run(
        run_name=f"retrain-{dataset.short}",
        tags={
            tag.RUN_DATASET_MD5: dataset.md5,
            tag.RUN_GIT_COMMIT: dataset.git_commit,
            tag.RUN_PARAMS_HASH: params.digest(),
            tag.RUN_FLOW_RUN_ID: flow_run_id,
            tag.RUN_DATASET_VERSION: origin.ref,
            **({tag.RUN_PREFECT_URL: flow_run_url} if flow_run_url else {}),
            **source_tags(code_commit(dataset.git_commit)),
            MLFLOW_RUN_NOTE: run_description(
                RunStory(params.model.name, origin.ref, dataset.md5, flow_run_id, flow_run_url)
            ),
        },
    )
    registry.log_params(
        run_id,
        {
            **flat(params.model_dump(mode="json")),
            "dataset.md5": dataset.md5,
            "dataset.path": dataset.path,
            "dataset.version": origin.ref,
            **{f"split.{name}": size for name, size in splits.sizes().items()},
            "env.python": platform.python_version(),
            "env.torch": torch.__version__,
            "env.transformers": transformers.__version__,
            "env.platform": platform.platform(),
        },
    )
    # The params exactly as resolved (MLflow's params are flattened strings): what `modelyard
    # models reproduce` trains with again, checked against the version's params hash.
    registry.log_dict(run_id, params.model_dump(mode="json"), tag.PARAMS_FILE)
    for entry in split_inputs(origin, splits):
        registry.log_dataset(run_id, entry)
    # The next retrain inherits this split if this model reaches production, and the gate keeps
    # this model's training texts out of any later comparison.
    log_membership(registry, run_id, Membership.of(splits))
    return run_id


@dataclass(frozen=True)
class RunStory:
    """What a run's description says: the model, data, links, and (once known) the outcome."""

    model: str
    dataset: str  # NAME@V
    md5: str
    flow_run_id: str
    flow_run_url: str | None = None
    experiment_id: str | None = None
    run_id: str | None = None
    decision: GateDecision | None = None
    version: str | None = None
    production: str | None = None  # the production version after the run

    @property
    def decision_verdict(self) -> str:
        return "undecided" if self.decision is None else self.decision.verdict


def run_description(story: RunStory) -> str:
    """The run's description (markdown, MLflow's run page shows it at the top)."""
    if story.decision is None:
        outcome = "**In progress**: training; the gate has not decided yet."
    else:
        outcome = f"**Gate: {story.decision.verdict.upper()}**"
        if story.version is not None:
            outcome += f" · registered as `{story.model}` version {story.version}"
        if story.production is not None:
            outcome += f" · `{story.model}@production` is version {story.production}"
        reasons = [f"- {reason}" for reason in story.decision.reasons]
        outcome = "\n".join([outcome, "", *reasons]) if reasons else outcome
    prefect = (
        f"[{story.flow_run_id}]({story.flow_run_url})"
        if story.flow_run_url
        else f"`{story.flow_run_id}`"
    )
    lines = [
        f"Retrain of **{story.model}** on **{story.dataset}** (DVC md5 `{story.md5}`).",
        "",
        outcome,
        "",
        f"- Prefect flow run: {prefect}",
    ]
    if story.experiment_id and story.run_id:
        base = f"#/experiments/{story.experiment_id}/runs/{story.run_id}/artifacts"
        lines += [
            f"- Data Docs: [{tag.DATA_DOCS_INDEX}]({base}/{tag.DATA_DOCS_INDEX})",
            f"- Gate report: [gate/decision.md]({base}/gate/decision.md)",
        ]
    return "\n".join(lines)


def describe_run(registry: MlflowRegistry, run_id: str, story: RunStory) -> None:
    """Write the run's description, with its links, now that `story` is known."""
    from mlflow.utils.mlflow_tags import MLFLOW_RUN_NOTE

    story = replace(story, experiment_id=registry.experiment_id, run_id=run_id)
    registry.set_run_tags(run_id, {MLFLOW_RUN_NOTE: run_description(story)})


@dataclass(frozen=True)
class OpenedRun:
    run_id: str
    resumed: bool


def open_run(
    registry: MlflowRegistry,
    params: Params,
    origin: DataOrigin,
    splits: Splits,
    flow_run_id: str,
    run_dir: Path,
    flow_run_url: str | None = None,
) -> OpenedRun:
    """The unfinished run a killed retrain with the same inputs left in `run_dir` (resumed, so
    one run and one model in the end), or a new one, remembered there."""
    marker = run_dir / "mlflow_run_id"
    if marker.is_file():
        previous = marker.read_text().strip()
        if registry.reopen_run(previous):
            registry.set_run_tags(previous, {tag.RUN_RESUMED_BY: flow_run_id})
            return OpenedRun(previous, resumed=True)
    run_id = start_run(registry, params, origin, splits, flow_run_id, flow_run_url)
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
        run_id,
        {f"{tag.DATA}{k}": float(v) for k, v in report.statistics.items() if v != float("inf")},
    )
    registry.set_run_tags(
        run_id,
        {
            tag.RUN_VALIDATION: "passed" if report.success else "failed",
            tag.RUN_DATA_DOCS: tag.DATA_DOCS_INDEX,
        },
    )


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
    decision. Metric names: `test/<metric>` and `slice/<slice>` (the candidate),
    `test/production/<metric>`, `test/baseline/<majority|bag_of_words>/<metric>`, the
    candidate's latency and size under `compute/`."""
    registry.log_metrics(run_id, tag.scored_metrics(candidate.headline()))
    registry.log_metrics(run_id, {f"{tag.COMPUTE}{k}": v for k, v in candidate.costs.items()})
    for name, figures in baselines.headlines().items():
        registry.log_metrics(run_id, tag.scored_metrics(figures, f"{tag.BASELINE_PREFIX}{name}/"))
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
            run_id, tag.scored_metrics(production.headline(), tag.PRODUCTION_PREFIX)
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


def log_runtimes(
    registry: MlflowRegistry, run_id: str, report: RuntimeReport, decision: GateDecision
) -> None:
    """The parity check of the exported runtimes: each variant's figures as
    `runtime/<device>/<variant>/<figure>`, the whole report as `runtime/parity.json`, and the
    gate report again, now with its runtime section."""
    for verdict in report.verdicts:
        registry.log_metrics(
            run_id, tag.runtime_metrics(verdict.device, verdict.runtime, verdict.figures())
        )
    registry.log_dict(run_id, report.to_dict(), tag.RUNTIME_REPORT_FILE)
    registry.log_dict(run_id, decision.to_dict(), "gate/decision.json")
    registry.log_text(run_id, decision.to_markdown(), "gate/decision.md")

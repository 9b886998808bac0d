"""Model cards from the stores: what a version's card says is read here from the registry (its
tags), its MLflow run (params, metrics, dataset inputs, the gate report, calibration,
explanations, the runtime parity report, compute) and the audit trail (its alias moves), and
the rendered card (`modelyard.card`) is logged to the run under `card/`.

Also the two facts a card needs that a retrain did not record before cards: the calibration of
the candidate's confidence and the class mix of each split, logged to the run as they are made.
A version older than any of these gets "not recorded" for it.
"""

from __future__ import annotations

import ast
import json
import logging
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from modelyard import card as mc
from modelyard import tags as tag
from modelyard.config import CardParams
from modelyard.evaluation.calibration import Calibration, reliability_svg
from modelyard.evaluation.gate import GateCheck, GateDecision
from modelyard.evaluation.metrics import PER_CLASS

if TYPE_CHECKING:
    from modelyard.data.dataset import Splits
    from modelyard.registry.mlflow_registry import MlflowRegistry
    from modelyard.store.audit import AuditLog

log = logging.getLogger("modelyard.cards")
T = TypeVar("T")

# The training params a card lists (the rest are in the run).
KEY_PARAMS = (
    "model.max_length",
    "train.epochs",
    "train.max_steps",
    "train.batch_size",
    "train.learning_rate",
    "train.weight_decay",
    "train.warmup_ratio",
    "train.class_weights",
    "train.precision",
    "train.seed",
    "train.nproc",
    "train.nnodes",
)
HEADLINE = ("accuracy", "macro_f1", "roc_auc", "pr_auc")
WORDS_PER_CLASS = 8
WORDS_PER_MISTAKE = 4


class CardError(LookupError):
    """No card can be made: the model or the version does not exist."""


# --- what a retrain records for its card -----------------------------------------------------


def log_calibration(registry: MlflowRegistry, run_id: str, result: Calibration) -> None:
    """ECE and friends as `calibration/<figure>` metrics, the bins as JSON and the reliability
    diagram as SVG, in the candidate's run."""
    registry.log_metrics(run_id, {tag.CALIBRATION + k: v for k, v in result.metrics().items()})
    registry.log_dict(run_id, result.to_dict(), tag.CALIBRATION_FILE)
    registry.log_text(run_id, reliability_svg(result), tag.CALIBRATION_DIAGRAM)


def class_mix(splits: Splits, labels: Sequence[str]) -> dict[str, dict[str, int]]:
    """Rows of each class (in `labels`' order, absent classes as 0) in each split."""
    from modelyard.data.dataset import LABEL

    parts = {
        tag.INPUT_CONTEXT_TRAIN: splits.train,
        tag.INPUT_CONTEXT_VAL: splits.val,
        tag.INPUT_CONTEXT_TEST: splits.test,
    }
    out = {}
    for name, frame in parts.items():
        counts = frame[LABEL].astype(str).value_counts()
        out[name] = {str(label): int(counts.get(str(label), 0)) for label in labels}
    return out


def log_class_mix(
    registry: MlflowRegistry, run_id: str, splits: Splits, labels: Sequence[str]
) -> None:
    registry.log_dict(run_id, class_mix(splits, labels), tag.CLASS_MIX_FILE)


# --- reading a version's facts ---------------------------------------------------------------


@dataclass(frozen=True)
class _Run:
    """What a version's MLflow run recorded (empty when the run is gone)."""

    run_id: str | None
    experiment_id: str | None
    params: Mapping[str, str]
    metrics: Mapping[str, float]
    tags: Mapping[str, str]
    inputs: tuple[mc.DatasetInput, ...]
    artifacts: Mapping[str, Any]  # artifact path → its JSON, for the JSON files a card reads


_READ = (
    tag.GATE_DECISION_FILE,
    tag.CANDIDATE_FILE,
    tag.PRODUCTION_FILE,
    tag.CALIBRATION_FILE,
    tag.CLASS_MIX_FILE,
    tag.EXPLANATIONS_FILE,
    tag.RUNTIME_REPORT_FILE,
)


def _read_run(registry: MlflowRegistry, run_id: str | None) -> _Run:
    from mlflow.exceptions import MlflowException

    if run_id is None:
        return _Run(None, None, {}, {}, {}, (), {})
    try:
        run = registry.client.get_run(run_id)
    except MlflowException:
        return _Run(run_id, None, {}, {}, {}, (), {})
    inputs = tuple(_input(entry) for entry in (run.inputs.dataset_inputs if run.inputs else []))
    return _Run(
        run_id,
        str(run.info.experiment_id),
        dict(run.data.params),
        dict(run.data.metrics),
        dict(run.data.tags),
        inputs,
        _artifacts(run.info.artifact_uri, registry.tracking_uri),
    )


def _input(entry: Any) -> mc.DatasetInput:
    input_tags = {t.key: t.value for t in entry.tags}
    try:
        rows: int | None = int(json.loads(entry.dataset.profile or "{}")["num_rows"])
    except (ValueError, KeyError, TypeError):
        rows = None
    return mc.DatasetInput(
        entry.dataset.name, entry.dataset.digest, rows, input_tags.get(tag.INPUT_FILE_MD5)
    )


def _artifacts(artifact_uri: str, tracking_uri: str) -> dict[str, Any]:
    """The JSON artifacts a card reads, those the run has: listed folder by folder, so a file
    an older run lacks costs no failed download; through the run's artifact repository, which
    MLflow's client would look up again (a query of the run) on every call."""
    from mlflow.exceptions import MlflowException
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    # A server's proxied `mlflow-artifacts:` location resolves through the tracking URI.
    repository = get_artifact_repository(artifact_uri, tracking_uri=tracking_uri)
    found: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for folder in sorted({path.rsplit("/", 1)[0] for path in _READ}):
            try:
                present = {entry.path for entry in repository.list_artifacts(folder)}
            except (MlflowException, OSError):
                continue
            for path in (p for p in _READ if p in present):
                try:
                    local = Path(repository.download_artifacts(path, scratch))
                    found[path] = json.loads(local.read_text(encoding="utf-8"))
                except (MlflowException, OSError, ValueError) as error:
                    log.warning("%s unreadable (%s): left out of the card", path, error)
    return found


def gather(
    registry: MlflowRegistry,
    audit: AuditLog | None,
    name: str,
    version: str,
    mlflow_ui: str | None = None,
) -> mc.CardFacts:
    """Every fact of `name` version `version`'s card, from the registry, its run and (when
    given) the audit trail. Raises CardError for an unknown model or version."""
    found = _version(registry, name, version)
    run = _read_run(registry, found.run_id)
    run_link = (
        f"{mlflow_ui}/#/experiments/{run.experiment_id}/runs/{run.run_id}"
        if mlflow_ui and run.experiment_id
        else None
    )
    return mc.CardFacts(
        model=name,
        version=str(found.version),
        generated_at=datetime.now(UTC),
        source=f"the registry, MLflow run `{run.run_id or NOT_RUN}`"
        + (" and the audit trail" if audit is not None else ""),
        aliases=tuple(sorted(found.aliases)),
        registered_at=datetime.fromtimestamp(found.creation_timestamp / 1000, UTC)
        if found.creation_timestamp
        else None,
        run_id=run.run_id,
        run_link=run_link,
        flow_run=_flow_run(run.tags, found.tags),
        card=_card_params(run.params),
        labels=_labels(run),
        positive_label=run.artifacts.get(tag.CANDIDATE_FILE, {}).get("positive_label"),
        status=_status(found.tags),
        data=_data(run, found.tags, run_link),
        training=_training(run, found.tags),
        evaluation=_evaluation(run, found.tags),
        explanations=_parsed(_explanations, run.artifacts, tag.EXPLANATIONS_FILE),
        runtime=_parsed(_runtime, run.artifacts, tag.RUNTIME_REPORT_FILE),
        history=None if audit is None else _history(audit, name, str(found.version)),
    )


NOT_RUN = "none"


def _version(registry: MlflowRegistry, name: str, version: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return registry.client.get_model_version(name, version)
    except MlflowException:
        pass
    try:
        registry.client.get_registered_model(name)
    except MlflowException:
        raise CardError(f"no registered model named {name!r}") from None
    raise CardError(f"{name} has no version {version}")


def _flow_run(run_tags: Mapping[str, str], version_tags: Mapping[str, str]) -> str | None:
    flow_run_id = version_tags.get(tag.PREFECT_FLOW_RUN_ID) or run_tags.get(tag.RUN_FLOW_RUN_ID)
    url = run_tags.get(tag.RUN_PREFECT_URL)
    if flow_run_id and url:
        return f"[`{flow_run_id}`]({url})"
    return f"`{flow_run_id}`" if flow_run_id else None


def _listed(text: str | None) -> tuple[str, ...] | None:
    """A list param as MLflow keeps it (`str` of the list: `['a', 'b']`)."""
    if text is None:
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return (text,)
    if isinstance(value, list | tuple):
        return tuple(str(item) for item in value)
    return (str(value),)


def _card_params(params: Mapping[str, str]) -> CardParams | None:
    if "card.owner" not in params:
        return None  # trained before cards: nothing to say rather than today's params.yaml
    return CardParams(
        owner=params["card.owner"],
        intended_use=params.get("card.intended_use") or "not stated",
        out_of_scope=_listed(params.get("card.out_of_scope")) or (),
    )


def _labels(run: _Run) -> tuple[str, ...]:
    recorded = run.artifacts.get(tag.CANDIDATE_FILE, {}).get("labels")
    if recorded:
        return tuple(str(label) for label in recorded)
    return _listed(run.params.get("data.labels")) or ()


_STATUS_TAGS = (
    tag.GATE_DECISION,
    tag.REJECTED,
    tag.APPROVAL,
    tag.APPROVAL_BY,
    tag.APPROVAL_REASON,
    tag.DEPLOY,
    tag.DEPLOY_ERROR,
)


def _status(version_tags: Mapping[str, str]) -> dict[str, str]:
    return {key: version_tags[key] for key in _STATUS_TAGS if version_tags.get(key)}


def _data(run: _Run, version_tags: Mapping[str, str], run_link: str | None) -> mc.DataFacts:
    docs = run.tags.get(tag.RUN_DATA_DOCS)
    if docs and run_link:
        docs_link: str | None = f"[`{docs}`]({run_link}/artifacts/{docs})"
    else:
        docs_link = f"`{docs}` in the MLflow run" if docs else None
    splits = {
        split: int(run.params[f"split.{split}"])
        for split in ("train", "val", "test")
        if f"split.{split}" in run.params
    }
    mix = _parsed(_class_mix, run.artifacts, tag.CLASS_MIX_FILE) or {}
    return mc.DataFacts(
        version=run.tags.get(tag.RUN_DATASET_VERSION) or run.params.get("dataset.version"),
        path=version_tags.get(tag.DATASET_PATH) or run.params.get("dataset.path"),
        md5=version_tags.get(tag.DATASET_MD5) or run.params.get("dataset.md5"),
        git_commit=version_tags.get(tag.GIT_COMMIT),
        splits=splits,
        inputs=run.inputs,
        class_mix=mix,
        validation=version_tags.get(tag.VALIDATION) or run.tags.get(tag.RUN_VALIDATION),
        validation_figures={
            k.removeprefix(tag.DATA): v
            for k, v in sorted(run.metrics.items())
            if k.startswith(tag.DATA)
        },
        data_docs=docs_link,
    )


def _training(run: _Run, version_tags: Mapping[str, str]) -> mc.TrainingFacts:
    from mlflow.utils.mlflow_tags import MLFLOW_GIT_COMMIT

    m, p = run.metrics, run.params
    return mc.TrainingFacts(
        backbone=p.get("model.backbone"),
        params={key: p[key] for key in KEY_PARAMS if p.get(key) not in (None, "None")},
        device=run.tags.get(tag.RUN_DEVICE) or run.tags.get(tag.COMPUTE_DEVICE),
        device_name=run.tags.get(tag.COMPUTE_DEVICE_NAME),
        precision=run.tags.get(tag.RUN_PRECISION),
        steps=int(m[tag.TRAIN_STEPS]) if tag.TRAIN_STEPS in m else None,
        best_epoch=int(m[tag.BEST_EPOCH]) if tag.BEST_EPOCH in m else None,
        seconds=m.get(f"{tag.TRAIN}seconds"),
        compute={
            k.removeprefix(tag.COMPUTE_TOTAL): v
            for k, v in m.items()
            if k.startswith(tag.COMPUTE_TOTAL)
        },
        currency=run.tags.get(tag.COMPUTE_CURRENCY),
        energy_source=run.tags.get(tag.COMPUTE_ENERGY_SOURCE),
        privacy_enabled=p["train.privacy.enabled"] == "True"
        if "train.privacy.enabled" in p
        else None,
        dp_epsilon=m.get(tag.DP_EPSILON),
        dp_delta=m.get(tag.DP_DELTA),
        params_hash=version_tags.get(tag.PARAMS_HASH) or run.tags.get(tag.RUN_PARAMS_HASH),
        code_commit=run.tags.get(MLFLOW_GIT_COMMIT),
        environment={
            k.removeprefix("env."): v for k, v in sorted(p.items()) if k.startswith("env.")
        },
    )


def _evaluation(run: _Run, version_tags: Mapping[str, str]) -> mc.EvaluationFacts:
    m, candidate = run.metrics, run.artifacts.get(tag.CANDIDATE_FILE, {})
    gate = _parsed(_decision, run.artifacts, tag.GATE_DECISION_FILE)
    production_file = run.artifacts.get(tag.PRODUCTION_FILE) or {}
    figures = gate.figures if gate is not None else {}
    rows = version_tags.get(tag.TEST_ROWS) or candidate.get("support")
    return mc.EvaluationFacts(
        test_rows=int(rows) if rows else None,
        metrics={k: m[tag.TEST + k] for k in HEADLINE if tag.TEST + k in m},
        per_class=candidate.get("per_class", {}),
        slices={
            k.removeprefix(tag.SLICE).removesuffix("_accuracy"): v
            for k, v in sorted(m.items())
            if k.startswith(tag.SLICE) and k.count("/") == 1
        },
        production_version=production_file.get("version"),
        production=figures.get("production", {}),
        baselines={k: v for k, v in figures.items() if k not in ("candidate", "production")},
        calibration=_parsed(Calibration.from_dict, run.artifacts, tag.CALIBRATION_FILE),
        gate=gate,
    )


def _parsed(parse: Callable[[Any], T], artifacts: Mapping[str, Any], path: str) -> T | None:
    """`parse` of the run's artifact `path`; None when the run has none, or (with a warning)
    when it is not in the shape this ModelYard writes: the card says "not recorded"."""
    data = artifacts.get(path)
    if not data:
        return None
    try:
        return parse(data)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        log.warning("%s is not as expected (%r): left out of the card", path, error)
        return None


def _class_mix(data: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    return {str(s): {str(k): int(v) for k, v in counts.items()} for s, counts in data.items()}


def _decision(data: Mapping[str, Any] | None) -> GateDecision | None:
    """A gate decision as `gate/decision.json` recorded it."""
    if not data:
        return None
    known = {f.name for f in fields(GateCheck)}
    return GateDecision(
        passed=bool(data.get("passed")),
        checks=[
            GateCheck(**{k: v for k, v in c.items() if k in known}) for c in data.get("checks", [])
        ],
        compute=dict(data.get("compute", {})),
        notes=list(data.get("notes", [])),
        figures=dict(data.get("figures", {})),
        runtime=list(data.get("runtime", [])),
    )


def _explanations(data: Mapping[str, Any] | None) -> mc.ExplanationFacts | None:
    if not data:
        return None
    classes = tuple(
        mc.ClassWords(
            str(entry["label"]),
            int(entry.get("explained", 0)),
            tuple(
                (t["token"], float(t["attribution"]))
                for t in entry.get("tokens", [])[:WORDS_PER_CLASS]
            ),
        )
        for entry in data.get("classes", [])
    )
    mistakes = tuple(
        mc.Mistake(
            str(entry["true"]),
            str(entry["predicted"]),
            float(entry.get("predicted_probability", 0.0)),
            tuple(
                (t["token"], float(t["attribution"]))
                for t in sorted(entry.get("tokens", []), key=lambda t: -t["attribution"])[
                    :WORDS_PER_MISTAKE
                ]
            ),
        )
        for entry in data.get("worst_misclassified", [])
    )
    explained = sum(c.explained for c in classes)
    method = (
        f"Integrated gradients ({data.get('n_steps', '?')} steps) on {explained} of "
        f"{data.get('test_texts', '?')} test texts, mean completeness error "
        f"{float(data.get('mean_delta', 0.0)):.3f}; attributions in "
        f"{data.get('quantity', 'log-odds')}."
    )
    return mc.ExplanationFacts(method, classes, mistakes)


def _runtime(data: Mapping[str, Any] | None) -> mc.RuntimeFacts | None:
    if not data:
        return None
    variants = tuple(
        mc.RuntimeVariant(
            runtime=str(v["runtime"]),
            device=str(v["device"]),
            passed=bool(v["passed"]),
            agreement=float(v.get("agreement", 0.0)),
            accuracy_delta=float(v.get("accuracy_delta", 0.0)),
            macro_f1_delta=float(v.get("macro_f1_delta", 0.0)),
            texts_per_s={int(b): float(s) for b, s in v.get("texts_per_s", {}).items()},
            size_mb=float(v.get("size_mb", 0.0)),
            reasons=tuple(v.get("reasons", [])),
        )
        for v in data.get("verdicts", [])
    )
    return mc.RuntimeFacts(dict(data.get("chosen", {})), variants)


def _history(audit: AuditLog, name: str, version: str) -> tuple[mc.AliasMove, ...]:
    return tuple(
        mc.AliasMove(m.moved_at, m.alias, m.kind, m.from_version, m.to_version, m.actor, m.reason)
        for m in audit.history(name)
        if version in (m.to_version, m.from_version)
    )


# --- publishing --------------------------------------------------------------------------------


def publish(
    registry: MlflowRegistry,
    audit: AuditLog | None,
    name: str,
    version: str,
    mlflow_ui: str | None = None,
) -> mc.Card:
    """The version's card, rendered from the stores and logged to its run under `card/`
    (Markdown and HTML). A version without a run is rendered, not logged."""
    facts = gather(registry, audit, name, version, mlflow_ui)
    rendered = mc.render(facts)
    if facts.run_id is not None:
        registry.log_text(facts.run_id, rendered.markdown, tag.CARD_MARKDOWN)
        registry.log_text(facts.run_id, rendered.html, tag.CARD_HTML)
    return rendered


def refresh(registry: Any, audit: AuditLog, name: str, versions: Sequence[str | None]) -> None:
    """After an alias move: each version it touched gets its card again, with the move in its
    history. Best effort: the move is done and audited whatever happens here (a card that
    failed is made again by the next move, or on demand by `modelyard models card`)."""
    from modelyard.config import Settings
    from modelyard.registry.mlflow_registry import MlflowRegistry

    if not isinstance(registry, MlflowRegistry):
        return  # a test double of the registry: no runs to log to
    for version in dict.fromkeys(v for v in versions if v):  # "": a removed alias's target
        try:
            publish(registry, audit, name, version, Settings().resolved_mlflow_ui_url())
        except Exception as error:  # noqa: BLE001 - a card must never undo or fail a done move
            log.warning("%s version %s: card not refreshed (%r)", name, version, error)


# --- the default model as the DVC pipeline built it --------------------------------------------

# The committed outputs of `dvc repro` a card reads (dvc.yaml's metrics), under the project root.
PIPELINE_METRICS = "build/metrics.json"
PIPELINE_TRAINING = "build/train_metrics.json"
PIPELINE_VALIDATION = "build/validation.json"


def pipeline_facts(root: Path, generated_at: datetime | None = None) -> mc.CardFacts:
    """The card facts of the model `dvc repro` builds from the project's params.yaml, read from
    its committed outputs (metrics, training figures, validation figures, dvc.lock): no model
    is loaded, nothing is trained. The pipeline registers nothing and runs no gate, so those
    facts (and the ones only a retrain records) read "not recorded"."""
    import yaml

    from modelyard.config import load_params

    params = load_params(root / "params.yaml")
    metrics = json.loads((root / PIPELINE_METRICS).read_text(encoding="utf-8"))
    trained = json.loads((root / PIPELINE_TRAINING).read_text(encoding="utf-8"))
    checked = json.loads((root / PIPELINE_VALIDATION).read_text(encoding="utf-8"))
    lock = yaml.safe_load((root / "dvc.lock").read_text(encoding="utf-8"))
    data_path = str(params.data.path)
    md5 = next(
        (d.get("md5") for d in lock["stages"]["prepare"]["deps"] if d.get("path") == data_path),
        None,
    )
    labels = tuple(str(label) for label in params.data.labels)
    flat = {f"train.{k}": str(v) for k, v in params.train.model_dump(mode="json").items()}
    flat["model.max_length"] = str(params.model.max_length)
    return mc.CardFacts(
        model=params.model.name,
        version="built by dvc repro",
        generated_at=generated_at or datetime.now(UTC),
        source=f"the committed outputs of `dvc repro` ({PIPELINE_METRICS}, {PIPELINE_TRAINING}, "
        f"{PIPELINE_VALIDATION}, dvc.lock) and params.yaml",
        card=params.card,
        labels=labels,
        positive_label=params.data.positive,
        data=mc.DataFacts(
            path=data_path,
            md5=md5,
            validation="passed" if checked.get("passed") else "failed",
            validation_figures={
                k.removeprefix("data_"): float(v) for k, v in checked.items() if k != "passed"
            },
            data_docs="`build/validation/index.html`, written by `dvc repro` (not committed)",
        ),
        training=mc.TrainingFacts(
            backbone=params.model.backbone,
            params={k: flat[k] for k in KEY_PARAMS if flat.get(k) not in (None, "None")},
            steps=trained.get("steps"),
            best_epoch=trained.get("best_epoch"),
            privacy_enabled=params.train.privacy.enabled,
            params_hash=params.digest(),
        ),
        evaluation=_pipeline_evaluation(metrics, labels),
    )


def _pipeline_evaluation(metrics: Mapping[str, Any], labels: Sequence[str]) -> mc.EvaluationFacts:
    """build/metrics.json: the headline, per-class figures and length slices, the baselines."""
    per_class = {
        label: {m: float(metrics[f"{m}_{label}"]) for m in PER_CLASS if f"{m}_{label}" in metrics}
        for label in labels
    }
    baselines = {
        name: {k: float(v) for k, v in figures.items() if k in HEADLINE}
        for name, figures in metrics.get("baselines", {}).items()
    }
    return mc.EvaluationFacts(
        test_rows=metrics.get("test_rows"),
        metrics={k: float(metrics[k]) for k in HEADLINE if k in metrics},
        per_class={label: scores for label, scores in per_class.items() if scores},
        slices={
            k.removeprefix("slice_").removesuffix("_accuracy"): float(v)
            for k, v in sorted(metrics.items())
            if k.startswith("slice_")
        },
        baselines=baselines,
    )

"""The DVC pipeline's stages (`dvc.yaml`): prepare → validate → train → evaluate.

Each stage is one function taking the whole params tree, built from the same functions the
Prefect retrain flow runs, and writing only its declared outputs under `build/`. The DVC pipeline
is for experiments (`dvc repro`, `dvc exp run -S train.learning_rate=…`, `dvc metrics show`): it
tracks nothing in MLflow and never touches the registry; promotion goes through the flow's gate.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from modelyard.config import Params
from modelyard.data import dataset as ds
from modelyard.data.validation import (
    ValidationReport,
    ensure_valid,
    validate_datasets,
    write_data_docs,
)
from modelyard.evaluation.candidate import evaluate_baselines
from modelyard.evaluation.metrics import Metrics, positive_class, score
from modelyard.training.fit import Trained, fit, fit_distributed

BUILD = Path("build")
PREPARED = BUILD / "prepared"
VALIDATION = BUILD / "validation"
VALIDATION_METRICS = BUILD / "validation.json"
MODEL = BUILD / "model"
METRICS = BUILD / "metrics.json"
TRAIN_METRICS = BUILD / "train_metrics.json"
# Written, but not DVC outputs: Data Docs carry render times and random ids, so their hash would
# differ on every run and `dvc.lock` could never be what `dvc repro` produces.
NOT_DVC_OUTPUTS = (VALIDATION,)


def _read(params: Params) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    data = ds.read_frame(params.data.path, params.data)
    test = (
        None if params.data.test_path is None else ds.read_frame(params.data.test_path, params.data)
    )
    return data, test


def _write_json(path: Path, payload: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def prepare(params: Params, out: Path = PREPARED) -> ds.Splits:
    """The configured columns as `text`/`label` strings, split (or the separate test file)."""
    data, test = _read(params)
    canonical = ds.to_canonical(data, params.data)
    missing = {ds.TEXT: params.data.text_column, ds.LABEL: params.data.label_column}
    absent = [name for key, name in missing.items() if key not in canonical.columns]
    if absent:
        raise ds.DatasetError(
            f"{params.data.path}: no column {absent} (columns: "
            f"{list(data.columns)}{ds.delimiter_hint(data)})"
        )
    canonical_test = None if test is None else ds.to_canonical(test, params.data)
    try:
        splits = ds.split(canonical.dropna(), params.data, canonical_test)
    except ValueError as error:  # e.g. a class too small to stratify: validate says which
        raise ds.DatasetError(
            f"{params.data.path}: cannot be split ({error}); "
            "`modelyard stage validate` reports every problem"
        ) from None
    splits.save(out)
    return splits


def validate(
    params: Params, out: Path = VALIDATION, metrics: Path = VALIDATION_METRICS
) -> ValidationReport:
    """The expectation suite on the raw file(s); Data Docs to `out`, the figures to `metrics`;
    raises on failure."""
    data, test = _read(params)
    report = validate_datasets(data, params.data, params.validation, test)
    write_data_docs(report, out, str(params.data.path))
    _write_json(
        metrics,
        {
            "passed": report.success,
            **{f"data_{k}": v for k, v in report.statistics.items() if v != float("inf")},
        },
    )
    return ensure_valid(report, str(params.data.path))


def train(
    params: Params,
    prepared: Path = PREPARED,
    out: Path = MODEL,
    metrics: Path = TRAIN_METRICS,
    rendezvous: str | None = None,
) -> Trained:
    """Fine-tune on the prepared split; with `train.nproc` or `train.nnodes` > 1 through
    torchrun (this machine node 0, the others joining at `rendezvous`). `metrics` holds only
    what the same inputs reproduce (no wall time: `dvc.lock` records its hash)."""
    if params.train.nproc > 1 or params.train.nnodes > 1:
        from modelyard.config import Settings

        endpoint = rendezvous or Settings().rdzv_endpoint
        trained = fit_distributed(prepared, params, out, rendezvous=endpoint)
    else:
        trained = fit(ds.Splits.load(prepared), params, out)
    result = trained.result
    _write_json(
        metrics,
        {
            "best_epoch": result.best_epoch,
            "steps": result.steps,
            "best_val_macro_f1": max((h["val_macro_f1"] for h in result.history), default=0.0),
        },
    )
    return trained


def evaluate(
    params: Params, model: Path = MODEL, prepared: Path = PREPARED, out: Path = METRICS
) -> Metrics:
    from modelyard.inference import TextClassifier

    splits = ds.Splits.load(prepared)
    labels = list(params.data.labels)
    positive = positive_class(labels, params.data.positive_label)
    metrics = score(
        TextClassifier.load(model),
        splits.test[ds.TEXT].tolist(),
        splits.test[ds.LABEL].tolist(),
        labels,
        positive,
    )
    baselines = evaluate_baselines(splits.train, splits.test, labels, positive)
    _write_json(
        out,
        {
            **{k: round(v, 6) for k, v in metrics.headline().items()},
            "majority_baseline_accuracy": round(baselines.majority.accuracy, 6),
            "baselines": {
                name: {k: round(v, 6) for k, v in figures.items()}
                for name, figures in baselines.headlines().items()
            },
            "test_rows": len(splits.test),
        },
    )
    return metrics

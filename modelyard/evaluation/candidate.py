"""A trained model directory, evaluated as the gate needs it: quality on the comparison set and
the costs the gate budgets."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd

from modelyard.data.dataset import LABEL, TEXT
from modelyard.evaluation.baselines import Baselines, score_baselines
from modelyard.evaluation.metrics import Metrics, p95_latency_ms, score
from modelyard.inference import TextClassifier


def score_frame(
    classifier: TextClassifier, test: pd.DataFrame, labels: list[str], positive: str | None = None
) -> Metrics:
    """A classifier on a canonical `text`/`label` frame (with the AUCs of `positive`)."""
    return score(classifier, test[TEXT].tolist(), test[LABEL].tolist(), labels, positive)


def evaluate_model_dir(
    model_dir: Path,
    test: pd.DataFrame,
    labels: list[str],
    dp_epsilon: float | None = None,
    positive: str | None = None,
) -> Metrics:
    """Quality on `test`, and the costs the gate budgets: p95 latency of a single-text request on
    this machine, the weights' size, and the privacy budget training spent (when it was DP)."""
    classifier = TextClassifier.load(model_dir)
    metrics = score_frame(classifier, test, labels, positive)
    costs = {
        "latency_p95_ms": p95_latency_ms(classifier, test[TEXT].tolist()),
        "model_size_mb": sum(f.stat().st_size for f in model_dir.glob("*.safetensors")) / 2**20,
    }
    if dp_epsilon is not None:
        costs["dp_epsilon"] = dp_epsilon
    return replace(metrics, costs=costs)


def evaluate_baselines(
    train: pd.DataFrame, test: pd.DataFrame, labels: list[str], positive: str | None = None
) -> Baselines:
    """The majority-class and bag-of-words baselines, fitted on the canonical `train` frame and
    scored on `test` as a candidate is."""
    return score_baselines(
        (train[TEXT].tolist(), train[LABEL].tolist()),
        (test[TEXT].tolist(), test[LABEL].tolist()),
        labels,
        positive,
    )

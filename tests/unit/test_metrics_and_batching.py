import numpy as np
import pytest

from modelyard.evaluation.metrics import classification_metrics, majority_baseline
from modelyard.training.loop import length_grouped_batches


def test_metrics_over_label_names():
    labels = ["neg", "pos"]
    metrics = classification_metrics(
        ["neg", "neg", "pos", "pos"], ["neg", "pos", "pos", "pos"], labels
    )
    assert metrics.accuracy == 0.75
    assert metrics.per_class["neg"]["recall"] == 0.5 and metrics.per_class["pos"]["recall"] == 1.0
    assert metrics.confusion == [[1, 1], [0, 2]]
    assert metrics.macro_f1 == pytest.approx((2 / 3 + 0.8) / 2)
    assert set(metrics.headline()) == {
        "accuracy",
        "macro_f1",
        "precision_neg",
        "precision_pos",
        "recall_neg",
        "recall_pos",
        "f1_neg",
        "f1_pos",
    }


def test_metrics_over_ids():
    metrics = classification_metrics([0, 1, 1], [0, 1, 0], ["a", "b"])
    assert metrics.labels == ["a", "b"] and metrics.confusion == [[1, 0], [1, 1]]


def test_majority_baseline():
    assert majority_baseline(["a", "a", "b"], ["a", "b", "b", "b"]) == 0.25


def test_length_grouped_batches_cover_everything_once_and_group_lengths():
    rng = np.random.default_rng(0)
    lengths = list(rng.integers(3, 80, size=1000))
    batches = length_grouped_batches(lengths, 16, np.random.default_rng(1))
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1000))
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    naive_rng = np.random.default_rng(1).permutation(1000)
    naive = sum(
        len(b) * max(lengths[i] for i in b) for b in np.array_split(naive_rng, len(batches))
    )
    assert padded < 0.7 * naive

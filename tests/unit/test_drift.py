"""Drift statistics on constructed samples: two samples of the same distribution raise no
alarm, a shifted one does; live quality from feedback."""

from __future__ import annotations

import numpy as np
import pytest

from modelyard.data.synthetic import LABELS, ReviewSpec, generate_reviews
from modelyard.monitoring import drift
from modelyard.monitoring.live import drop_p_value, live_quality


def _texts(seed: int, rows: int = 600) -> list[str]:
    return [text for text, _ in generate_reviews(ReviewSpec(rows=rows, seed=seed))]


def _shifted(seed: int, rows: int = 600) -> list[str]:
    """Another product domain, longer texts, words the training data never had."""
    rng = np.random.default_rng(seed)
    words = [
        "firmware",
        "latency",
        "throughput",
        "kubernetes",
        "cluster",
        "bandwidth",
        "quota",
        "invoice",
        "subscription",
        "dashboard",
        "endpoint",
        "timeout",
        "regression",
    ]
    return [" ".join(rng.choice(words, size=int(rng.integers(25, 60)))) for _ in range(rows)]


def test_text_length():
    reference = drift.word_counts(_texts(1))
    assert not drift.length_drift(reference, drift.word_counts(_texts(2)), 0.001).alarm
    shifted = drift.length_drift(reference, drift.word_counts(_shifted(2)), 0.001)
    assert shifted.alarm and shifted.p_value < 1e-10


def test_embeddings_on_arrays():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(200, 16))
    same = drift.embedding_drift(reference, rng.normal(size=(200, 16)), 0.01)
    moved = drift.embedding_drift(reference, rng.normal(0.4, 1.0, size=(200, 16)), 0.01)
    assert not same.alarm and same.p_value > 0.05
    assert moved.alarm and moved.p_value < 0.01


@pytest.fixture(scope="module")
def classifier():
    from modelyard.config import ModelParams, TinyBackbone
    from modelyard.inference import TextClassifier
    from modelyard.training.model import build_model

    params = ModelParams(backbone="tiny", max_length=64, tiny=TinyBackbone(vocab_size=300))
    model, tokenizer = build_model(params, list(LABELS), _texts(0, 2000))
    return TextClassifier(model, tokenizer, "cpu")


def test_model_views_of_the_inputs(classifier):
    """OOV rate and [CLS]-embedding MMD under a real (tiny) model and its own tokenizer."""
    reference, same, shifted = _texts(1, 300), _texts(2, 300), _shifted(2, 300)
    ref_rate = drift.oov_rate(*classifier.out_of_vocabulary_counts(reference))
    assert not drift.oov_drift(
        ref_rate, drift.oov_rate(*classifier.out_of_vocabulary_counts(same)), 0.05
    ).alarm
    assert drift.oov_drift(
        ref_rate, drift.oov_rate(*classifier.out_of_vocabulary_counts(shifted)), 0.05
    ).alarm
    embedded = classifier.embed(reference)
    assert embedded.shape == (300, classifier.model.config.hidden_size)
    assert not drift.embedding_drift(embedded, classifier.embed(same), 0.01).alarm
    assert drift.embedding_drift(embedded, classifier.embed(shifted), 0.01).alarm


def test_prediction_drift():
    rng = np.random.default_rng(0)
    reference = list(rng.choice(LABELS, size=1000, p=[0.3, 0.3, 0.4]))
    same = list(rng.choice(LABELS, size=1000, p=[0.3, 0.3, 0.4]))
    skewed = list(rng.choice(LABELS, size=1000, p=[0.8, 0.1, 0.1]))
    assert not drift.class_mix_drift(LABELS, reference, same, 0.2).alarm
    assert drift.class_mix_drift(LABELS, reference, skewed, 0.2).alarm
    confident = rng.beta(8, 2, size=1000)
    assert not drift.confidence_drift(confident, rng.beta(8, 2, size=1000), 0.001).alarm
    assert drift.confidence_drift(confident, rng.beta(3, 3, size=1000), 0.001).alarm


@pytest.mark.parametrize(
    "n, right, reference, rows, alarm",
    [
        (100, 90, 0.90, None, False),  # as good as on the test split
        (1000, 800, 0.90, None, True),  # ten points worse on 1,000 labels: beyond the allowed 0.05
        (100, 70, 0.90, 500, True),  # twenty points worse on 100 labels
        (100, 80, 0.90, None, False),  # ten points worse on 100 labels: p = 0.11, not evidence
        (100, 67, 0.7333, 30, False),  # the healthy window CI once alarmed on (30-row test split)
        (1000, 800, None, None, False),  # no reference accuracy: reported, never alarms
    ],
)
def test_live_quality(n, right, reference, rows, alarm):
    actual = ["positive"] * n
    predicted = ["positive"] * right + ["negative"] * (n - right)
    quality = live_quality(
        predicted,
        actual,
        LABELS,
        reference,
        min_feedback=50,
        max_drop=0.05,
        alpha=0.01,
        reference_rows=rows,
    )
    assert quality.accuracy == pytest.approx(right / n) and quality.alarm is alarm
    assert quality.labelled == n
    assert (quality.p_value is None) is (reference is None)


def test_a_small_test_split_makes_a_drop_less_certain():
    """The same live accuracy is stronger evidence of a drop against a test accuracy measured on
    many rows than on few; with no size known the reference counts as exact."""
    p = {rows: drop_p_value(760, 1000, 0.9, rows, 0.05) for rows in (30, 300, 3000, None)}
    assert p[30] > p[300] > p[3000] > p[None]
    assert p[30] > 0.01 > p[3000]


def test_perfect_accuracy_on_both_sides_is_not_certainty():
    """At 100 % the plain variance is zero; the Agresti–Caffo one keeps the p-value finite."""
    p = drop_p_value(0, 50, 1.0, 50, 0.05)
    assert 0 < p < 1e-6
    assert drop_p_value(50, 50, 1.0, 50, 0.05) > 0.5


def test_too_little_feedback_is_not_judged():
    quality = live_quality(["a"] * 10, ["b"] * 10, ["a", "b"], 0.9, min_feedback=50, max_drop=0.05)
    assert quality.accuracy is None and not quality.alarm and "not judged" in quality.detail

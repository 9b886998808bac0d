"""The simple models a candidate is reported next to, trained on the same training split and
scored on the same comparison set: always the majority class, and a bag of words (TF-IDF of
words and word pairs into a logistic regression, as the default dataset is checked with).

A headline accuracy of 0.99 says little when the majority class alone scores 0.86; a fine-tuned
transformer that a bag-of-words model matches is not worth its cost. `gate.min_lift_over_baseline`
turns the second into a rule (see `modelyard.evaluation.gate`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelyard.evaluation.metrics import Metrics, score

MAJORITY = "majority"
BAG_OF_WORDS = "bag_of_words"
BASELINES = (MAJORITY, BAG_OF_WORDS)
# How reports name them.
TITLES = {MAJORITY: "majority class", BAG_OF_WORDS: "bag of words (TF-IDF + logistic regression)"}


class MajorityClassifier:
    """Predicts the most frequent training label for every text; its probabilities are the
    training label frequencies, so its ROC-AUC is 0.5 and its PR-AUC the positive share."""

    def __init__(self, labels: Sequence[str], y_train: Sequence[str]) -> None:
        self.labels = [str(label) for label in labels]
        counts = Counter(str(y) for y in y_train)
        # Ties go to the label listed first, so the choice never depends on row order.
        self.majority = max(self.labels, key=lambda label: counts[label])
        self.prior = np.array([counts[label] for label in self.labels], dtype=float)
        self.prior /= max(self.prior.sum(), 1.0)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return np.tile(self.prior, (len(texts), 1))

    def predict(self, texts: Sequence[str]) -> list[str]:
        return [self.majority] * len(texts)


class BagOfWordsClassifier:
    """TF-IDF of words and word pairs (sublinear term frequencies) into a multinomial logistic
    regression: deterministic (lbfgs), seconds on a CPU for tens of thousands of texts."""

    def __init__(self, labels: Sequence[str], texts: Sequence[str], y: Sequence[str]) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        self.labels = [str(label) for label in labels]
        # One-character words count too ("5 stars", "a+").
        self.vectorizer = TfidfVectorizer(
            ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"(?u)\b\w+\b"
        )
        try:
            features = self.vectorizer.fit_transform(list(texts))
        except ValueError:  # no word at all (only symbols, emoji): character n-grams instead
            self.vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3))
            features = self.vectorizer.fit_transform(list(texts))
        self.model = LogisticRegression(max_iter=2000).fit(features, [str(v) for v in y])

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Columns in `labels` order; a label the training split lacks gets probability 0."""
        proba = self.model.predict_proba(self.vectorizer.transform(list(texts)))
        out = np.zeros((len(texts), len(self.labels)))
        for column, label in enumerate(self.model.classes_):
            if label in self.labels:
                out[:, self.labels.index(label)] = proba[:, column]
        return out

    def predict(self, texts: Sequence[str]) -> list[str]:
        return [self.labels[i] for i in self.predict_proba(texts).argmax(axis=1)]


@dataclass(frozen=True)
class Baselines:
    """Both baselines' metrics on the comparison set."""

    majority: Metrics
    bag_of_words: Metrics

    def headlines(self) -> dict[str, dict[str, float]]:
        """Each baseline's headline metrics by name, as the gate and the reports take them."""
        return {MAJORITY: self.majority.headline(), BAG_OF_WORDS: self.bag_of_words.headline()}


def score_baselines(
    train: tuple[Sequence[str], Sequence[str]],
    test: tuple[Sequence[str], Sequence[str]],
    labels: Sequence[str],
    positive: str | None = None,
) -> Baselines:
    """Both baselines fitted on `train` (texts, labels) and scored on `test` (texts, labels)
    exactly as a candidate is (`modelyard.evaluation.metrics.score`)."""
    texts, y = train
    models: dict[str, Any] = {
        MAJORITY: MajorityClassifier(labels, y),
        BAG_OF_WORDS: BagOfWordsClassifier(labels, texts, y),
    }
    scored = {
        name: score(model, test[0], test[1], labels, positive) for name, model in models.items()
    }
    return Baselines(scored[MAJORITY], scored[BAG_OF_WORDS])

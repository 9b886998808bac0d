"""Classification metrics over label *names*, so two models whose heads order the classes
differently are still scored on the same terms."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Metrics:
    accuracy: float
    macro_f1: float
    labels: list[str]
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)
    confusion: list[list[int]] = field(default_factory=list)
    support: int = 0

    def headline(self) -> dict[str, float]:
        """The flat metrics logged to MLflow and compared by the gate."""
        flat = {"accuracy": self.accuracy, "macro_f1": self.macro_f1}
        for label, scores in self.per_class.items():
            flat[f"recall_{label}"] = scores["recall"]
            flat[f"f1_{label}"] = scores["f1"]
        return flat

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def classification_metrics(
    y_true: Sequence[Any], y_pred: Sequence[Any], labels: Sequence[Any]
) -> Metrics:
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    names = [str(label) for label in labels]
    if isinstance(next(iter(y_true), None), int):
        # Integer class ids: score against positions in `labels`.
        label_keys: list[Any] = list(range(len(labels)))
    else:
        label_keys = list(labels)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=label_keys, zero_division=0
    )
    return Metrics(
        accuracy=float(accuracy_score(y_true, y_pred)),
        macro_f1=float(f1.mean()),
        labels=names,
        per_class={
            name: {
                "precision": float(p), "recall": float(r), "f1": float(f), "support": float(s)
            }
            for name, p, r, f, s in zip(names, precision, recall, f1, support, strict=True)
        },
        confusion=confusion_matrix(y_true, y_pred, labels=label_keys).tolist(),
        support=len(y_true),
    )


def score(classifier: Any, texts: Sequence[str], y_true: Sequence[str],
          labels: Sequence[str]) -> Metrics:
    """A classifier (anything with `.predict(texts)` returning label names) on labelled texts."""
    return classification_metrics(list(y_true), classifier.predict(list(texts)), labels)


def majority_baseline(y_train: Sequence[str], y_test: Sequence[str]) -> float:
    """Accuracy of always predicting the most frequent training label."""
    from collections import Counter

    majority = Counter(y_train).most_common(1)[0][0]
    return sum(label == majority for label in y_test) / max(len(y_test), 1)


def confusion_figure(metrics: Metrics, title: str) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = len(metrics.labels)
    figure, axis = plt.subplots(figsize=(1.6 + 1.1 * size, 1.2 + 1.0 * size))
    axis.imshow(metrics.confusion, cmap="Blues")
    axis.set_xticks(range(size), metrics.labels, rotation=30, ha="right")
    axis.set_yticks(range(size), metrics.labels)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(title)
    peak = max(max(row) for row in metrics.confusion) or 1
    for i, row in enumerate(metrics.confusion):
        for j, count in enumerate(row):
            colour = "white" if count > peak / 2 else "black"
            axis.text(j, i, str(count), ha="center", va="center", color=colour)
    figure.tight_layout()
    return figure

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
    # Accuracy per text-length bucket, for buckets with enough texts to compare.
    slices: dict[str, float] = field(default_factory=dict)
    # What the gate budgets besides quality (latency_p95_ms, model_size_mb): machine-dependent,
    # so kept out of `headline`, which must be the same on every run of the same model.
    costs: dict[str, float] = field(default_factory=dict)
    # The class the AUCs are of (`data.positive_label`), against the rest; None: no AUCs.
    positive_label: str | None = None
    # Area under the ROC curve and average precision (PR-AUC) of `positive_label`'s
    # probability; None without a positive class, or when the texts hold only one side.
    roc_auc: float | None = None
    pr_auc: float | None = None

    def headline(self) -> dict[str, float]:
        """The flat metrics logged to MLflow and compared by the gate: accuracy, macro-F1,
        each class's precision, recall and F1, the AUCs (with a positive class), the slices."""
        flat = {"accuracy": self.accuracy, "macro_f1": self.macro_f1}
        flat.update({name: v for name, v in self.aucs().items() if v is not None})
        for label, scores in self.per_class.items():
            for measure in PER_CLASS:
                flat[f"{measure}_{label}"] = scores[measure]
        flat.update({f"slice_{name}_accuracy": value for name, value in self.slices.items()})
        return flat

    def aucs(self) -> dict[str, float | None]:
        return {"roc_auc": self.roc_auc, "pr_auc": self.pr_auc}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# The per-class figures in `headline`, as `<measure>_<class>`.
PER_CLASS = ("precision", "recall", "f1")


def positive_class(labels: Sequence[str], positive_label: str | None) -> str | None:
    """The class the AUCs are of: `positive_label` (data.positive_label), else the second of
    two labels; None for more labels without one."""
    if positive_label is not None:
        return positive_label
    return labels[1] if len(labels) == 2 else None


def classification_metrics(
    y_true: Sequence[Any],
    y_pred: Sequence[Any],
    labels: Sequence[Any],
    positive_scores: Sequence[float] | None = None,
    positive: str | None = None,
) -> Metrics:
    """Accuracy, macro-F1, per-class figures and the confusion matrix; with `positive` (a label
    name) and `positive_scores` (each text's probability of it), that class's ROC-AUC and
    PR-AUC against the rest."""
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
    scored = positive if positive_scores is not None else None
    roc, pr = None, None
    if scored is not None:
        truth = [names[label_keys.index(y)] if y in label_keys else str(y) for y in y_true]
        roc, pr = area_under_curves(truth, positive_scores, scored)
    return Metrics(
        accuracy=float(accuracy_score(y_true, y_pred)),
        macro_f1=float(f1.mean()),
        labels=names,
        per_class={
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": float(s)}
            for name, p, r, f, s in zip(names, precision, recall, f1, support, strict=True)
        },
        confusion=confusion_matrix(y_true, y_pred, labels=label_keys).tolist(),
        support=len(y_true),
        positive_label=scored,
        roc_auc=roc,
        pr_auc=pr,
    )


def area_under_curves(
    truth: Sequence[str], scores: Sequence[float] | None, positive: str | None
) -> tuple[float | None, float | None]:
    """(ROC-AUC, PR-AUC) of `positive` against the rest, ranking texts by `scores`. PR-AUC is
    average precision (scikit-learn's step-wise area, which does not interpolate optimistically
    between points as the trapezoid would). Both None when the texts hold one side only: the
    curves are undefined then."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    if positive is None or scores is None:
        return None, None
    is_positive = [label == positive for label in truth]
    if all(is_positive) or not any(is_positive):
        return None, None
    return (
        float(roc_auc_score(is_positive, scores)),
        float(average_precision_score(is_positive, scores)),
    )


# Text-length buckets (words): a model can win on average and lose on the long reviews.
LENGTH_BUCKETS = (("short", 0, 10), ("medium", 11, 30), ("long", 31, 10**9))
# Fewer texts than this in a bucket make its accuracy too noisy to compare.
MIN_SLICE_SUPPORT = 30


def length_slices(
    texts: Sequence[str], y_true: Sequence[str], y_pred: Sequence[str]
) -> dict[str, float]:
    words = [len(text.split()) for text in texts]
    slices = {}
    for name, low, high in LENGTH_BUCKETS:
        members = [i for i, n in enumerate(words) if low <= n <= high]
        if len(members) >= MIN_SLICE_SUPPORT:
            slices[f"length_{name}"] = sum(y_true[i] == y_pred[i] for i in members) / len(members)
    return slices


def score(
    classifier: Any,
    texts: Sequence[str],
    y_true: Sequence[str],
    labels: Sequence[str],
    positive: str | None = None,
) -> Metrics:
    """A classifier (anything with `.predict(texts)` returning label names, or with
    `.predict_proba(texts)` and `.labels`) on labelled texts, with accuracy per text-length
    slice, and the AUCs of `positive` when the classifier gives probabilities."""
    from dataclasses import replace

    predicted, scores = predict_with_scores(classifier, list(texts), positive)
    metrics = classification_metrics(list(y_true), predicted, labels, scores, positive)
    return replace(metrics, slices=length_slices(list(texts), list(y_true), predicted))


def predict_with_scores(
    classifier: Any, texts: list[str], positive: str | None
) -> tuple[list[str], list[float] | None]:
    """The predicted labels and, when the classifier gives probabilities and knows `positive`,
    each text's probability of it: one pass, the labels being the probabilities' argmax."""
    proba_of = getattr(classifier, "predict_proba", None)
    if proba_of is None:
        return list(classifier.predict(texts)), None
    import numpy as np

    classes = [str(label) for label in classifier.labels]
    proba = np.asarray(proba_of(texts)).reshape(len(texts), len(classes))
    predicted = [classes[i] for i in proba.argmax(axis=1)]
    if positive is None or positive not in classes:
        return predicted, None
    return predicted, proba[:, classes.index(positive)].tolist()


def p95_latency_ms(classifier: Any, texts: Sequence[str], requests: int = 50) -> float:
    """p95 wall time of one single-text prediction, as a REST request would make it."""
    import time

    import numpy as np

    samples = list(texts)[:requests] or [""]
    classifier.predict(samples[:1])  # warm-up
    times = []
    for text in samples:
        started = time.perf_counter()
        classifier.predict([text])
        times.append((time.perf_counter() - started) * 1000)
    return float(np.percentile(times, 95))


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

"""Live quality: the served model's predictions that have received their true label."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class LiveQuality:
    labelled: int
    accuracy: float | None
    macro_f1: float | None
    reference_accuracy: float | None  # the version's accuracy on its test split
    max_drop: float
    alarm: bool
    detail: str

    def to_dict(self) -> dict:
        return asdict(self)


def live_quality(predicted: Sequence[str], actual: Sequence[str], labels: Sequence[str],
                 reference_accuracy: float | None, min_feedback: int,
                 max_drop: float) -> LiveQuality:
    """Accuracy and macro-F1 over predictions with feedback; alarms when accuracy falls more
    than `max_drop` below the test accuracy the version was promoted with."""
    from sklearn.metrics import accuracy_score, f1_score

    n = len(actual)
    if n < min_feedback:
        return LiveQuality(n, None, None, reference_accuracy, max_drop, False,
                           f"{n} labelled predictions, fewer than {min_feedback}: not judged")
    accuracy = float(accuracy_score(actual, predicted))
    macro_f1 = float(f1_score(actual, predicted, labels=list(labels), average="macro",
                              zero_division=0))
    alarm = reference_accuracy is not None and accuracy < reference_accuracy - max_drop
    versus = ("" if reference_accuracy is None else
              f" vs {reference_accuracy:.4f} on the test split")
    return LiveQuality(n, accuracy, macro_f1, reference_accuracy, max_drop, alarm,
                       f"accuracy {accuracy:.4f}{versus}, macro-F1 {macro_f1:.4f} on {n} "
                       "labelled predictions")

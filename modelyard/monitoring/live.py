"""Live quality: the served model's predictions that have received their true label."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class LiveQuality:
    labelled: int
    accuracy: float | None
    macro_f1: float | None
    reference_accuracy: float | None  # the version's accuracy on its test split
    max_drop: float
    alarm: bool
    detail: str
    p_value: float | None = None  # of "live accuracy ≥ reference − max_drop"
    reference_rows: int | None = None  # the test split the reference accuracy was measured on

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def labelled_predictions(current: pd.DataFrame, feedback: pd.DataFrame) -> pd.DataFrame:
    """Predicted and true label (`predicted`, `actual`) of the window's predictions that have
    feedback. `current`: the logged predictions (`id`, `label`, …); `feedback`: the feedback rows
    (`prediction_id`, `label`, `created_at`) — a prediction labelled twice counts once, with its
    latest label (a person corrected themselves)."""
    import pandas as pd

    latest = feedback.sort_values("created_at").drop_duplicates("prediction_id", keep="last")
    both = current.merge(latest, left_on="id", right_on="prediction_id", suffixes=("", "_true"))
    return pd.DataFrame({"predicted": both["label"], "actual": both["label_true"]})


def drop_p_value(
    correct: int, n: int, reference: float, reference_rows: int | None, max_drop: float
) -> float:
    """One-sided p-value of "live accuracy is at least `reference − max_drop`", from `correct`
    of `n` labelled predictions.

    Both accuracies are estimates: a test split of a few dozen rows is as noisy as the feedback,
    so its variance counts too when its size is known. Each proportion's variance is taken with
    one success and one failure added (Agresti–Caffo), which keeps it above zero at 0 % or 100 %
    accuracy, where the plain Wald variance would make any difference look certain.
    """
    from scipy.stats import norm

    live = (correct + 1) / (n + 2)
    variance = live * (1 - live) / (n + 2)
    if reference_rows:
        ref = (reference * reference_rows + 1) / (reference_rows + 2)
        variance += ref * (1 - ref) / (reference_rows + 2)
    z = (correct / n - (reference - max_drop)) / math.sqrt(variance)
    return float(norm.cdf(z))


def live_quality(
    predicted: Sequence[str],
    actual: Sequence[str],
    labels: Sequence[str],
    reference_accuracy: float | None,
    min_feedback: int,
    max_drop: float,
    alpha: float = 0.01,
    reference_rows: int | None = None,
) -> LiveQuality:
    """Accuracy and macro-F1 over predictions with feedback; alarms when accuracy is
    significantly (one-sided, at `alpha`) more than `max_drop` below the test accuracy the
    version was promoted with. A point comparison would alarm on noise: 100 labels and a test
    split of 30 rows put ±0.09 of standard error on the difference."""
    from sklearn.metrics import accuracy_score, f1_score

    n = len(actual)
    if n < min_feedback:
        return LiveQuality(
            n,
            None,
            None,
            reference_accuracy,
            max_drop,
            False,
            f"{n} labelled predictions, fewer than {min_feedback}: not judged",
            reference_rows=reference_rows,
        )
    accuracy = float(accuracy_score(actual, predicted))
    macro_f1 = float(
        f1_score(actual, predicted, labels=list(labels), average="macro", zero_division=0)
    )
    detail = f"accuracy {accuracy:.4f}"
    p_value = None
    if reference_accuracy is not None:
        correct = sum(p == a for p, a in zip(predicted, actual, strict=True))
        p_value = drop_p_value(correct, n, reference_accuracy, reference_rows, max_drop)
        rows = "" if reference_rows is None else f" of {reference_rows} rows"
        detail += (
            f" vs {reference_accuracy:.4f} on the test split{rows} (p = {p_value:.3g} "
            f"that it is within {max_drop:g} of it)"
        )
    detail += f", macro-F1 {macro_f1:.4f} on {n} labelled predictions"
    alarm = p_value is not None and p_value < alpha
    return LiveQuality(
        n, accuracy, macro_f1, reference_accuracy, max_drop, alarm, detail, p_value, reference_rows
    )

"""How far a classifier's confidence can be taken at its word: the expected calibration error
and the reliability diagram of its top-class probability on labelled texts.

The texts are put into equal-width bins of confidence (the predicted class's probability);
each bin's accuracy is compared with its mean confidence. ECE is the mean gap, weighted by the
texts in each bin (Guo et al., 2017); MCE the largest gap of a non-empty bin. A model whose
texts at 0.9 confidence are right 9 times in 10 is calibrated there; a gap says by how much a
threshold on its probabilities misleads.

Pure (no I/O): `calibrate` runs a classifier, the rest is arithmetic on its probabilities.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

# Equal-width bins over [0, 1]: ten is the usual choice, and with a few hundred test texts the
# bins the confidences fall in keep enough texts each for their accuracy to mean something.
BINS = 10


@dataclass(frozen=True)
class ReliabilityBin:
    lower: float
    upper: float
    count: int  # texts whose confidence falls in (lower, upper] ([0, upper] for the first)
    confidence: float  # their mean top-class probability (0 when empty)
    accuracy: float  # their share predicted right (0 when empty)

    @property
    def gap(self) -> float:
        return abs(self.accuracy - self.confidence)


@dataclass(frozen=True)
class Calibration:
    texts: int
    ece: float  # expected calibration error: the bins' gaps weighted by their texts
    mce: float  # maximum calibration error: the largest gap of a non-empty bin
    confidence: float  # mean top-class probability over every text
    accuracy: float
    bins: tuple[ReliabilityBin, ...]

    @property
    def overconfident(self) -> bool:
        """Sure of itself more often than it is right, on average."""
        return self.confidence > self.accuracy

    def metrics(self) -> dict[str, float]:
        """The figures logged to MLflow (under `calibration/`)."""
        return {
            "ece": self.ece,
            "mce": self.mce,
            "mean_confidence": self.confidence,
            "accuracy": self.accuracy,
            "texts": float(self.texts),
        }

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "bins": [asdict(b) for b in self.bins]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibration:
        """The inverse of `to_dict` (a run's `calibration/reliability.json`)."""
        bins = tuple(ReliabilityBin(**entry) for entry in data["bins"])
        return cls(
            int(data["texts"]),
            float(data["ece"]),
            float(data["mce"]),
            float(data["confidence"]),
            float(data["accuracy"]),
            bins,
        )

    def summary(self) -> str:
        """One line: ECE, MCE, and which way the confidence leans."""
        lean = "over" if self.overconfident else "under"
        return (
            f"ECE {self.ece:.4f}, MCE {self.mce:.4f} over {self.texts} texts; mean confidence "
            f"{self.confidence:.4f} vs accuracy {self.accuracy:.4f} ({lean}confident)"
        )


def _bin_of(confidence: float, bins: int) -> int:
    """Bin i holds (i/bins, (i+1)/bins]; a confidence of 0 goes to the first."""
    return min(max(math.ceil(confidence * bins) - 1, 0), bins - 1)


def calibration(
    probabilities: Sequence[Sequence[float]],
    classes: Sequence[str],
    truth: Sequence[str],
    bins: int = BINS,
) -> Calibration:
    """The calibration of predictions `probabilities` (one row per text, one column per class of
    `classes`) against the true labels `truth`. A true label the model does not know counts as
    a mistake."""
    if bins < 1:
        raise ValueError(f"bins must be at least 1, not {bins}")
    if len(probabilities) != len(truth):
        raise ValueError(f"{len(probabilities)} rows of probabilities for {len(truth)} labels")
    if not truth:
        raise ValueError("no texts: calibration needs at least one labelled text")
    members: list[list[tuple[float, bool]]] = [[] for _ in range(bins)]
    for row, label in zip(probabilities, truth, strict=True):
        if len(row) != len(classes):
            raise ValueError(f"a row of {len(row)} probabilities for {len(classes)} classes")
        top = max(range(len(row)), key=lambda i: row[i])
        confidence = float(row[top])
        members[_bin_of(confidence, bins)].append((confidence, str(classes[top]) == str(label)))
    return _summarised(members, len(truth))


def _summarised(members: list[list[tuple[float, bool]]], texts: int) -> Calibration:
    bins = len(members)
    table = []
    for index, entries in enumerate(members):
        count = len(entries)
        table.append(
            ReliabilityBin(
                lower=index / bins,
                upper=(index + 1) / bins,
                count=count,
                confidence=sum(c for c, _ in entries) / count if count else 0.0,
                accuracy=sum(right for _, right in entries) / count if count else 0.0,
            )
        )
    filled = [b for b in table if b.count]
    return Calibration(
        texts=texts,
        ece=sum(b.count / texts * b.gap for b in filled),
        mce=max(b.gap for b in filled),
        confidence=sum(b.count * b.confidence for b in filled) / texts,
        accuracy=sum(b.count * b.accuracy for b in filled) / texts,
        bins=tuple(table),
    )


def calibrate(
    classifier: Any, texts: Sequence[str], truth: Sequence[str], bins: int = BINS
) -> Calibration:
    """A classifier with `predict_proba(texts)` and `labels` (a `TextClassifier`) on labelled
    texts."""
    proba = classifier.predict_proba(list(texts))
    rows = [[float(p) for p in row] for row in proba]
    return calibration(rows, [str(label) for label in classifier.labels], list(truth), bins)


# The diagram's geometry (SVG user units): the plot is a square, with room for the axes.
_SIZE, _LEFT, _BOTTOM, _TOP = 240, 44, 36, 26


def reliability_svg(result: Calibration, title: str = "Reliability diagram") -> str:
    """The reliability diagram as a standalone inline SVG (no script, no external reference):
    per bin, a bar up to its accuracy and, in the same column, a dot at its mean confidence (the
    gap between them is the bin's miscalibration), with the diagonal a calibrated model's bars
    would reach; empty bins drawn as nothing."""
    width, height = _LEFT + _SIZE + 12, _TOP + _SIZE + _BOTTOM

    def x(value: float) -> float:
        return _LEFT + value * _SIZE

    def y(value: float) -> float:
        return _TOP + (1 - value) * _SIZE

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(title)}">',
        f"<title>{html.escape(title)}: {html.escape(result.summary())}</title>",
        f'<rect x="{_LEFT}" y="{_TOP}" width="{_SIZE}" height="{_SIZE}" fill="#fafafa" '
        'stroke="#999"/>',
        f'<line x1="{x(0)}" y1="{y(0)}" x2="{x(1)}" y2="{y(1)}" stroke="#999" '
        'stroke-dasharray="4 3"/>',
    ]
    for entry in result.bins:
        if not entry.count:
            continue
        left, right = x(entry.lower) + 1, x(entry.upper) - 1
        parts.append(
            f'<rect x="{left:.1f}" y="{y(entry.accuracy):.1f}" width="{right - left:.1f}" '
            f'height="{y(0) - y(entry.accuracy):.1f}" fill="#26a69a" fill-opacity="0.75">'
            f"<title>{entry.lower:.1f}–{entry.upper:.1f}: {entry.count} texts, accuracy "
            f"{entry.accuracy:.3f}, confidence {entry.confidence:.3f}</title></rect>",
        )
        parts.append(
            f'<circle cx="{(left + right) / 2:.1f}" cy="{y(entry.confidence):.1f}" r="2.5" '
            'fill="#c62828"/>'
        )
    parts += _axes(x, y, result)
    parts.append("</svg>")
    return "".join(parts)


def _axes(x: Any, y: Any, result: Calibration) -> list[str]:
    """Tick labels, axis titles and the ECE over the plot."""
    text = 'font-family="sans-serif" font-size="10" fill="#333"'
    parts = []
    for tick in (0.0, 0.5, 1.0):
        parts.append(
            f'<text x="{x(tick)}" y="{y(0) + 13}" text-anchor="middle" {text}>{tick}</text>'
        )
        parts.append(
            f'<text x="{x(0) - 4}" y="{y(tick) + 3}" text-anchor="end" {text}>{tick}</text>'
        )
    parts += [
        f'<text x="{x(0.5)}" y="{y(0) + 28}" text-anchor="middle" {text}>confidence '
        "(top-class probability)</text>",
        f'<text x="12" y="{y(0.5)}" text-anchor="middle" transform="rotate(-90 12 {y(0.5)})" '
        f"{text}>accuracy</text>",
        f'<text x="{x(0)}" y="{_TOP - 8}" {text}>ECE {result.ece:.3f} · {result.texts} texts · '
        "bars: accuracy, dots: confidence</text>",
    ]
    return parts

"""One monitor run: every test over the window, live quality, and the verdict."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from modelyard.config import MonitorParams
from modelyard.inference import TextClassifier
from modelyard.monitoring import drift
from modelyard.monitoring.action import Action
from modelyard.monitoring.live import LiveQuality, live_quality


@dataclass(frozen=True)
class MonitorReport:
    model: str
    version: str
    window_start: datetime
    window_end: datetime
    predictions: int
    tests: list[drift.DriftTest] = field(default_factory=list)
    quality: LiveQuality | None = None
    notes: list[str] = field(default_factory=list)
    action: Action | None = None  # what this run did about a degradation

    @property
    def degraded(self) -> bool:
        return any(t.alarm for t in self.tests) or bool(self.quality and self.quality.alarm)

    @property
    def reasons(self) -> list[str]:
        found = [f"{t.name}: {t.detail}" for t in self.tests if t.alarm]
        if self.quality is not None and self.quality.alarm:
            found.append(f"live quality: {self.quality.detail}")
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "degraded": self.degraded,
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "predictions": self.predictions,
            "tests": [t.to_dict() for t in self.tests],
            "quality": None if self.quality is None else self.quality.to_dict(),
            "reasons": self.reasons,
            "notes": self.notes,
            "action": None if self.action is None else self.action.to_dict(),
        }

    def to_markdown(self) -> str:
        verdict = "**DEGRADED**" if self.degraded else "healthy"
        lines = [
            f"**{self.model} version {self.version}: {verdict}** — {self.predictions} "
            f"predictions from {self.window_start:%Y-%m-%d %H:%M} to "
            f"{self.window_end:%Y-%m-%d %H:%M} UTC",
            "",
            "| test | statistic | threshold | p-value | result | detail |",
            "|---|---|---|---|---|---|",
        ]
        for t in self.tests:
            p = "—" if t.p_value is None else f"{t.p_value:.3g}"
            lines.append(
                f"| {t.name} | {t.statistic:.4f} | {t.threshold:g} | {p} | "
                f"{'**ALARM**' if t.alarm else 'ok'} | {t.detail} |"
            )
        if self.quality is not None:
            p = "—" if self.quality.p_value is None else f"{self.quality.p_value:.3g}"
            lines.append(
                f"| live quality | {self.quality.accuracy or 0:.4f} | "
                f"-{self.quality.max_drop:g} | {p} | "
                f"{'**ALARM**' if self.quality.alarm else 'ok'} | "
                f"{self.quality.detail} |"
            )
        lines += [""] + [f"- {note}" for note in self.notes]
        if self.action is not None:
            lines += ["", f"**Action**: {self.action.kind.value} — {self.action.reason}"]
            if self.action.dataset:
                lines.append(f"- new dataset version `{self.action.dataset}`")
            if self.action.event:
                lines.append(f"- event `{self.action.event}` emitted")
        return "\n".join(lines)


def too_few_to_judge(predictions: int, policy: MonitorParams) -> str | None:
    """Why a window of `predictions` is not judged at all (a note for the report), or None
    when it is large enough: a handful of predictions would alarm on noise."""
    if predictions < policy.min_predictions:
        return (
            f"{predictions} predictions, fewer than monitor.min_predictions "
            f"({policy.min_predictions}): not judged"
        )
    return None


def assess(
    classifier: TextClassifier,
    reference: list[str] | None,
    current: pd.DataFrame,
    labelled: pd.DataFrame,
    policy: MonitorParams,
    reference_accuracy: float | None,
    reference_rows: int | None = None,
    seed: int = 0,
) -> tuple[list[drift.DriftTest], LiveQuality, list[str]]:
    """The tests for one window. `current`: the logged predictions (text — None when only hashes
    are kept —, label, probabilities); `labelled`: predicted and true label of those with
    feedback; `reference`: the serving version's training texts, if they can be read."""
    tests, notes = [], []
    rng = np.random.default_rng(seed)
    labels = list(classifier.labels)
    texts = current["text"].dropna().astype(str).tolist()
    if reference is None:
        notes.append(
            "the training data of this version could not be read: input drift and "
            "prediction drift vs training data skipped"
        )
    elif not texts:
        notes.append(
            "the prediction log keeps hashes only (privacy.mode: hashed): input drift skipped"
        )
    if reference is not None and texts:
        tests.append(
            drift.length_drift(
                drift.word_counts(reference), drift.word_counts(texts), policy.length_alpha
            )
        )
        tests.append(
            drift.oov_drift(
                drift.oov_rate(*classifier.out_of_vocabulary_counts(reference)),
                drift.oov_rate(*classifier.out_of_vocabulary_counts(texts)),
                policy.oov_max_increase,
            )
        )
        n = min(policy.sample_size, len(reference), len(texts))
        ref_sample = [reference[i] for i in rng.choice(len(reference), n, replace=False)]
        cur_sample = [texts[i] for i in rng.choice(len(texts), n, replace=False)]
        tests.append(
            drift.embedding_drift(
                classifier.embed(ref_sample),
                classifier.embed(cur_sample),
                policy.embedding_alpha,
                seed=seed,
            )
        )
    if reference is not None:
        n = min(policy.sample_size, len(reference))
        ref_sample = [reference[i] for i in rng.choice(len(reference), n, replace=False)]
        probabilities = classifier.predict_proba(ref_sample)
        ref_labels = [labels[i] for i in probabilities.argmax(axis=1)]
        tests.append(
            drift.class_mix_drift(
                labels, ref_labels, current["label"].tolist(), policy.class_mix_max_psi
            )
        )
        confidence = np.array([max(p.values()) for p in current["probabilities"]])
        tests.append(
            drift.confidence_drift(probabilities.max(axis=1), confidence, policy.confidence_alpha)
        )
    quality = live_quality(
        labelled["predicted"].tolist(),
        labelled["actual"].tolist(),
        labels,
        reference_accuracy,
        policy.min_feedback,
        policy.max_accuracy_drop,
        policy.quality_alpha,
        reference_rows,
    )
    return tests, quality, notes

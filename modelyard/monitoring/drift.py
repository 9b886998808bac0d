"""Drift statistics: pure functions of arrays, each returning the figure, a p-value or threshold
comparison, and whether it alarms. No I/O, no model loading: the monitor flow feeds them.

- text length: two-sample Kolmogorov-Smirnov on word counts;
- out-of-vocabulary rate: share of words the serving model's tokenizer cannot keep whole (split
  into pieces, or [UNK]), current minus reference;
- embeddings: maximum mean discrepancy between the model's own [CLS] embeddings of a reference
  sample and a current sample (RBF kernel, median-distance bandwidth), p-value by permutation;
- predictions: population stability index of the predicted class mix, and KS on confidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class DriftTest:
    name: str
    statistic: float
    threshold: float
    p_value: float | None
    alarm: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def word_counts(texts: Sequence[str]) -> np.ndarray:
    return np.fromiter((len(text.split()) for text in texts), dtype=np.int64, count=len(texts))


def length_drift(reference: np.ndarray, current: np.ndarray, alpha: float) -> DriftTest:
    from scipy.stats import ks_2samp

    result = ks_2samp(reference, current)
    alarm = bool(result.pvalue < alpha)
    return DriftTest(
        "text_length",
        float(result.statistic),
        alpha,
        float(result.pvalue),
        alarm,
        f"KS {result.statistic:.3f} (p={result.pvalue:.2g}); mean words "
        f"{reference.mean():.1f} → {current.mean():.1f}",
    )


def oov_rate(unknown_words: int, words: int) -> float:
    return unknown_words / words if words else 0.0


def oov_drift(reference_rate: float, current_rate: float, max_increase: float) -> DriftTest:
    increase = current_rate - reference_rate
    return DriftTest(
        "oov_rate",
        increase,
        max_increase,
        None,
        increase > max_increase,
        f"out-of-vocabulary words {reference_rate:.2%} → {current_rate:.2%}",
    )


def mmd2(kernel: np.ndarray, n: int) -> float:
    """Biased MMD² of the first `n` rows/columns of a joint kernel matrix against the rest."""
    xx, yy, xy = kernel[:n, :n], kernel[n:, n:], kernel[:n, n:]
    return float(xx.mean() + yy.mean() - 2 * xy.mean())


def embedding_drift(
    reference: np.ndarray, current: np.ndarray, alpha: float, permutations: int = 200, seed: int = 0
) -> DriftTest:
    """MMD with a permutation test: how often does a random split of the pooled sample look at
    least as different as the real one? One kernel matrix, permuted indices: cheap."""
    pooled = np.vstack([reference, current]).astype(np.float64)
    sq = (pooled * pooled).sum(1)
    distances = np.maximum(sq[:, None] + sq[None, :] - 2 * pooled @ pooled.T, 0.0)
    median = np.median(distances[np.triu_indices_from(distances, 1)])
    kernel = np.exp(-distances / max(median, 1e-12))
    n = len(reference)
    observed = mmd2(kernel, n)
    rng = np.random.default_rng(seed)
    exceed = 0
    for _ in range(permutations):
        order = rng.permutation(len(pooled))
        exceed += mmd2(kernel[np.ix_(order, order)], n) >= observed
    p_value = (exceed + 1) / (permutations + 1)
    return DriftTest(
        "embedding_mmd",
        observed,
        alpha,
        p_value,
        p_value < alpha,
        f"MMD² {observed:.4f} on {n}+{len(current)} [CLS] embeddings "
        f"(p={p_value:.3f}, {permutations} permutations)",
    )


def psi(reference: np.ndarray, current: np.ndarray, eps: float = 1e-4) -> float:
    """Population stability index of two distributions over the same categories."""
    p = np.clip(reference / reference.sum(), eps, None)
    q = np.clip(current / current.sum(), eps, None)
    return float(((q - p) * np.log(q / p)).sum())


def class_mix_drift(
    labels: Sequence[str], reference: Sequence[str], current: Sequence[str], max_psi: float
) -> DriftTest:
    ref = np.array([sum(1 for r in reference if r == label) for label in labels], float)
    cur = np.array([sum(1 for c in current if c == label) for label in labels], float)
    value = psi(ref, cur)
    mix = ", ".join(
        f"{label} {a / ref.sum():.0%}→{b / cur.sum():.0%}"
        for label, a, b in zip(labels, ref, cur, strict=True)
    )
    return DriftTest(
        "predicted_class_mix", value, max_psi, None, value > max_psi, f"PSI {value:.3f}; {mix}"
    )


def confidence_drift(reference: np.ndarray, current: np.ndarray, alpha: float) -> DriftTest:
    from scipy.stats import ks_2samp

    result = ks_2samp(reference, current)
    return DriftTest(
        "confidence",
        float(result.statistic),
        alpha,
        float(result.pvalue),
        bool(result.pvalue < alpha),
        f"mean top-class probability {reference.mean():.3f} → {current.mean():.3f}",
    )

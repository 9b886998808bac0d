"""A constructed binary, imbalanced dataset: a rare class marked, noisily, by a few words."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

COMMON, RARE = "common", "rare"
_WORDS = (
    "the order came on time and the box was fine thanks again for the quick reply i will use "
    "this shop next month my friend said it works well enough colour size fits price okay "
    "delivery courier parcel weekend morning evening store online app account"
)
_FILLER = _WORDS.split()
_SIGNAL = ("refund", "broken", "charged", "scam", "missing")


def imbalanced_frame(rows: int = 600, rare_share: float = 0.1, seed: int = 0) -> pd.DataFrame:
    """`text`/`label` rows, `rare_share` of them `rare`. A rare text holds a signal word with
    probability 0.7, a common one with 0.05: learnable, not trivially."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(rows):
        rare = rng.random() < rare_share
        words = list(rng.choice(_FILLER, size=int(rng.integers(6, 15))))
        if rng.random() < (0.7 if rare else 0.05):
            words.insert(int(rng.integers(0, len(words))), str(rng.choice(_SIGNAL)))
        texts.append(" ".join(words))
        labels.append(RARE if rare else COMMON)
    return pd.DataFrame({"text": texts, "label": labels})


def write_imbalanced_csv(
    path: Path, rows: int = 600, rare_share: float = 0.1, seed: int = 0
) -> Path:
    imbalanced_frame(rows, rare_share, seed).to_csv(path, index=False)
    return path

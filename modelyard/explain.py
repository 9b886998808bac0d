"""Why the model decided: token attributions by integrated gradients (Captum).

Integrated gradients attributes the *log-odds* of a class, `log(p / (1 - p))` (the logit of
its probability against every other class, `z_c - logsumexp(z_j, j != c)` on the model's
logits), to the input: it integrates the gradient of that log-odds along the straight line
from a baseline embedding (every word replaced by [PAD], [CLS]/[SEP] kept, so the model still
sees a well-formed, empty sentence) to the text's own word embeddings, and multiplies by the
difference. The attributions of a text sum to `f(text) - f(baseline)` (up to the integral's
discretisation error, reported as `delta`), so they read as "how much of the decision this word
carries", in log-odds: +1 multiplies the odds of the class by e (2.7), -1 divides them by it.
Positive: the word pushes towards the class; negative: away.

Why log-odds and not the probability: a probability saturates. On a confident model the empty
baseline is often already at p = 0.99 for the majority class, so the words of a p = 0.999 text
share 0.009 between them and every driver of that class reads as nothing, however strong it
is. The log-odds goes on growing with the evidence (4.6 at p = 0.99, 6.9 at p = 0.999), so a word
that makes the model surer gets a visible share.

We attribute on the word embeddings through `inputs_embeds` rather than with a layer hook: a
hook on the shared embedding layer would alter the forward passes a server runs concurrently
for `/predict`. Sub-word pieces are summed into the words they came from (a person reads
words, not `##ing`). Deterministic: the model is in eval mode (no dropout) and the path is
fixed.
"""

from __future__ import annotations

import html
import math
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from modelyard.config import ExplainParams

# What the attributions are of, as every rendering names it.
QUANTITY = "log-odds"
QUANTITY_FORMULA = "log(p / (1 − p))"

# English function words: they carry grammar, not the decision, and crowd a "drivers" table.
# Negations, contrasts and degree words (not, no, never, but, very, too, only, without, more,
# less...) are left out of this list on purpose: they change what a sentence says.
_STOP_WORDS = """
    a an the and or if then than so as of at by for from in into on onto to with about above
    after before below between during over under through up down off out again further once here
    there when where why how all any both each other some such own same i me my myself we us our
    ours ourselves you your yours yourself yourselves he him his himself she her hers herself it
    its itself they them their theirs themselves what which who whom whose this that these those
    am is are was were be been being have has had having do does did doing will would shall
    should can could may might must just also s t d ll m re ve"""
STOP_WORDS = frozenset(_STOP_WORDS.split())


def word_kind(word: str) -> str:
    """The word's kind: "punctuation" (only punctuation or symbols), "stop word" (one of
    `STOP_WORDS`) or "word"."""
    if word and all(unicodedata.category(c)[0] in "PS" for c in word):
        return "punctuation"
    return "stop word" if word.lower() in STOP_WORDS else "word"


@dataclass(frozen=True)
class TokenAttribution:
    token: str  # the word as written in the text
    start: int  # character offsets in the text
    end: int
    attribution: float  # its share of f(text) - f(baseline), in log-odds of `label`

    @property
    def kind(self) -> str:
        return word_kind(self.token)


@dataclass(frozen=True)
class Explanation:
    text: str
    label: str  # the class explained (by default the predicted one)
    predicted: str
    probability: float  # of `label`
    tokens: list[TokenAttribution] = field(default_factory=list)
    # Completeness error of the integral: |sum(attributions) - (score - baseline_score)|.
    delta: float = 0.0
    truncated: bool = False  # the text was longer than the model reads; the rest is unscored
    score: float = 0.0  # f(text): the log-odds of `label` for the text
    baseline_score: float = 0.0  # f(baseline): the same for the all-[PAD] baseline
    predicted_probability: float = 0.0  # of `predicted`
    quantity: str = QUANTITY

    def ranked(self) -> list[TokenAttribution]:
        """Tokens from the most to the least supportive of `label`."""
        return sorted(self.tokens, key=lambda t: -t.attribution)

    def total(self) -> float:
        """The attributions' sum: f(text) - f(baseline) up to `delta`."""
        return sum(t.attribution for t in self.tokens)

    def heading(self, true: str | None = None) -> str:
        """`predicted X (p=…)`, the true class when known, the class explained when another."""
        out = f"predicted {self.predicted} (p={self.predicted_probability:.3f})"
        if true is not None:
            out += f", true {true}"
        if self.label != self.predicted:
            out += f"; explaining {self.label} (p={self.probability:.3f})"
        return out

    def completeness(self) -> str:
        """The check a reader can redo: the attributions add up to f(text) − f(baseline)."""
        return (
            f"sum of attributions {self.total():+.3f} = f(text) {self.score:+.3f} − "
            f"f(baseline) {self.baseline_score:+.3f} (delta {self.delta:.3f}), "
            f"f = {self.quantity} of {self.label}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "label": self.label,
            "predicted": self.predicted,
            "probability": self.probability,
            "predicted_probability": self.predicted_probability,
            "quantity": self.quantity,
            "score": self.score,
            "baseline_score": self.baseline_score,
            "delta": self.delta,
            "truncated": self.truncated,
            "tokens": [{**asdict(t), "kind": t.kind} for t in self.tokens],
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


def log_odds(logits: torch.Tensor) -> torch.Tensor:
    """Each class's log-odds against all the others, `z_c - logsumexp(z_j, j != c)`, from
    logits (rows × classes): `log(p / (1 - p))` without computing `1 - p`, which rounds to 0
    on a confident model."""
    import torch

    logits = logits.float()
    classes = logits.shape[-1]
    others = logits.unsqueeze(-2).expand(*logits.shape[:-1], classes, classes)
    mask = torch.eye(classes, dtype=torch.bool, device=logits.device)
    return logits - torch.logsumexp(others.masked_fill(mask, float("-inf")), dim=-1)


# Rows × tokens of one forward and backward pass: a single text at the default 128 tokens and
# 32 steps, so explaining several short texts at once never needs more memory than one long one.
TOKENS_PER_PASS = 4096


class Explainer:
    """Integrated-gradients attributions of the class log-odds for one classifier (a
    `TextClassifier`)."""

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
            logits = model(inputs_embeds=inputs, attention_mask=mask).logits.float()
            base_logits = model(inputs_embeds=baseline, attention_mask=mask).logits.float()
        probs = torch.softmax(logits, -1)
        predicted = probs.argmax(dim=-1).tolist()
        targets = [
            p if label is None else labels.index(label)
            for p, label in zip(predicted, wanted, strict=True)
        ]
        per_piece, delta = self._integrate(inputs, baseline, mask, targets, len(texts))
        scores, base_scores = log_odds(logits), log_odds(base_logits)
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
                    float(delta[row]),
                    truncated=bool(text[covered:].strip()),
                    score=float(scores[row, target]),
                    baseline_score=float(base_scores[row, target]),
                    predicted_probability=float(probs[row, predicted[row]]),
                )
            )
        return out

    def _integrate(
        self,
        inputs: torch.Tensor,
        baseline: torch.Tensor,
        mask: torch.Tensor,
        targets: list[int],
        rows: int,
    ) -> tuple[list[list[float]], list[float]]:
        """Integrated gradients of each row's target log-odds: one number per piece (the
        embedding dimensions' attributions add up) and each row's |completeness error|."""
        import torch
        from captum.attr import IntegratedGradients

        model = self.classifier.model

        def forward(embeddings: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
            return log_odds(model(inputs_embeds=embeddings, attention_mask=attention).logits)

        with torch.enable_grad():
            attributions, delta = IntegratedGradients(forward).attribute(
                inputs,
                baselines=baseline,
                target=targets,
                additional_forward_args=(mask,),
                n_steps=self.n_steps,
                internal_batch_size=self.n_steps * rows,
                return_convergence_delta=True,
            )
        per_piece = attributions.sum(dim=-1).detach().cpu().tolist()
        return per_piece, delta.abs().detach().cpu().tolist()


# Rendering -------------------------------------------------------------------------------

# One absolute colour scale for every rendering: full colour at ±COLOUR_SCALE log-odds (the
# odds of the class multiplied or divided by e², 7.4) or beyond, none under FAINT of that. A
# faint word is faint everywhere, whatever its neighbours: a text whose attributions are all
# near 0 stays uncoloured instead of being stretched to full colour.
COLOUR_SCALE = 2.0
FAINT = 0.05


def _weight(attribution: float) -> float:
    return min(abs(attribution) / COLOUR_SCALE, 1.0)


def _background(attribution: float) -> str:
    rgb = "0,160,0" if attribution >= 0 else "220,0,0"
    weight = _weight(attribution)
    return f"rgba({rgb},{0.8 * weight if weight > FAINT else 0:.2f})"


def to_rich_text(explanation: Explanation) -> Any:
    """The text with each word on a background: green pushes towards the class, red away,
    the stronger the deeper, on the absolute scale of `COLOUR_SCALE` log-odds."""
    from rich.text import Text

    out, cursor = Text(), 0
    for token in explanation.tokens:
        out.append(explanation.text[cursor : token.start])
        weight = _weight(token.attribution)
        level = int(55 + 200 * weight)
        colour = f"rgb(0,{level},0)" if token.attribution >= 0 else f"rgb({level},0,0)"
        out.append(token.token, style=f"bold white on {colour}" if weight > FAINT else "")
        cursor = token.end
    out.append(explanation.text[cursor:])
    return out


def legend_html() -> str:
    """What the colours mean, with swatches on the scale every word is coloured on."""
    swatches = " ".join(
        f'<i style="font-style:normal;padding:0 4px;border-radius:3px;'
        f'background:{_background(value)}">{value:+g}</i>'
        for value in (-COLOUR_SCALE, -COLOUR_SCALE / 4, COLOUR_SCALE / 4, COLOUR_SCALE)
    )
    return (
        '<div class="modelyard-legend" style="font-size:smaller;margin:.3em 0">'
        f"Colour: each word's share of the {QUANTITY} of the class explained, "
        f"{QUANTITY_FORMULA}, on one scale: {swatches}. <b>Green</b> pushes towards the class, "
        f"<b>red</b> away from it; full colour at ±{COLOUR_SCALE:g} or beyond (the odds "
        f"×/÷ {math.exp(COLOUR_SCALE):.1f}), no colour under ±{FAINT * COLOUR_SCALE:g}. "
        "Dotted underline: a stop word or punctuation (left out of the drivers). Hover a word "
        "for its value.</div>"
    )


def _tokens_html(explanation: Explanation) -> str:
    parts, cursor = [], 0
    for token in explanation.tokens:
        parts.append(html.escape(explanation.text[cursor : token.start]))
        kind = token.kind
        underline = "" if kind == "word" else ";text-decoration:underline dotted #666"
        note = "" if kind == "word" else f" ({kind})"
        parts.append(
            f'<span title="{token.attribution:+.4f} {QUANTITY}{note}" style="background:'
            f'{_background(token.attribution)};padding:0 2px;border-radius:3px{underline}">'
            f"{html.escape(token.token)}</span>"
        )
        cursor = token.end
    parts.append(html.escape(explanation.text[cursor:]))
    return "".join(parts)


def to_html(explanation: Explanation, true: str | None = None, legend: bool = True) -> str:
    """A self-contained HTML snippet (inline styles only, so it survives any artifact viewer):
    `predicted X (p=…)[, true Y]`, the text coloured on the absolute scale, the completeness
    check and (unless `legend` is False: a page that shows it once) what the colours mean."""
    return (
        f'<div class="modelyard-explanation"><div><b>{html.escape(explanation.heading(true))}'
        f"</b></div><p>{_tokens_html(explanation)}</p>"
        f"<div><small>{html.escape(explanation.completeness())}"
        f"{' (the text was cut: the rest is unscored)' if explanation.truncated else ''}"
        f"</small></div>{legend_html() if legend else ''}</div>"
    )


# The evaluation-time report ---------------------------------------------------------------


@dataclass(frozen=True)
class ClassDrivers:
    label: str
    explained: int  # texts predicted as `label` that were explained
    # (word, total attribution toward `label` in log-odds, occurrences), strongest first;
    # stop words and punctuation are not ranked
    tokens: list[tuple[str, float, int]]
    # The stop words and punctuation with the largest total |attribution|, shown apart
    left_out: list[tuple[str, float, int]] = field(default_factory=list)


_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:62em;margin:1em auto;padding:0 1em;"
    "line-height:1.45;color:#222}table{border-collapse:collapse;margin:.5em 0}"
    "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}"
    "th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}"
    ".modelyard-explanation{margin:.4em 0 1em}.modelyard-explanation p{margin:.3em 0}"
)


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
            f"{self.test_texts} test texts, up to the first of each predicted class, "
            f"attributing the {QUANTITY} of the class, {QUANTITY_FORMULA}, from an all-[PAD] "
            f"baseline; each text's attributions add up to f(text) − f(baseline), mean "
            f"completeness error {self.mean_delta:.3f} ({QUANTITY})"
        )

    def headline(self, words: int = 3) -> str:
        """Each class with its strongest words, in one line (for a log)."""
        return "; ".join(
            f"{d.label}: {', '.join(w for w, _, _ in d.tokens[:words])}" for d in self.drivers
        )

    def to_dict(self) -> dict[str, Any]:
        def words(rows: list[tuple[str, float, int]]) -> list[dict[str, Any]]:
            return [{"token": w, "attribution": a, "count": n} for w, a, n in rows]

        return {
            "n_steps": self.n_steps,
            "test_texts": self.test_texts,
            "mean_delta": self.mean_delta,
            "quantity": QUANTITY,
            "colour_scale": COLOUR_SCALE,
            "classes": [
                {
                    "label": d.label,
                    "explained": d.explained,
                    "tokens": words(d.tokens),
                    "left_out": words(d.left_out),
                }
                for d in self.drivers
            ],
            "worst_misclassified": [{"true": true, **e.to_dict()} for true, e in self.worst],
        }

    def to_markdown(self) -> str:
        lines = [self.method(), "", "## What drives each class (test split)", ""]
        lines.append(
            f"Total {QUANTITY} toward the class (×occurrences); stop words and "
            "punctuation left out."
        )
        lines.append("")
        for d in self.drivers:
            words = ", ".join(f"`{w}` {a:+.3f} (×{n})" for w, a, n in d.tokens) or "—"
            lines.append(f"- **{d.label}** ({d.explained} texts): {words}")
        lines += [
            "",
            "## Most confident mistakes",
            "",
            f"| true | predicted (p) | strongest words ({QUANTITY}) | sum = f(text) − f(base) |",
            "|---|---|---|---|",
        ]
        for true, e in self.worst:
            top = ", ".join(f"`{t.token}` {t.attribution:+.3f}" for t in e.ranked()[:4])
            lines.append(
                f"| {true} | {e.predicted} ({e.predicted_probability:.3f}) | {top} | "
                f"{e.total():+.2f} = {e.score:+.2f} − ({e.baseline_score:+.2f}), "
                f"delta {e.delta:.3f} |"
            )
        if not self.worst:
            lines.append("| — | — | no misclassified test text | — |")
        return "\n".join(lines)

    def to_html(self, title: str = f"What drives each class's {QUANTITY}") -> str:
        """One self-contained page (inline styles, no scripts, no links): it reads the same
        from disk, offline, and inside MLflow's artifact viewer."""
        worst = (
            "".join(f"<li>{to_html(e, true, legend=False)}</li>" for true, e in self.worst)
            or "<li>no misclassified test text</li>"
        )
        return (
            f"<!doctype html><html lang=en><head><meta charset=utf-8>"
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><p>{html.escape(self.method())}</p>{legend_html()}"
            "<h2>What drives each class (test split)</h2>"
            f"<p>Per class, the words with the largest total {QUANTITY} toward it over the "
            "test texts predicted as it; coloured by their mean per occurrence. Stop words and "
            "punctuation are not ranked: the strongest of them are listed apart.</p>"
            f"{''.join(_drivers_html(d) for d in self.drivers)}"
            f"<h2>Most confident mistakes</h2><ol>{worst}</ol></body></html>"
        )


def report_title(model: str, run_id: str) -> str:
    """The report's heading: whose predictions, and what is attributed."""
    return (
        f"{model}, candidate of MLflow run {run_id}: what drives each class's {QUANTITY} "
        "(integrated gradients)"
    )


def _drivers_html(drivers: ClassDrivers) -> str:
    def row(word: str, total: float, count: int) -> str:
        mean = total / count if count else 0.0
        return (
            f'<tr><td><span style="background:{_background(mean)};padding:0 3px;'
            f'border-radius:3px">{html.escape(word)}</span></td><td class=n>{total:+.3f}</td>'
            f"<td class=n>{count}</td><td class=n>{mean:+.3f}</td></tr>"
        )

    rows = "".join(row(*entry) for entry in drivers.tokens) or (
        "<tr><td colspan=4>no text predicted as this class</td></tr>"
    )
    apart = ", ".join(
        f"{html.escape(w)} <small>{a:+.3f} ×{n}</small>" for w, a, n in drivers.left_out
    )
    return (
        f"<h3>{html.escape(drivers.label)} <small>({drivers.explained} texts)</small></h3>"
        f"<table><tr><th>word</th><th>total</th><th>occurrences</th><th>mean</th></tr>{rows}"
        "</table>"
        + (
            f"<p><small>Stop words and punctuation, not ranked: {apart}</small></p>"
            if apart
            else ""
        )
    )


def _drivers(label: str, explained: Sequence[Explanation], top_tokens: int) -> ClassDrivers:
    """The words with the largest total attribution toward `label` over `explained`."""
    totals: dict[str, list[float]] = {}
    for explanation in explained:
        for token in explanation.tokens:
            entry = totals.setdefault(token.token.lower(), [0.0, 0])
            entry[0] += token.attribution
            entry[1] += 1
    ranked = [
        (w, a, int(n)) for w, (a, n) in sorted(totals.items(), key=lambda kv: (-kv[1][0], kv[0]))
    ]
    words = [entry for entry in ranked if word_kind(entry[0]) == "word"]
    apart = sorted(
        (entry for entry in ranked if word_kind(entry[0]) != "word"),
        key=lambda e: (-abs(e[1]), e[0]),
    )
    return ClassDrivers(label, len(explained), words[:top_tokens], apart[:3])


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
    drivers = [
        _drivers(label, [explained[i] for i in chosen[index]], top_tokens)
        for index, label in enumerate(classes)
    ]
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

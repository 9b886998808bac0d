"""Model tests of the explanations: a tiny BERT trained on constructed texts whose class is
decided by one keyword among neutral filler words; integrated gradients must rank that keyword
first, the same way every time, and the attributions must add up."""

from __future__ import annotations

import copy
import html
import math
import random
import re
import tempfile
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import torch

from modelyard.data.dataset import Splits
from modelyard.explain import (
    Explainer,
    explanation_report,
    to_html,
    to_rich_text,
    word_kind,
)
from modelyard.inference import TextClassifier
from modelyard.training.fit import fit
from tests.helpers.html_reports import assert_self_contained

FILLER = [
    "the",
    "a",
    "we",
    "it",
    "this",
    "that",
    "order",
    "box",
    "arrived",
    "on",
    "monday",
    "tuesday",
    "after",
    "before",
    "with",
    "our",
    "my",
    "their",
    "store",
    "staff",
    "item",
    "package",
    "came",
    "was",
    "is",
]
KEYWORDS = {
    "negative": ("terrible", "awful"),
    "neutral": ("okay", "average"),
    "positive": ("excellent", "wonderful"),
}


def keyword_texts(rows: int, seed: int) -> pd.DataFrame:
    rng = random.Random(seed)
    out = []
    for _ in range(rows):
        label = rng.choice(sorted(KEYWORDS))
        words = [rng.choice(FILLER) for _ in range(rng.randint(5, 10))]
        words.insert(rng.randint(0, len(words)), rng.choice(KEYWORDS[label]))
        out.append({"text": " ".join(words), "label": label})
    return pd.DataFrame(out)


@pytest.fixture(scope="module")
def explainer(tiny_params):
    params = tiny_params.updated({"train.epochs": 10})
    splits = Splits(keyword_texts(600, 1), keyword_texts(90, 2), keyword_texts(90, 3))
    trained = fit(splits, params, Path(tempfile.mkdtemp()) / "model", progress=False)
    assert trained.result.history[-1]["val_accuracy"] >= 0.95  # it learned the rule
    return Explainer(TextClassifier.load(trained.model_dir), n_steps=32)


OBVIOUS = [
    ("the order arrived on monday, it was excellent", "positive", "excellent"),
    ("wonderful item from the store", "positive", "wonderful"),
    ("our package came tuesday, awful", "negative", "awful"),
    ("terrible staff at the store after my order", "negative", "terrible"),
    ("awful", "negative", "awful"),
]
# Neutral texts carry a keyword too, but the model learns what a person would: no positive or
# negative word means neutral (an empty text is already neutral, p≈0.6), so "okay" adds little
# and is not a decisive word. Only the classes that need their word are tested for it.


@pytest.mark.parametrize(("text", "label", "decisive"), OBVIOUS)
def test_the_decisive_word_ranks_first(explainer, text, label, decisive):
    explanation = explainer.explain(text)
    assert explanation.predicted == explanation.label == label
    ranked = explanation.ranked()
    assert ranked[0].token == decisive
    # Well clear of the rest, not a near tie.
    assert ranked[0].attribution > 3 * max((abs(t.attribution) for t in ranked[1:]), default=0)
    # Offsets point back into the text, words in order.
    assert [text[t.start : t.end] for t in explanation.tokens] == [
        t.token for t in explanation.tokens
    ]
    assert [t.start for t in explanation.tokens] == sorted(t.start for t in explanation.tokens)


def test_explaining_another_class_turns_the_keyword_against_it(explainer):
    explanation = explainer.explain(
        "the order arrived on monday, it was excellent", label="negative"
    )
    assert explanation.label == "negative" and explanation.predicted == "positive"
    assert min(explanation.tokens, key=lambda t: t.attribution).token == "excellent"


def test_attributions_are_deterministic_and_complete(explainer):
    text = "our package came tuesday, awful"
    first, second = explainer.explain(text), explainer.explain(text)
    assert first == second
    # Completeness: the words' attributions (+[CLS]/[SEP], which stay in the baseline) add up to
    # p(class | text) - p(class | baseline) up to the integral's error.
    assert first.delta < 0.05  # of a probability difference near 0.85 here
    with pytest.raises(ValueError, match="not one of the model's classes"):
        explainer.explain(text, label="spam")


def test_explaining_many_at_once_matches_one_at_a_time(explainer):
    texts = [text for text, _, _ in OBVIOUS] + [
        "terrible " + " ".join(FILLER * 2),
        "",
    ]  # a long text pads the short ones; an empty one
    labels = [None, "negative", None, "positive", None, "neutral", None]
    together = explainer.explain_many(texts, labels)
    assert [e.text for e in together] == texts
    for both, alone in zip(
        together,
        (explainer.explain(t, lab) for t, lab in zip(texts, labels, strict=True)),
        strict=True,
    ):
        assert (both.label, both.predicted, both.truncated) == (
            alone.label,
            alone.predicted,
            alone.truncated,
        )
        assert [(t.token, t.start, t.end) for t in both.tokens] == [
            (t.token, t.start, t.end) for t in alone.tokens
        ]
        # Padding is masked: a neighbour changes nothing beyond float rounding.
        assert [t.attribution for t in both.tokens] == pytest.approx(
            [t.attribution for t in alone.tokens], abs=1e-5
        )
        assert both.probability == pytest.approx(alone.probability, abs=1e-5)
    assert explainer.explain_many([]) == []
    with pytest.raises(ValueError, match="2 texts but 1 labels"):
        explainer.explain_many(["awful", "okay"], ["negative"])


def test_renderings(explainer):
    explanation = explainer.explain("<b>excellent</b> & wonderful")
    snippet = to_html(explanation)
    body = snippet.split("<p>", 1)[1].rsplit("</p>", 1)[0]
    # The text's own markup is escaped: stripping our spans gives back exactly the text.
    assert html.unescape(re.sub(r"<[^>]+>", "", body)) == explanation.text
    assert "&lt;" in body and "&amp;" in body
    assert snippet.count("<span") == len(explanation.tokens)
    assert to_rich_text(explanation).plain == explanation.text


def test_report_names_each_class_keywords_and_the_worst_mistakes(explainer):
    test = keyword_texts(120, 4)
    # Two texts labelled against their keyword: the model is confidently "wrong" on them.
    test.loc[0, "label"] = "negative" if test.loc[0, "label"] != "negative" else "positive"
    report = explanation_report(
        explainer,
        test["text"].tolist(),
        test["label"].tolist(),
        per_class=20,
        top_tokens=5,
        worst=3,
    )
    for drivers in report.drivers:
        if drivers.label == "neutral":
            continue
        assert {w for w, _, _ in drivers.tokens[:2]} == set(KEYWORDS[drivers.label])
        assert drivers.explained == 20
    assert report.worst and report.worst[0][1].text == test.loc[0, "text"]
    assert "Most confident mistakes" in report.to_markdown()
    # The report says how it was made: method, steps, how many texts of how many, the error.
    assert report.to_markdown().startswith(
        f"Integrated gradients ({explainer.n_steps} steps) on "
        f"{sum(d.explained for d in report.drivers)} of {len(test)} test texts"
    )
    # Completeness error in log-odds now: each text's f(text) - f(baseline) is about 4 to 5
    # here, so this bounds the error under about 10% (it was 0.25 of a probability difference).
    assert 0 < report.mean_delta < 0.5 and report.to_dict()["n_steps"] == explainer.n_steps
    assert report.to_dict()["classes"][0]["tokens"][0]["count"] >= 1
    # Stop words and punctuation are not ranked among the drivers (they are listed apart).
    for drivers in report.drivers:
        assert all(word_kind(w) == "word" for w, _, _ in drivers.tokens)
        assert all(word_kind(w) != "word" for w, _, _ in drivers.left_out)
    true, mistake = report.worst[0]
    page = report.to_html()
    assert page.startswith("<!doctype html>")
    # What a person reads: the quantity, the legend, who was right, the completeness check.
    assert "log-odds of the class, log(p / (1 − p))" in page
    assert "<b>Green</b> pushes towards the class, <b>red</b> away from it" in page
    assert page.count("modelyard-legend") == 1  # one scale for the whole report
    assert (
        f"predicted {mistake.predicted} (p={mistake.predicted_probability:.3f}), true {true}"
        in page
    )
    assert html.escape(mistake.completeness()) in page and "delta" in mistake.completeness()


def test_the_report_is_one_self_contained_page(explainer, tmp_path):
    test = keyword_texts(30, 5)
    test.loc[0, "label"] = "negative" if test.loc[0, "label"] != "negative" else "positive"
    report = explanation_report(explainer, test["text"].tolist(), test["label"].tolist(), 4, 3, 2)
    (tmp_path / "report.html").write_text(report.to_html(), encoding="utf-8")
    assert_self_contained(
        tmp_path / "report.html", "What drives each class", "Most confident mistakes", ", true "
    )


def test_colours_are_on_one_absolute_scale(explainer):
    """A word's colour depends on its own attribution, not on its neighbours': attributions
    near 0 stay uncoloured however they compare with each other."""
    explanation = explainer.explain("the order arrived on monday, it was excellent")
    faint = replace(
        explanation,
        tokens=[replace(t, attribution=t.attribution / 1000) for t in explanation.tokens],
    )
    snippet = to_html(faint, legend=False)
    assert "rgba(0,160,0,0.00)" in snippet and re.search(r"0\.[1-9]\d\)", snippet) is None
    # The keyword: at or beyond the full scale, full colour.
    assert "rgba(0,160,0,0.80)" in to_html(explanation, legend=False)
    assert all(
        not span.style for span in to_rich_text(faint).spans
    )  # nothing coloured in the terminal either


def test_a_confident_majority_class_still_has_drivers(explainer):
    """The issue this guards: on a model sure of its majority class even before it reads a
    word (what training on a mostly positive set gives), the class probability hardly moves
    from the empty baseline to a text (0.99 -> 0.9999), so probability attributions of that
    class are all near 0. Its log-odds keeps growing with the evidence: its keywords still
    drive it, by as much as before the prior was raised."""
    classifier = explainer.classifier
    model = copy.deepcopy(classifier.model)
    positive = classifier.labels.index("positive")
    with torch.no_grad():  # the prior: +8 on the positive logit, whatever the text
        model.classifier.bias[positive] += 8.0
    confident = Explainer(TextClassifier(model, classifier.tokenizer, "cpu"), explainer.n_steps)
    rng = random.Random(6)
    texts = [
        " ".join([*rng.sample(FILLER, 6), rng.choice(KEYWORDS["positive"])]) for _ in range(16)
    ] + ["terrible " + " ".join(rng.sample(FILLER, 6)) for _ in range(4)]  # a minority
    labels = ["positive"] * 16 + ["negative"] * 4

    empty = confident.explain("", "positive")
    assert empty.probability > 0.99  # the baseline alone is sure
    report = explanation_report(confident, texts, labels, per_class=16, top_tokens=3, worst=0)
    drivers = next(d for d in report.drivers if d.label == "positive")
    assert drivers.explained == 16
    assert {w for w, _, _ in drivers.tokens[:2]} == set(KEYWORDS["positive"])
    for word, total, count in drivers.tokens[:2]:
        assert total / count > 1.0, word  # each occurrence multiplies the odds by e or more
    explained = confident.explain_many(texts[:16], ["positive"] * 16)
    plain = explainer.explain_many(texts[:16], ["positive"] * 16)
    for sure, before in zip(explained, plain, strict=True):
        # What probability attributions would have shared: under 0.01 of a probability.
        assert sure.probability - 1 / (1 + math.exp(-sure.baseline_score)) < 0.01
        # Log-odds attributions: the prior shifts f(text) and f(baseline) alike.
        assert [t.attribution for t in sure.tokens] == pytest.approx(
            [t.attribution for t in before.tokens], abs=1e-3
        )
        assert abs(sure.total() - (sure.score - sure.baseline_score)) == pytest.approx(
            sure.delta, abs=1e-4
        )

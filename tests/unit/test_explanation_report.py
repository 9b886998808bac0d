"""The retrain's explanation report as the task logs it, without a model or Prefect: made as
`explain.report_*` says, and summed up in one log line."""

from __future__ import annotations

from modelyard import explain
from modelyard.config import ExplainParams
from modelyard.explain import ClassDrivers, ExplanationReport, report_on


def test_the_headline_names_each_class_strongest_words():
    report = ExplanationReport(
        [
            ClassDrivers(
                "negative",
                3,
                [("awful", 0.9, 2), ("bad", 0.5, 1), ("late", 0.2, 1), ("box", 0.1, 1)],
            ),
            ClassDrivers("positive", 0, []),
        ],
        [],
    )
    assert report.headline() == "negative: awful, bad, late; positive: "
    assert report.headline(words=1) == "negative: awful; positive: "


def test_the_report_is_made_as_the_explain_params_say(monkeypatch):
    made = {}

    def explanation_report(explainer, texts, labels, per_class, top_tokens, worst):
        made.update(
            classifier=explainer.classifier,
            n_steps=explainer.n_steps,
            texts=texts,
            labels=labels,
            per_class=per_class,
            top_tokens=top_tokens,
            worst=worst,
        )
        return ExplanationReport([], [])

    monkeypatch.setattr(explain, "explanation_report", explanation_report)
    params = ExplainParams(
        report_n_steps=8, report_texts_per_class=5, report_top_tokens=4, report_worst=2
    )
    report_on("the classifier", ["a"], ["positive"], params)
    assert made == {
        "classifier": "the classifier",
        "n_steps": 8,
        "texts": ["a"],
        "labels": ["positive"],
        "per_class": 5,
        "top_tokens": 4,
        "worst": 2,
    }

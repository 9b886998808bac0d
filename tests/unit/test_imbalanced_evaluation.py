"""Binary and imbalanced tasks: per-class figures, the positive class's ROC-AUC and PR-AUC, the
two baselines, the gate rules that use them, the config errors, the class weights."""

from __future__ import annotations

import numpy as np
import pytest

from modelyard.config import ConfigError, GateParams, Params
from modelyard.evaluation.baselines import (
    BAG_OF_WORDS,
    MAJORITY,
    BagOfWordsClassifier,
    MajorityClassifier,
    score_baselines,
)
from modelyard.evaluation.gate import decide
from modelyard.evaluation.metrics import classification_metrics, score
from modelyard.training.loop import class_weights

BINARY = Params().updated({"data.labels": ["common", "rare"]})


class Fixed:
    """A classifier with given probabilities of `rare`, one per text in order."""

    def __init__(self, rare: list[float]) -> None:
        self.labels = ["common", "rare"]
        self.rare = dict(enumerate(rare))

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        p = np.array([self.rare[int(t)] for t in texts])
        return np.stack([1 - p, p], axis=1)


# --- metrics ---------------------------------------------------------------------------------


def test_auc_of_the_positive_class_matches_scikit_learn():
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(0)
    truth = ["rare" if x < 0.15 else "common" for x in rng.random(200)]
    rare = [float(np.clip(0.3 * (t == "rare") + rng.normal(0.3, 0.2), 0, 1)) for t in truth]
    texts = [str(i) for i in range(len(truth))]
    metrics = score(Fixed(rare), texts, truth, ["common", "rare"], positive="rare")
    positive = [t == "rare" for t in truth]
    assert metrics.positive_label == "rare"
    assert metrics.roc_auc == pytest.approx(roc_auc_score(positive, rare))
    assert metrics.pr_auc == pytest.approx(average_precision_score(positive, rare))
    # The other class as positive: the same ROC-AUC (p and 1 - p), another PR-AUC.
    other = score(Fixed(rare), texts, truth, ["common", "rare"], positive="common")
    assert other.roc_auc == pytest.approx(metrics.roc_auc)
    common = [1 - p for p in rare]
    assert other.pr_auc == pytest.approx(average_precision_score([not p for p in positive], common))
    # The labels are the probabilities' argmax.
    predicted = ["rare" if p > 0.5 else "common" for p in rare]
    assert metrics.accuracy == pytest.approx(
        np.mean([a == b for a, b in zip(truth, predicted, strict=True)])
    )


def test_headline_has_every_class_figure_and_the_aucs():
    metrics = classification_metrics(
        ["common", "common", "common", "rare"],
        ["common", "common", "rare", "rare"],
        ["common", "rare"],
        positive_scores=[0.1, 0.2, 0.7, 0.9],
        positive="rare",
    )
    flat = metrics.headline()
    assert flat["precision_rare"] == 0.5 and flat["recall_rare"] == 1.0
    assert flat["f1_rare"] == pytest.approx(2 / 3)
    assert flat["precision_common"] == 1.0 and flat["recall_common"] == pytest.approx(2 / 3)
    assert flat["roc_auc"] == 1.0 and flat["pr_auc"] == 1.0


def test_no_auc_without_a_positive_class_or_with_one_side_only():
    plain = classification_metrics(["a", "b"], ["a", "b"], ["a", "b"])
    assert plain.roc_auc is None and "roc_auc" not in plain.headline()
    one_side = classification_metrics(["a", "a"], ["a", "b"], ["a", "b"], [0.2, 0.9], "b")
    assert one_side.pr_auc is None and "pr_auc" not in one_side.headline()


# --- baselines -------------------------------------------------------------------------------


def test_majority_baseline_has_no_skill_on_the_curves():
    model = MajorityClassifier(["common", "rare"], ["common"] * 8 + ["rare"] * 2)
    truth = ["common"] * 6 + ["rare"] * 4
    metrics = score(model, ["t"] * 10, truth, ["common", "rare"], positive="rare")
    assert metrics.accuracy == 0.6 and metrics.per_class["rare"]["recall"] == 0.0
    assert metrics.roc_auc == 0.5 and metrics.pr_auc == pytest.approx(0.4)  # the positive share


def test_bag_of_words_baseline_learns_the_words_and_orders_columns_by_labels():
    texts = [f"{word} item {i}" for i, word in enumerate(["refund", "great"] * 30)]
    labels = ["complaint" if "refund" in t else "praise" for t in texts]
    model = BagOfWordsClassifier(["praise", "complaint", "other"], texts, labels)
    assert model.predict(["refund please", "great stuff"]) == ["complaint", "praise"]
    proba = model.predict_proba(["refund"])
    assert proba.shape == (1, 3) and proba[0, 2] == 0.0  # "other" has no training rows
    baselines = score_baselines(
        (texts, labels), (texts[:10], labels[:10]), ["praise", "complaint", "other"], "complaint"
    )
    assert set(baselines.headlines()) == {MAJORITY, BAG_OF_WORDS}
    assert baselines.bag_of_words.accuracy == 1.0 and baselines.bag_of_words.pr_auc == 1.0


# --- the gate --------------------------------------------------------------------------------


def figures(accuracy, f1, recall_rare, pr_auc, roc_auc=0.9):
    return {
        "accuracy": accuracy,
        "macro_f1": f1,
        "recall_rare": recall_rare,
        "recall_common": 0.95,
        "precision_rare": 0.7,
        "f1_rare": 0.6,
        "roc_auc": roc_auc,
        "pr_auc": pr_auc,
    }


RARE = GateParams(
    min_accuracy=0.5,
    min_macro_f1=0.5,
    primary_metric="pr_auc",
    min_recall={"rare": 0.6},
    min_lift_over_baseline=0.05,
)
BOW = {BAG_OF_WORDS: figures(0.9, 0.8, 0.5, 0.60), MAJORITY: figures(0.86, 0.46, 0.0, 0.14, 0.5)}


@pytest.mark.parametrize(
    ("candidate", "policy", "failing"),
    [
        (figures(0.9, 0.8, 0.7, 0.70), RARE, set()),
        # The rare class's recall under its floor, whatever the headline accuracy.
        (figures(0.99, 0.8, 0.5, 0.70), RARE, {("class_minimum", "recall_rare")}),
        # Not enough better than the bag of words on the primary metric (0.64 - 0.60 < 0.05).
        (figures(0.9, 0.8, 0.7, 0.64), RARE, {("baseline", "pr_auc")}),
        # Per-class precision and F1 floors, AUC floors.
        (
            figures(0.9, 0.8, 0.7, 0.70, roc_auc=0.8),
            RARE.model_copy(
                update={
                    "min_precision": {"rare": 0.75},
                    "min_f1": {"rare": 0.5},
                    "min_roc_auc": 0.85,
                }
            ),
            {("class_minimum", "precision_rare"), ("minimum", "roc_auc")},
        ),
        # A per-class primary metric.
        (
            figures(0.9, 0.8, 0.62, 0.70),
            RARE.model_copy(
                update={"primary_metric": "recall_rare", "min_lift_over_baseline": 0.15}
            ),
            {("baseline", "recall_rare")},
        ),
    ],
)
def test_gate_rules_for_a_rare_class(candidate, policy, failing):
    decision = decide(candidate, None, policy, baselines=BOW)
    assert {(c.name, c.metric) for c in decision.checks if not c.passed} == failing
    assert decision.passed is (not failing)


def test_lift_reason_and_the_scores_table():
    passed = decide(figures(0.9, 0.8, 0.7, 0.70), None, RARE, baselines=BOW)
    assert passed.reasons == [
        "first model: all absolute thresholds met",
        "pr_auc 0.7000 vs the bag-of-words baseline 0.6000: lift +0.1000, meets the required "
        "+0.0500",
    ]
    failed = decide(figures(0.9, 0.8, 0.7, 0.62), None, RARE, baselines=BOW)
    assert failed.reasons == [
        "pr_auc 0.6200 vs the bag-of-words baseline 0.6000: lift +0.0200, below the required "
        "+0.0500"
    ]
    markdown = failed.to_markdown()
    assert "| metric | candidate | majority class | bag of words" in markdown
    assert "| recall_rare | 0.7000 | 0.0000 | 0.5000 |" in markdown
    assert "| pr_auc | 0.6200 | 0.1400 | 0.6000 |" in markdown
    assert set(failed.to_dict()["figures"]) == {"candidate", MAJORITY, BAG_OF_WORDS}
    assert "info baselines: candidate accuracy 0.9000" in failed.to_text()


def test_unmeasured_metrics_fail_with_the_reason():
    no_auc = {k: v for k, v in figures(0.9, 0.8, 0.7, 0.7).items() if "auc" not in k}
    decision = decide(no_auc, no_auc, RARE)  # no baselines either
    failing = {c.metric: c.reason for c in decision.checks if not c.passed}
    assert failing["pr_auc"].startswith("pr_auc was not measured")
    assert {c.name for c in decision.checks if not c.passed} == {"improvement", "baseline"}


def test_no_lift_rule_by_default_keeps_todays_decisions():
    policy = RARE.model_copy(update={"min_lift_over_baseline": None})
    decision = decide(figures(0.9, 0.8, 0.7, 0.30), None, policy, baselines=BOW)
    assert decision.passed and "baseline" not in {c.name for c in decision.checks}


# --- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"gate.min_recall": {"fraud": 0.9}}, "gate.min_recall names classes not in data.labels"),
        ({"gate.min_f1": {"fraud": 0.9, "x": 0.1}}, "['fraud', 'x']"),
        ({"gate.primary_metric": "recall_fraud"}, "no class 'fraud' in data.labels"),
        ({"gate.primary_metric": "auc"}, "'auc' is not a metric the gate can rank by"),
        ({"data.positive_label": "fraud"}, "data.positive_label 'fraud' is not one of"),
        ({"gate.min_lift_over_baseline": 1.5}, "gate.min_lift_over_baseline"),
        ({"train.class_weights": "inverse"}, "train.class_weights"),
    ],
)
def test_config_errors_name_the_problem(change, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        BINARY.updated(change)


def test_aucs_need_a_positive_class():
    three = Params()  # three labels, no positive_label
    with pytest.raises(ConfigError, match="gate.primary_metric pr_auc needs a positive class"):
        three.updated({"gate.primary_metric": "pr_auc"})
    assert three.updated({"data.positive_label": "neutral", "gate.min_pr_auc": 0.5})
    assert BINARY.data.positive == "rare"  # two labels: the second
    swapped = BINARY.updated({"data.positive_label": "common"})
    assert swapped.data.positive == "common"
    ints = Params().updated({"data.labels": [0, 1], "gate.min_recall": {1: 0.8}})
    assert ints.gate.min_recall == {"1": 0.8} and ints.data.positive == "1"


def test_class_weights_refused_with_differential_privacy():
    with pytest.raises(ConfigError, match="privacy accountant does not cover"):
        BINARY.updated({"train.class_weights": "balanced", "train.privacy.enabled": True})


def test_balanced_class_weights():
    weights = class_weights([0] * 90 + [1] * 10, 2, "balanced")
    assert weights == pytest.approx([100 / 180, 100 / 20])
    rows = [0] * 90 + [1] * 10
    assert np.mean([weights[r] for r in rows]) == pytest.approx(1.0)  # the loss keeps its scale
    assert class_weights([0, 0, 2], 3, "balanced") == pytest.approx([0.75, 1.0, 1.5])
    assert class_weights([0, 1], 2, "none") is None

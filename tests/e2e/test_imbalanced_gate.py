"""A binary, imbalanced task end to end: the retrain flow on a constructed set (one text in ten
rare) with class weights, the gate ranking by the rare class's PR-AUC, a recall floor for it and
a required lift over the bag-of-words baseline. The tiny transformer does not beat TF-IDF +
logistic regression here, so it is refused, and every report says why, with each class's figures,
the AUCs and both baselines beside the candidate's."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.helpers.imbalanced import write_imbalanced_csv

pytestmark = pytest.mark.slow

NAME = "tiny-imbalanced"
LIFT, RECALL_FLOOR = 0.05, 0.2


@pytest.fixture(scope="module")
def story(prefect_api, tmp_path_factory, tiny_params):
    """One retrain on the imbalanced set, in a MODELYARD_HOME of its own: (summary, home)."""
    from flows.retrain import retrain

    home = tmp_path_factory.mktemp("imbalanced")
    data = write_imbalanced_csv(home / "tickets.csv", rows=800, rare_share=0.1, seed=0)
    params = home / "params.yaml"
    params.write_text(
        yaml.safe_dump(
            tiny_params.updated(
                {
                    "model.name": NAME,
                    "data.path": str(data),
                    "data.labels": ["common", "rare"],
                    "data.positive_label": "rare",
                    # 730 common rows to 70 rare: above the data gate's default ratio of 10.
                    "validation.max_imbalance_ratio": 20.0,
                    "train.epochs": 4,
                    "train.class_weights": "balanced",
                    "explain.report": False,
                    "gate.min_class_recall": 0.0,
                    "gate.primary_metric": "pr_auc",
                    "gate.min_recall": {"rare": RECALL_FLOOR},
                    "gate.min_lift_over_baseline": LIFT,
                }
            ).model_dump(mode="json")
        )
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODELYARD_HOME", str(home))
        summary = retrain(params_path=str(params))
    return summary, home


def test_the_gate_report_judges_the_rare_class_against_both_baselines(story):
    summary, _ = story
    decision = summary.decision
    figures = decision.figures
    assert list(figures) == ["candidate", "majority", "bag_of_words"]  # no production yet
    for column in figures.values():
        assert {"roc_auc", "pr_auc", "precision_rare", "recall_rare", "f1_rare"} <= set(column)
        assert {"precision_common", "recall_common", "f1_common"} <= set(column)
    # The majority class never finds a rare text and ranks none above another.
    assert figures["majority"]["recall_rare"] == 0.0 and figures["majority"]["roc_auc"] == 0.5
    assert figures["majority"]["pr_auc"] < figures["bag_of_words"]["pr_auc"]
    checks = {(c.name, c.metric): c for c in decision.checks}
    recall = checks[("class_minimum", "recall_rare")]
    assert recall.passed is (figures["candidate"]["recall_rare"] >= RECALL_FLOOR)
    lift = checks[("baseline", "pr_auc")]
    bag = figures["bag_of_words"]["pr_auc"]
    assert lift.threshold == pytest.approx(bag + LIFT)
    # Refused: the tiny model's PR-AUC falls short of the bag of words' plus the lift.
    assert figures["candidate"]["pr_auc"] < bag + LIFT
    assert not decision.passed and not lift.passed
    assert lift.reason in decision.reasons
    assert "vs the bag-of-words baseline" in lift.reason and "below the required" in lift.reason
    assert summary.production_version_after is None  # nothing moved


def test_mlflow_and_the_registry_carry_the_figures(story):
    from mlflow import MlflowClient

    summary, home = story
    uri = f"sqlite:///{home.resolve()}/mlflow.db"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    run = client.get_run(summary.mlflow_run_id)
    metrics = run.data.metrics
    for key in ("test/pr_auc", "test/roc_auc", "test/precision_rare", "test/recall_common"):
        assert key in metrics, key
    assert metrics["test/baseline/bag_of_words/pr_auc"] == pytest.approx(
        summary.decision.figures["bag_of_words"]["pr_auc"]
    )
    assert "test/baseline/majority/recall_rare" in metrics
    assert "val/recall_rare" in metrics  # per epoch
    assert run.data.params["train.class_weights"] == "balanced"
    markdown = client.download_artifacts(run.info.run_id, "gate/decision.md", str(home))
    text = Path(markdown).read_text(encoding="utf-8")
    assert "**Scores on the comparison set**" in text and "| bag of words" in text
    assert "| recall_rare |" in text and "| pr_auc |" in text
    version = client.get_model_version(NAME, summary.version)  # registered, tagged rejected
    assert version.tags["rejected"] == "true"
    assert "FAIL baseline: pr_auc" in version.tags["gate_report"]
    assert "info baselines: candidate accuracy" in version.tags["gate_report"]


def test_summary_a_person_reads(story, capsys):
    from modelyard.report import print_summary

    print_summary(story[0])
    out = " ".join(capsys.readouterr().out.split())
    assert "bag of words (TF-IDF + logistic regression) on the training split: accuracy" in out
    assert "recall_rare" in out and "pr_auc" in out
    assert "REJECT" in out and "vs the bag-of-words baseline" in out

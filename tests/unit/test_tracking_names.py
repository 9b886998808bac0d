"""What MLflow and Prefect show of a retrain, as values: metric names in their groups, the run's
description, the flow run's name, tags and artifact keys, the links."""

from __future__ import annotations

import pandas as pd
from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL, temporary_settings

from modelyard import tags
from modelyard.evaluation.gate import GateDecision
from modelyard.explain import report_title
from modelyard.orchestration import runs
from modelyard.registry.lineage import version_description
from modelyard.registry.mlflow_registry import aliases_text
from modelyard.registry.tracking import RunStory, rows_md5, run_description, source_tags


def test_metrics_are_named_in_groups():
    assert tags.step_metrics({"train_loss": 0.7, "learning_rate": 1e-4}) == {
        "train/loss": 0.7,
        "train/learning_rate": 1e-4,
    }
    epoch = {"epoch": 2, "train_loss": 0.5, "val_accuracy": 0.8, "val_recall_rare": 0.3}
    assert tags.epoch_metrics(epoch) == {
        "train/epoch_loss": 0.5,
        "val/accuracy": 0.8,
        "val/recall_rare": 0.3,
    }
    headline = {"accuracy": 0.9, "pr_auc": 0.7, "slice_length_short_accuracy": 0.8}
    assert tags.scored_metrics(headline) == {
        "test/accuracy": 0.9,
        "test/pr_auc": 0.7,
        "slice/length_short_accuracy": 0.8,
    }
    assert tags.scored_metrics(headline, tags.PRODUCTION_PREFIX) == {
        "test/production/accuracy": 0.9,
        "test/production/pr_auc": 0.7,
        "slice/production/length_short_accuracy": 0.8,
    }
    assert "test/baseline/majority/accuracy" in tags.scored_metrics(
        headline, f"{tags.BASELINE_PREFIX}majority/"
    )


def test_split_digest_is_of_the_rows_not_the_file():
    a = pd.DataFrame({"text": ["good", "bad"], "label": ["pos", "neg"]})
    assert rows_md5(a) == rows_md5(a.copy().reset_index(drop=True))
    assert rows_md5(a) != rows_md5(a.iloc[::-1]) != rows_md5(a.iloc[:1])
    assert len(rows_md5(a)) == 32


def test_provenance_tags_use_mlflow_names():
    found = source_tags("abc123-dirty")
    assert found["mlflow.source.git.commit"] == "abc123"
    assert found["mlflow.source.git.dirty"] == "true"
    assert found["mlflow.source.type"] == "JOB" and found["mlflow.user"]
    assert found["mlflow.source.name"] == "flows/retrain.py:retrain"
    assert "mlflow.source.git.commit" not in source_tags("unknown")


def test_run_description_says_the_outcome_and_links():
    story = RunStory("reviews", "reviews@2", "a" * 32, "f-1", "http://prefect/runs/flow-run/f-1")
    before = run_description(story)
    assert "**reviews@2**" in before and "In progress" in before
    assert "[f-1](http://prefect/runs/flow-run/f-1)" in before
    decision = GateDecision(passed=True)
    after = run_description(
        RunStory(
            "reviews",
            "reviews@2",
            "a" * 32,
            "f-1",
            None,
            "7",
            "r1",
            decision,
            version="3",
            production="3",
        )
    )
    assert (
        "**Gate: PROMOTE**" in after
        and "version 3" in after
        and all(f"- {r}" in after for r in decision.reasons)
    )
    assert "Prefect flow run: `f-1`" in after
    assert "(#/experiments/7/runs/r1/artifacts/validation/index.html)" in after


def test_flow_run_name_tags_and_trigger():
    assert runs.run_title("reviews", "reviews@2") == "retrain reviews on reviews@2"
    assert runs.run_tags("reviews", "reviews@2", runs.EVENT) == [
        "model:reviews",
        "dataset:reviews@2",
        "trigger:event",
    ]
    assert runs.trigger_of(None, False, None) == runs.MANUAL
    assert runs.trigger_of("d", True, None) == runs.SCHEDULE
    assert runs.trigger_of("d", False, "AUTOMATION") == runs.EVENT
    assert runs.trigger_of("d", False, "USER") == runs.MANUAL


def test_artifact_keys_and_links():
    assert runs.artifact_key("gate-decision", "Reviews_Sentiment v2") == (
        "gate-decision-reviews-sentiment-v2"
    )
    assert (
        runs.mlflow_run_url("http://h:5000", "1", "abc") == "http://h:5000/#/experiments/1/runs/abc"
    )
    assert runs.mlflow_version_url("http://h", "my model", "2") == (
        "http://h/#/models/my%20model/versions/2"
    )
    assert runs.flow_run_url("local") is None
    # Without a Prefect server's address (the ephemeral API), the link is to `modelyard ui`'s.
    with temporary_settings(restore_defaults={PREFECT_API_URL, PREFECT_UI_URL}):
        assert runs.flow_run_url("f-1") == f"{runs.DEFAULT_PREFECT_UI}/runs/flow-run/f-1"


def test_version_description_is_the_gate_report_with_links():
    lineage = {tags.MLFLOW_RUN_ID: "r1", tags.PREFECT_FLOW_RUN_ID: "f-1", tags.DATASET_MD5: "m"}
    decision = GateDecision(passed=True)
    linked = version_description(decision, lineage, "7", "http://prefect/runs/flow-run/f-1")
    assert linked.startswith(decision.to_markdown())
    assert "MLflow run: [r1](#/experiments/7/runs/r1)" in linked
    assert "(#/experiments/7/runs/r1/artifacts/validation/index.html)" in linked
    assert "Prefect flow run: [f-1](http://prefect/runs/flow-run/f-1)" in linked
    plain = version_description(decision, lineage)
    assert "MLflow run: `r1`" in plain and "Prefect flow run: `f-1`" in plain


def test_every_alias_is_listed_production_first():
    listed = aliases_text({"staging": "4", "canary": "2", "production": "3"})
    assert listed == "@production v3 · @staging v4 · @canary v2"


def test_the_explanation_report_is_titled_by_model_run_and_quantity():
    title = report_title("reviews", "r1")
    assert "reviews" in title and "MLflow run r1" in title and "log-odds" in title


def test_ui_commands_point_prefects_ui_at_its_own_port(monkeypatch, tmp_path):
    from modelyard.orchestration.ui import ui_commands

    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path))
    monkeypatch.setenv("PREFECT_API_URL", "http://elsewhere:4200/api")
    commands = ui_commands("127.0.0.1", 5011, 4211)
    argv, env = commands["prefect"]
    assert argv[1:] == ["server", "start", "--host", "127.0.0.1", "--port", "4211"]
    assert env["PREFECT_UI_API_URL"] == "http://127.0.0.1:4211/api"
    assert "PREFECT_API_URL" not in env
    mlflow = commands["mlflow"][0]
    assert f"sqlite:///{tmp_path.resolve()}/mlflow.db" in mlflow and "5011" in mlflow
    assert set(ui_commands("127.0.0.1", 5011, 0)) == {"mlflow"}


def test_mlflow_ui_url_for_links(monkeypatch):
    from modelyard.config import Settings

    assert Settings().resolved_mlflow_ui_url() == "http://127.0.0.1:5000"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.internal:5000/")
    assert Settings().resolved_mlflow_ui_url() == "http://mlflow.internal:5000"
    monkeypatch.setenv("MODELYARD_MLFLOW_UI_URL", "https://mlflow.example.com/")
    assert Settings().resolved_mlflow_ui_url() == "https://mlflow.example.com"

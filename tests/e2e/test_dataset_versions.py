"""A dataset version in, a model out: integer labels in a JSON Lines file, added with
`modelyard data add`, trained on by `--data NAME@VERSION`; the model predicts the labels as the
data wrote them, and `data show` names the model version trained on it."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.helpers.dvc import make_dvc_project
from tests.helpers.models import predict_in_fresh_process

pytestmark = pytest.mark.slow


def test_integer_labels_from_a_dataset_version_round_trip(
    prefect_api, tmp_path, monkeypatch, tiny_params
):
    from typer.testing import CliRunner

    from modelyard.cli import app
    from modelyard.data.synthetic import ReviewSpec, generate_reviews

    root = make_dvc_project(tmp_path / "project", tmp_path / "remote")
    monkeypatch.chdir(root)
    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path / "home"))
    # Sentiment as 0/1/2 under other column names, as a data scientist might export it.
    ids = {"negative": 0, "neutral": 1, "positive": 2}
    path = tmp_path / "export.jsonl"
    path.write_text(
        "".join(
            json.dumps({"body": text, "stars": ids[label]}) + "\n"
            for text, label in generate_reviews(ReviewSpec(rows=1500, seed=7))
        )
    )
    params = tiny_params.updated(
        {
            "model.name": "int-labels",
            "data.text_column": "body",
            "data.label_column": "stars",
            "data.labels": [0, 1, 2],
            "validation.min_rows_per_class": 10,
        }
    )
    (root / "params.yaml").write_text(yaml.safe_dump(params.model_dump(mode="json")))
    runner = CliRunner()

    added = runner.invoke(app, ["data", "add", str(path), "--name", "stars"])
    assert added.exit_code == 0, added.output
    trained = runner.invoke(app, ["retrain", "--data", "stars@1"])
    output = " ".join(trained.output.split())
    assert trained.exit_code == 0, output
    assert "stars@1 (data/datasets/stars/v1.jsonl)" in output
    assert "18/18 expectations passed on 1500 rows" in output  # 1 of them: every record read

    shown = runner.invoke(app, ["data", "show", "stars@1"])
    assert "model int-labels version 1 [production, staging]" in " ".join(shown.output.split())

    uri = f"sqlite:///{(tmp_path / 'home').resolve()}/mlflow.db"
    out = predict_in_fresh_process(
        uri, "models:/int-labels@production", ["Superb, I love it.", "Broke in a day."], tmp_path
    )
    columns, labels = out["columns"], out["labels"]
    assert columns == ["label", "prob_0", "prob_1", "prob_2"]
    # The labels as the data wrote them, as strings (JSON would keep an int an int).
    assert labels and all(isinstance(label, str) and label in {"0", "1", "2"} for label in labels)

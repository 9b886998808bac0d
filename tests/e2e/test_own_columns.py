"""A dataset with its own column names, end to end: reviews in a `review` column and labels in a
`sentiment` column (label first, as many exports have it), added with `modelyard data add
--set`, trained on with `modelyard retrain --set` (the same strings), served, and loaded with
plain `mlflow.pyfunc` in a fresh process. The server and the pyfunc model both take the texts
under the user's column name, as `text`, and (pyfunc) as a plain list, with the same labels."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pandas as pd
import pytest
import yaml

from tests.helpers.dvc import make_dvc_project
from tests.helpers.servers import ServerThread

pytestmark = pytest.mark.slow

NAME = "own-columns"
COLUMNS = ["--set", "data.text_column=review", "--set", "data.label_column=sentiment"]
TEXTS = ["Superb sound, I love it.", "Broke in a day, awful.", "It does the job."]


def _pyfunc_in_fresh_process(uri: str, cwd) -> dict[str, object]:
    """The production model through plain mlflow.pyfunc, as a consumer of the registry calls
    it: the labels for each way of passing the texts, and the refusal of a whole frame whose
    first column is the label."""
    code = f"""
import json, mlflow, pandas as pd
mlflow.set_tracking_uri({uri!r})
model = mlflow.pyfunc.load_model("models:/{NAME}@production")
texts = {TEXTS!r}
out = {{name: list(model.predict(given)["label"]) for name, given in (
    ("list", texts),
    ("review", pd.DataFrame({{"review": texts}})),
    ("text", pd.DataFrame({{"text": texts}})),
)}}
try:
    model.predict(pd.DataFrame({{"sentiment": ["positive"] * 3, "review": texts}}))
except Exception as error:
    out["whole frame"] = str(error)
print(json.dumps(out))
"""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _served(uri: str, database: str) -> dict[str, object]:
    """The same model behind a real server: its metadata and answers."""
    from modelyard.config import ServingParams
    from modelyard.registry.mlflow_registry import MlflowRegistry
    from modelyard.serving.app import create_app

    app = create_app(
        lambda: MlflowRegistry(uri, "modelyard"),
        NAME,
        ServingParams(poll_interval_s=3600),
        database,
        None,
    )
    with ServerThread(app) as server, httpx.Client(base_url=server.url, timeout=60) as http:

        def labels(body: dict[str, object]) -> list[str]:
            response = http.post("/predict", json=body)
            assert response.status_code == 200, response.text
            return [p["label"] for p in response.json()["predictions"]]

        refused = http.post("/predict", json={"body": TEXTS})
        explained = [
            http.post("/explain", json={field: TEXTS[0]}) for field in ("review", "text", "body")
        ]
        return {
            "explained": [(r.status_code, r.json().get("tokens", r.json())) for r in explained],
            "metadata": http.get("/metadata").json(),
            "review": labels({"review": TEXTS}),
            "one review": labels({"review": TEXTS[0]}),
            "texts": labels({"texts": TEXTS}),
            "refused": (refused.status_code, refused.json()["detail"]),
        }


def test_a_dataset_with_its_own_columns_from_data_add_to_pyfunc(
    prefect_api, tmp_path, monkeypatch, tiny_params
):
    from typer.testing import CliRunner

    from modelyard.cli import app
    from modelyard.data.synthetic import ReviewSpec, generate_reviews

    root = make_dvc_project(tmp_path / "project", tmp_path / "remote")
    monkeypatch.chdir(root)
    home = tmp_path / "home"
    monkeypatch.setenv("MODELYARD_HOME", str(home))
    rows = generate_reviews(ReviewSpec(rows=1500, seed=7))
    export = tmp_path / "export.csv"
    pd.DataFrame([(label, text) for text, label in rows], columns=["sentiment", "review"]).to_csv(
        export, index=False
    )
    # The project's params say `text` and `label`: only --set tells the commands otherwise.
    params = tiny_params.updated(
        {
            "model.name": NAME,
            "validation.min_rows_per_class": 10,
            # Two epochs and no per-class floor: the path is what is checked, not the model.
            "train.epochs": 2,
            "gate.min_class_recall": 0.0,
            "explain.report": False,
        }
    )
    (root / "params.yaml").write_text(yaml.safe_dump(params.model_dump(mode="json")))
    runner = CliRunner()

    added = runner.invoke(app, ["data", "add", str(export), "--name", "reviews", *COLUMNS])
    assert added.exit_code == 0, added.output
    assert "added reviews@1" in added.output and "1500 rows" in added.output
    # A Prefect API but no retrain deployment: said at once, not after waiting for a run.
    assert "no retrain/retrain deployment on the Prefect server" in " ".join(added.output.split())
    trained = runner.invoke(app, ["retrain", "--data", "reviews@1", *COLUMNS])
    assert trained.exit_code == 0, trained.output

    uri = f"sqlite:///{home.resolve()}/mlflow.db"
    served = _served(uri, f"sqlite:///{tmp_path}/predictions.db")
    pyfunc = _pyfunc_in_fresh_process(uri, tmp_path)

    assert served["metadata"]["text_column"] == "review"
    assert served["review"] == served["texts"] == pyfunc["list"] == pyfunc["review"]
    assert pyfunc["text"] == pyfunc["list"] and served["one review"] == served["review"][:1]
    assert served["refused"] == (
        422,
        "extra field `body`: this model reads `text`, `texts` or `review` (its data.text_column)",
    )
    (own, own_tokens), (plain, plain_tokens), (other, detail) = served["explained"]
    assert (own, plain, other) == (200, 200, 422) and own_tokens == plain_tokens
    assert "extra field `body`: this model reads `text` or `review`" in str(detail)
    assert "expected 'review' or 'text'" in pyfunc["whole frame"]
    assert "df[['review']]" in pyfunc["whole frame"]

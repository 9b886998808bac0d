"""`modelyard predict --skip-invalid` on a real registry and Prefect: the rows without text are
left out of the output and reported by their file line numbers; the other rows are scored."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

pytestmark = pytest.mark.slow

NAME = "skip-model"


def test_rows_without_text_are_skipped_and_reported(prefect_api, tmp_path, monkeypatch):
    from modelyard.cli import app
    from modelyard.config import load_params
    from modelyard.registry.mlflow_registry import MlflowRegistry
    from tests.helpers.models import register_tiny_versions
    from tests.helpers.paths import REPO

    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path))
    registry = MlflowRegistry(
        f"sqlite:///{tmp_path}/mlflow.db", "modelyard", (tmp_path / "mlruns").as_uri()
    )
    register_tiny_versions(registry, NAME, tmp_path, seeds=(1,))
    params = load_params(REPO / "params.yaml").updated({"model.name": NAME})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params.model_dump(mode="json")))
    source = tmp_path / "in.csv"
    source.write_text(
        'id,text\n1,superb sound\n2,\n3,"the battery\nis awful"\n4,"  "\n5,it does the job\n'
    )
    runner = CliRunner()

    def predict(*args: str) -> tuple[int, str]:
        result = runner.invoke(
            app,
            ["predict", "--params", str(tmp_path / "params.yaml"), "--input", str(source), *args],
        )
        return result.exit_code, " ".join(result.output.split())

    code, out = predict("--output", str(tmp_path / "out.csv"))
    assert (
        code == 1 and "2 rows with no text in column 'text' (empty or blank): lines 3, 6" in out
    ), out
    assert not (tmp_path / "out.csv").exists()

    code, out = predict("--output", str(tmp_path / "out.csv"), "--skip-invalid")
    assert code == 0, out
    assert f"3 rows scored by {NAME} version 1" in out
    assert "skipped 2 rows" in out and "(lines 3, 6): the output has no row for them" in out
    scored = pd.read_csv(tmp_path / "out.csv")
    assert list(scored["id"]) == [1, 3, 5] and scored["label"].notna().all()

"""Which retrains reproduce a project's DVC pipeline: its own params.yaml, unchanged, on the file
its `data.path` names."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyard.adapters.dvc_pipeline import pipeline_root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / ".dvc").mkdir()
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    (tmp_path / "params.yaml").write_text("{}\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "reviews.csv").write_text("text,label\n")
    return tmp_path


def test_the_projects_own_params_and_data_path_reproduce_its_pipeline(project, monkeypatch):
    monkeypatch.chdir(project)
    data = Path("data/reviews.csv")
    assert pipeline_root(Path("params.yaml"), data, data, False, False) == project
    assert pipeline_root(project / "params.yaml", project / data, data, False, False) == project


@pytest.mark.parametrize(
    ("params_name", "data_file", "overridden", "remote", "why"),
    [
        ("params.yaml", "data/reviews.csv", True, False, "--set overrides"),
        ("params.yaml", "data/reviews.csv", False, True, "data from another repository"),
        ("params.yaml", "data/other.csv", False, False, "another data file"),
        ("tiny.yaml", "data/reviews.csv", False, False, "another params file"),
    ],
)
def test_anything_else_is_not_the_pipelines_run(
    project, params_name, data_file, overridden, remote, why
):
    (project / params_name).write_text("{}\n")
    params, data = project / params_name, project / data_file
    assert pipeline_root(params, data, Path("data/reviews.csv"), overridden, remote) is None, why


def test_a_folder_without_a_pipeline_is_not_one(project):
    (project / "dvc.yaml").unlink()
    data = Path("data/reviews.csv")
    assert pipeline_root(project / "params.yaml", project / data, data, False, False) is None

"""One set of overrides, three ways to run: `modelyard data add --set`, `modelyard retrain --set`
and DVC's `dvc exp run -S` (the DVC pipeline with params changed; `dvc repro` itself takes no
overrides) give the same params tree from the same strings. DVC runs for real on a copy of the
project's params.yaml; the two commands run up to the point where they hand their params on."""

from __future__ import annotations

import shutil
import subprocess
import sys

import yaml

from modelyard.config import Params, load_params
from tests.helpers.dvc import make_dvc_project
from tests.helpers.paths import REPO

OVERRIDES = [
    "data.text_column=review",
    "data.label_column=sentiment",
    "data.labels=[negative, positive]",
    "data.test_path=null",
    "train.learning_rate=3e-4",
    "train.epochs=1",
    "+train.max_steps=10",  # params.yaml leaves it out: DVC wants the +, --set accepts it
    "validation.min_rows=50",
    "gate.min_accuracy=0.7",
]


class Handed(Exception):
    """Raised where a command hands its params on: nothing past that point runs."""


def _data_add(monkeypatch, params_file, tmp_path) -> Params:
    from typer.testing import CliRunner

    from modelyard.adapters import datasets
    from modelyard.cli import app

    seen: list[Params] = []

    def add(root, path, name, params, push=True):
        seen.append(params)
        raise Handed

    monkeypatch.setattr(datasets, "add", add)
    monkeypatch.setattr(datasets, "project_root", lambda: tmp_path)
    data = tmp_path / "reviews.csv"
    data.write_text("review,sentiment\nfine,positive\n")
    args = ["data", "add", str(data), "--params", str(params_file)]
    result = CliRunner().invoke(app, [*args, *(f"--set={pair}" for pair in OVERRIDES)])
    assert isinstance(result.exception, Handed), result.output
    return seen[0]


def _retrain(monkeypatch, params_file) -> Params:
    """What `modelyard retrain` gives the flow, read as the flow reads it."""
    from typer.testing import CliRunner

    import flows.retrain
    from modelyard.cli import app, training

    seen: list[dict[str, object]] = []

    def flow(**kwargs):
        seen.append(kwargs)
        raise Handed

    monkeypatch.setattr(training, "_check_training_input", lambda *args: None)
    monkeypatch.setattr(flows.retrain, "retrain", flow)
    args = ["retrain", "--params", str(params_file)]
    result = CliRunner().invoke(app, [*args, *(f"--set={pair}" for pair in OVERRIDES)])
    assert isinstance(result.exception, Handed), result.output
    (given,) = seen
    assert given["params_path"] == str(params_file)
    return load_params(str(given["params_path"])).updated(given["overrides"])


def _dvc_exp_run(tmp_path) -> Params:
    """`dvc exp run -S` for each override, on a one-stage pipeline that reads every section."""
    project = make_dvc_project(tmp_path / "project", tmp_path / "remote")
    shutil.copy(REPO / "params.yaml", project / "params.yaml")
    stage = {"cmd": "echo ran", "params": ["data", "validation", "train", "gate"]}
    (project / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"echo": stage}}))
    subprocess.run(["git", "add", "-A"], cwd=project, check=True, capture_output=True)
    subprocess.run(["git", "commit", "-qm", "pipeline"], cwd=project, check=True)
    sets = [arg for pair in OVERRIDES for arg in ("-S", pair)]
    run = subprocess.run(
        [sys.executable, "-m", "dvc", "exp", "run", *sets],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return load_params(project / "params.yaml")


def test_the_same_overrides_give_the_same_params_everywhere(tmp_path, monkeypatch):
    params_file = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", params_file)
    added = _data_add(monkeypatch, params_file, tmp_path)
    retrained = _retrain(monkeypatch, params_file)
    experiment = _dvc_exp_run(tmp_path)

    assert added == retrained == experiment
    assert added != load_params(params_file)
    assert (added.data.text_column, added.data.labels) == ("review", ("negative", "positive"))
    assert (added.train.learning_rate, added.train.max_steps) == (3e-4, 10)


def test_a_bad_override_is_refused_before_anything_runs(tmp_path):
    from typer.testing import CliRunner

    from modelyard.cli import app

    data = tmp_path / "reviews.csv"
    data.write_text("review,sentiment\nfine,positive\n")
    params_file = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", params_file)
    for args, words in (
        (["--set", "data.text_colum=review"], "data.text_colum: unknown key"),
        (["--set", "train.epochs=0"], "train.epochs: Input should be greater than or equal"),
        (["--set", "data.text_column"], "--set expects KEY=VALUE"),
    ):
        result = CliRunner().invoke(
            app, ["data", "add", str(data), "--params", str(params_file), *args]
        )
        assert result.exit_code == 2, result.output
        assert words in " ".join(result.output.split()), result.output

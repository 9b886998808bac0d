"""`dvc repro` on the project's own dvc.yaml, in a temporary copy of the repository, with the
real params shrunk to the tiny model: the four stages run, a second `dvc repro` does nothing,
`dvc exp run -S` changes one param and reruns only what depends on it, `dvc metrics show` shows
the evaluation metrics."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers.checkout import copy_checkout

pytestmark = pytest.mark.slow


def run(root: Path, *args: str) -> str:
    # `python` in dvc.yaml must be this interpreter (the project's virtual environment).
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(args, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{args}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def copy(repo: Path, tmp_path_factory) -> Path:
    from modelyard.data.synthetic import write_reviews

    root = tmp_path_factory.mktemp("pipeline") / "project"
    copy_checkout(repo, root)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["model"].update(backbone="tiny", max_length=64)
    params["train"].update(epochs=1, learning_rate=3e-3)
    params["explain"]["report"] = False  # not a stage's param; only the retrain would pay for it
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    write_reviews(root / "data" / "reviews.csv")  # the committed version, from its seed
    for args in (
        ("init", "-q"),
        ("config", "user.email", "t@modelyard.invalid"),
        ("config", "user.name", "t"),
        ("add", "-A"),
        ("commit", "-qm", "copy"),
    ):
        run(root, "git", *args)
    return root


@pytest.fixture(scope="module")
def reproduced(copy: Path) -> str:
    """The output of a first `dvc repro` of every stage, its results committed (the baseline
    an experiment starts from), whichever test asks first."""
    # --force: the copy carries the committed lock, whose prepare/validate entries already match
    out = run(copy, "dvc", "repro", "--force")
    run(copy, "git", "add", "-A")
    run(copy, "git", "commit", "-qm", "baseline")
    return out


def test_repro_runs_every_stage_then_nothing(copy, reproduced):
    out = reproduced
    for stage in ("prepare", "validate", "train", "evaluate"):
        assert f"Running stage '{stage}'" in out
    metrics = json.loads((copy / "build" / "metrics.json").read_text())
    assert metrics["accuracy"] > metrics["majority_baseline_accuracy"]
    assert json.loads((copy / "build" / "validation.json").read_text())["passed"] is True
    assert (copy / "build" / "validation" / "index.html").is_file()
    assert {p.name for p in (copy / "build" / "prepared").iterdir()} == {
        "train.parquet",
        "val.parquet",
        "test.parquet",
    }

    again = run(copy, "dvc", "repro")
    assert "Data and pipelines are up to date." in again
    assert "Running stage" not in again


def test_exp_run_with_a_changed_param_and_metrics_show(copy, reproduced):
    out = run(copy, "dvc", "exp", "run", "-S", "train.learning_rate=0.002")
    assert "Running stage 'train'" in out and "Running stage 'evaluate'" in out
    assert "Running stage 'prepare'" not in out  # its params did not change
    table = list(csv.DictReader(io.StringIO(run(copy, "dvc", "exp", "show", "--csv"))))
    rates = {row["train.learning_rate"] for row in table}
    assert {"0.002", "0.003"} <= rates
    shown = json.loads(run(copy, "dvc", "metrics", "show", "--json"))
    files = next(iter(shown.values()))["data"]
    evaluation = files["build/metrics.json"]["data"]
    assert 0.0 < evaluation["accuracy"] <= 1.0 and "macro_f1" in evaluation


def test_a_retrain_on_a_fresh_clone_leaves_dvc_nothing_to_do(
    copy, reproduced, prefect_api, tmp_path, monkeypatch
):
    """`make run` on a fresh clone: the retrain flow, not `dvc repro`, computes the pipeline's
    split and model. Its outputs are the ones dvc.lock records, so afterwards `dvc status` has
    nothing to do, and neither dvc.lock nor anything else git tracks has changed."""
    from flows.retrain import retrain

    clone = tmp_path / "clone"
    run(tmp_path, "git", "clone", "-q", str(copy), str(clone))
    run(clone, sys.executable, "-m", "modelyard", "data", "prepare")  # `make run` = `make data` + …
    assert "not in cache:       build/model" in run(clone, "dvc", "status")
    lock = (clone / "dvc.lock").read_bytes()

    monkeypatch.chdir(clone)
    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path / "home"))
    retrain()

    assert "Data and pipelines are up to date." in run(clone, "dvc", "status")
    assert (clone / "dvc.lock").read_bytes() == lock
    assert run(clone, "git", "status", "--porcelain") == ""

"""DVC as the README says, on a fresh copy of the project (its own git repository, an empty DVC
cache and remote, the project's environment as `.venv`):

- `modelyard data prepare` leaves `dvc status` nothing to report about the dataset files (the
  committed `reviews@1` pointer included: a fresh clone has no such file until it is restored);
- `.venv/bin/dvc repro` runs the stages with the project's interpreter even when no `python` on
  PATH has the project's packages, and the stages it ran write exactly what the committed
  `dvc.lock` records (prepare and validate: the cheap ones; training needs the real model);
- scripts/dvc-stage says what to do when it finds no interpreter, and honours MODELYARD_PYTHON.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers.checkout import copy_checkout

DATA_POINTERS = ("data/reviews.csv.dvc", "data/datasets/reviews/v1.csv.dvc")
LAUNCHER = Path("scripts/dvc-stage")
CHEAP_STAGES = ("prepare", "validate")
UP_TO_DATE = "Data and pipelines are up to date."
# No directory of the project's environment: a bare `python` here is not the project's.
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


def _run(root: Path, *args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        args, cwd=root, capture_output=True, text=True, timeout=600, env=env or dict(os.environ)
    )
    assert result.returncode == 0, f"{args}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def committed(repo: Path, tmp_path_factory) -> Path:
    """The files git would hand a new user (tracked, plus new ones not ignored), committed in a
    repository of their own, with this test run's environment linked as `.venv`."""
    root = tmp_path_factory.mktemp("fresh") / "project"
    copy_checkout(repo, root)
    (root / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    for args in (
        ("init", "-q"),
        ("config", "user.email", "t@modelyard.invalid"),
        ("config", "user.name", "t"),
        ("add", "-A"),
        ("commit", "-qm", "clone"),
    ):
        _run(root, "git", *args)
    return root


@pytest.fixture
def clone(committed: Path, tmp_path: Path) -> Path:
    """A copy of it for each test: what `data prepare` restores in one is not there in the
    next, whichever runs first."""
    root = tmp_path / "project"
    shutil.copytree(committed, root, symlinks=True)
    return root


def test_data_prepare_restores_every_pinned_dataset_file(clone):
    assert not (clone / "data" / "datasets" / "reviews" / "v1.csv").exists()
    out = _run(clone, sys.executable, "-m", "modelyard", "data", "prepare")
    assert "data/datasets/reviews/v1.csv" in out and "neither" not in out
    assert UP_TO_DATE in _run(clone, sys.executable, "-m", "dvc", "status", *DATA_POINTERS)
    again = _run(clone, sys.executable, "-m", "modelyard", "data", "prepare")
    assert "restored" not in again  # already there: left as it is


def test_repro_uses_the_projects_interpreter_and_reproduces_the_lock(clone):
    committed = yaml.safe_load((clone / "dvc.lock").read_text())["stages"]
    if not (clone / "data" / "reviews.csv").exists():
        _run(clone, sys.executable, "-m", "modelyard", "data", "prepare")
    env = {**os.environ, "PATH": SYSTEM_PATH}
    env.pop("VIRTUAL_ENV", None)
    dvc = str(clone / ".venv" / "bin" / "dvc")
    # Forced: the committed lock and build/validation.json would let validate skip.
    out = _run(clone, dvc, "repro", "--force", *CHEAP_STAGES, env=env)
    for stage in CHEAP_STAGES:
        assert f"Running stage '{stage}'" in out
    produced = yaml.safe_load((clone / "dvc.lock").read_text())["stages"]
    for stage in CHEAP_STAGES:
        assert produced[stage] == committed[stage], (
            f"dvc.lock's {stage} is not what `dvc repro` produces from this commit: rerun "
            "`dvc repro` on a clean clone and commit dvc.lock and build/*.json"
        )
    assert UP_TO_DATE in _run(clone, dvc, "status", *CHEAP_STAGES, env=env)


def test_the_launcher_names_the_fix_when_it_finds_no_interpreter(repo, tmp_path):
    (tmp_path / LAUNCHER).parent.mkdir()
    shutil.copy2(repo / LAUNCHER, tmp_path / LAUNCHER)
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "python3").write_text("#!/bin/sh\nexit 1\n")  # a Python without the project
    (fake / "python3").chmod(0o755)
    env = {"PATH": f"{fake}{os.pathsep}{SYSTEM_PATH}"}
    refused = subprocess.run(
        ["sh", str(LAUNCHER), "prepare"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 1
    assert "make install" in refused.stderr and "MODELYARD_PYTHON" in refused.stderr

    chosen = subprocess.run(
        ["sh", str(LAUNCHER), "--help"],
        cwd=tmp_path,
        capture_output=True,
        env={**env, "MODELYARD_PYTHON": sys.executable},
        text=True,
        timeout=120,
    )
    assert chosen.returncode == 0, chosen.stderr
    assert "prepare" in chosen.stdout

"""DVC projects for tests: a git repository with DVC and a local remote, optionally holding
the tiny model's training data as dataset version `reviews@1`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any


def make_dvc_project(root: Path, remote: Path) -> Path:
    """A git repository with DVC initialised and a local default remote: what `modelyard data`
    works in. Returns `root`."""
    root.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run(args, cwd=root, check=True, capture_output=True)

    run("git", "init", "-q")
    run("git", "config", "user.email", "tests@modelyard.invalid")
    run("git", "config", "user.name", "tests")
    from dvc.repo import Repo

    Repo.init(str(root)).close()
    run(sys.executable, "-m", "dvc", "remote", "add", "-d", "local", str(remote))
    run("git", "add", "-A")
    run("git", "commit", "-qm", "init")
    return root


def reviews_project(root: Path, data: Path, params: Any) -> Path:
    """A DVC project whose dataset `reviews@1` is `data` (committed), its remote beside it."""
    from modelyard.adapters import datasets

    make_dvc_project(root, root.parent / "dvc-remote")
    datasets.add(root, data, "reviews", params)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True, capture_output=True)
    subprocess.run(["git", "commit", "-qm", "reviews@1"], cwd=root, check=True)
    return root

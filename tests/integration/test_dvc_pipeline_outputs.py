"""The DVC pipeline's outputs from a run that computed them (modelyard.adapters.dvc_pipeline), on
a real DVC project whose one stage writes a folder: `dvc repro` ran once and its lock was
committed, then the output and the cache went (what a fresh clone has). An identical output is
committed to the cache and `dvc status` is clean; a different one is removed again; what the user
has in the workspace is never touched; `dvc.lock` never changes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from modelyard.adapters.dvc_pipeline import StageOutput, record_outputs
from tests.helpers.dvc import make_dvc_project

UP_TO_DATE = "Data and pipelines are up to date."
OUT = "build/out"
MAKE = "from pathlib import Path\nout = Path('build/out')\nout.mkdir(parents=True)\n"


def _dvc(root: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _writes(text: str) -> StageOutput:
    def write(target: Path) -> None:
        target.mkdir(parents=True)
        (target / "a.txt").write_text(text)

    return StageOutput("make", OUT, write)


@pytest.fixture
def fresh(tmp_path: Path) -> Path:
    root = make_dvc_project(tmp_path / "project", tmp_path / "remote")
    (root / "make.py").write_text(MAKE + "(out / 'a.txt').write_text('same')\n")
    (root / "dvc.yaml").write_text(
        f"stages:\n  make:\n    cmd: {sys.executable} make.py\n    deps: [make.py]\n"
        f"    outs: [{OUT}]\n"
    )
    _dvc(root, "repro")
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "commit", "-qm", "repro"], cwd=root, check=True)
    shutil.rmtree(root / OUT)
    shutil.rmtree(root / ".dvc" / "cache")
    assert "not in cache" in _dvc(root, "status")
    return root


def test_an_identical_output_goes_into_the_cache_and_status_is_clean(fresh):
    lock = (fresh / "dvc.lock").read_bytes()
    recorded = record_outputs(fresh, [_writes("same")])
    assert recorded.outputs == (OUT,) and recorded.stopped is None
    assert UP_TO_DATE in _dvc(fresh, "status")
    assert (fresh / "dvc.lock").read_bytes() == lock
    assert (fresh / OUT / "a.txt").read_text() == "same"
    assert record_outputs(fresh, [_writes("same")]).stopped is None  # again: nothing to do


def test_a_different_output_is_removed_and_nothing_changes(fresh):
    lock = (fresh / "dvc.lock").read_bytes()
    recorded = record_outputs(fresh, [_writes("other")])
    assert recorded.outputs == ()
    assert recorded.stopped is not None and "not what dvc.lock records" in recorded.stopped
    assert not (fresh / OUT).exists()
    assert not list((fresh / "build").glob(".out*"))  # no partial copy left behind
    assert (fresh / "dvc.lock").read_bytes() == lock
    assert "not in cache" in _dvc(fresh, "status")


def test_the_users_own_output_is_never_touched(fresh):
    (fresh / OUT).mkdir(parents=True)
    (fresh / OUT / "a.txt").write_text("mine")
    recorded = record_outputs(fresh, [_writes("same")])
    assert recorded.stopped is not None and "left as it is" in recorded.stopped
    assert (fresh / OUT / "a.txt").read_text() == "mine"


def test_a_stage_whose_code_changed_is_left_to_dvc_repro(fresh):
    (fresh / "make.py").write_text(MAKE + "(out / 'a.txt').write_text('new')\n")
    recorded = record_outputs(fresh, [_writes("same")])
    assert recorded.stopped is not None and "changed since dvc.lock" in recorded.stopped
    assert not (fresh / OUT).exists()

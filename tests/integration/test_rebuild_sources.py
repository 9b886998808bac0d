"""Rebuild from lineage, the adapter's parts that need no model: the dataset found by md5 (and
refused, naming the md5 expected and found), the commit looked up in the repository, the
scratch work tree removed after (kept with --keep)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from modelyard import tags as tag
from modelyard.adapters.rebuild import fetch_dataset, has_commit, scratch_tree
from modelyard.data.identity import file_md5
from modelyard.evaluation.rebuild import RebuildRefused


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def project(tmp_path) -> tuple[Path, str]:
    root = tmp_path / "project"
    root.mkdir()
    (root / "README").write_text("a project\n")
    _git(root, "init", "-q")
    _git(root, "-c", "user.email=t@t.invalid", "-c", "user.name=t", "add", "README")
    _git(root, "-c", "user.email=t@t.invalid", "-c", "user.name=t", "commit", "-qm", "one")
    return root, _git(root, "rev-parse", "HEAD")


def test_the_dataset_is_found_by_md5_in_the_dataset_cache(tmp_path, project):
    root, _ = project
    cache = tmp_path / "cache"
    cache.mkdir()
    source = tmp_path / "reviews.csv"
    source.write_text("label,text\n1,good\n0,bad\n")
    md5 = file_md5(source)
    (cache / f"{md5}.csv").write_bytes(source.read_bytes())
    tags = {tag.DATASET_MD5: md5, tag.DATASET_PATH: "reviews@1 (data/reviews.csv)"}
    path, where = fetch_dataset(tags, tmp_path / "into", cache, root)
    assert file_md5(path) == md5 and path.suffix == ".csv"
    assert where.startswith("the dataset cache")


def test_different_bytes_are_refused_naming_both_md5s(tmp_path, project):
    root, _ = project
    source = tmp_path / "reviews.csv"
    source.write_text("label,text\n1,good\n")
    expected = "0" * 32
    tags = {tag.DATASET_MD5: expected, tag.DATASET_PATH: str(source)}
    with pytest.raises(RebuildRefused) as refused:
        fetch_dataset(tags, tmp_path / "into", tmp_path / "no-cache", root)
    message = str(refused.value)
    assert f"expected md5 {expected}" in message
    assert f"its recorded path ({source}): md5 {file_md5(source)}" in message
    assert message.endswith("Nothing was trained.")
    assert not list((tmp_path / "into").iterdir())  # nothing half-copied left


def test_a_missing_dataset_is_refused(tmp_path, project):
    root, _ = project
    tags = {tag.DATASET_MD5: "1" * 32, tag.DATASET_PATH: str(tmp_path / "gone.csv")}
    with pytest.raises(RebuildRefused, match="no copy in the dataset cache, DVC or at its path"):
        fetch_dataset(tags, tmp_path / "into", tmp_path / "no-cache", root)


def test_a_commit_the_repository_lacks_is_refused(project):
    root, commit = project
    has_commit(root, commit, "m", "1")  # no refusal
    with pytest.raises(RebuildRefused, match="which the repository at .* does not have"):
        has_commit(root, "f" * 40, "m", "1")


def test_the_scratch_tree_is_the_commit_and_is_removed_after(project):
    root, commit = project
    with scratch_tree(root, commit, None) as tree:
        assert (tree / "README").read_text() == "a project\n"
        assert _git(tree, "rev-parse", "HEAD") == commit
    assert not tree.exists()
    assert len(_git(root, "worktree", "list").splitlines()) == 1


def test_a_kept_scratch_tree_stays(tmp_path, project):
    root, commit = project
    keep = tmp_path / "kept"
    with scratch_tree(root, commit, keep) as tree:
        assert tree == keep.resolve()
    assert (keep / "README").is_file()
    (keep / "extra").write_text("x")
    with (
        pytest.raises(RebuildRefused, match="exists and is not empty"),
        scratch_tree(root, commit, keep),
    ):
        pass

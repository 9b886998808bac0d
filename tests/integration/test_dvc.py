"""DVC in a temporary git repository: the pointer's md5 is our dataset identity; push and pull."""

import shutil

import pytest

from modelyard.adapters.default_dataset import DatasetMismatch, prepare_default_dataset
from modelyard.adapters.dvc import DvcError, DvcRepo
from modelyard.data.identity import dataset_version, dvc_pointer_md5, file_md5
from modelyard.data.synthetic import ReviewSpec, write_reviews
from tests.helpers.dvc import make_dvc_project


@pytest.fixture
def dvc_repo(tmp_path):
    root = tmp_path / "project"
    return make_dvc_project(root, root / "remote")


def test_pointer_md5_is_our_identity_whatever_the_name(dvc_repo):
    data = dvc_repo / "data"
    spec = ReviewSpec(rows=300, seed=5)
    first = write_reviews(data / "reviews.csv", spec)
    second = write_reviews(data / "copy-under-another-name.csv", spec)
    repo = DvcRepo(dvc_repo)
    assert repo.add(first) == file_md5(first) == dataset_version(first).md5
    assert repo.add(second) == repo.add(first)
    version = dataset_version(first)
    assert version.matches_pointer and len(version.git_commit) >= 40


def test_push_then_pull_restores_the_bytes(dvc_repo):
    path = write_reviews(dvc_repo / "data" / "reviews.csv", ReviewSpec(rows=200, seed=9))
    repo = DvcRepo(dvc_repo)
    md5 = repo.add(path)
    assert repo.push(path) == 1
    path.unlink()
    shutil.rmtree(dvc_repo / ".dvc" / "cache")
    assert repo.pull(path)
    assert file_md5(path) == md5


def test_prepare_default_dataset_regenerates_then_pulls(dvc_repo):
    path = dvc_repo / "data" / "reviews.csv"
    spec = ReviewSpec(rows=150, seed=11)
    assert prepare_default_dataset(dvc_repo, path, spec) == "generated from seed"
    pointer = dvc_pointer_md5(path)
    assert prepare_default_dataset(dvc_repo, path, spec) == "present"
    path.unlink()
    assert prepare_default_dataset(dvc_repo, path, spec) == "pulled from DVC"
    assert dvc_pointer_md5(path) == pointer == file_md5(path)


def test_prepare_refuses_a_generator_that_drifted(dvc_repo):
    path = dvc_repo / "data" / "reviews.csv"
    prepare_default_dataset(dvc_repo, path, ReviewSpec(rows=150, seed=11))
    path.unlink()
    shutil.rmtree(dvc_repo / ".dvc" / "cache")
    shutil.rmtree(dvc_repo / "remote")  # the url ../remote is relative to .dvc/
    pointer_before = (dvc_repo / "data" / "reviews.csv.dvc").read_text()
    with pytest.raises(DatasetMismatch, match="no longer reproduces"):
        prepare_default_dataset(dvc_repo, path, ReviewSpec(rows=150, seed=12))
    # The committed pointer is untouched: the mismatch is reported, not recorded.
    assert (dvc_repo / "data" / "reviews.csv.dvc").read_text() == pointer_before


def test_not_a_dvc_repo(tmp_path):
    with pytest.raises(DvcError, match="not a DVC repository"):
        DvcRepo(tmp_path)

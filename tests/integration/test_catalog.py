"""Dataset versions with real DVC in a temporary git repository: add → push to a local remote →
cache and workspace copy deleted → read back by version through dvc.api, from this checkout,
from another directory, and from a git URL; the same bytes under two names are one version."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from modelyard.adapters import datasets as sources
from modelyard.adapters.catalog import Catalog, CatalogError, DataRef
from modelyard.config import Params
from modelyard.data.identity import file_md5
from modelyard.data.synthetic import ReviewSpec, write_reviews
from tests.helpers.dvc import make_dvc_project

PARAMS = Params().updated({"validation.min_rows": 100, "validation.min_rows_per_class": 10})


@pytest.fixture
def project(tmp_path):
    return make_dvc_project(tmp_path / "project", tmp_path / "remote")


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, check=True, capture_output=True, text=True
    ).stdout.strip()


def test_round_trip_through_the_remote_by_version(project, tmp_path):
    v1 = write_reviews(tmp_path / "in" / "first.csv", ReviewSpec(rows=300, seed=1))
    v2 = write_reviews(tmp_path / "in" / "second.csv", ReviewSpec(rows=450, seed=2))
    first = sources.add(project, v1, "reviews", PARAMS)
    second = sources.add(project, v2, "reviews", PARAMS)
    assert (first.entry.ref, second.entry.ref) == ("reviews@1", "reviews@2")
    assert first.entry.md5 == file_md5(v1) and second.entry.md5 == file_md5(v2)
    assert second.entry.rows == 450 and sum(second.entry.classes.values()) == 450
    assert first.entry.path == "data/datasets/reviews/v1.csv"
    pointer = yaml.safe_load((project / "data/datasets/reviews/v1.csv.dvc").read_text())
    assert pointer["outs"][0]["md5"] == first.entry.md5  # DVC's own hash is the identity
    assert pointer["meta"]["source"] == "first.csv"
    git(project, "add", "-A")
    git(project, "commit", "-qm", "two versions")

    # Nothing local is left but the pointers: the bytes must come from the remote.
    shutil.rmtree(project / ".dvc" / "cache")
    for path in (project / "data" / "datasets" / "reviews").glob("v*.csv"):
        path.unlink()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for spec, expected in (
        ("reviews@1", v1),
        ("reviews@v2", v2),
        ("reviews@latest", v2),
        (f"reviews@{first.entry.md5[:8]}", v1),
    ):
        source = sources.resolve(spec, str(project), None, elsewhere / "cache")
        assert source.path.read_bytes() == expected.read_bytes()
        assert source.version.md5 == file_md5(expected)
        assert source.version.dvc_pointer_md5 == source.version.md5
        # Where a person (or MLflow's dataset source) finds those bytes: the remote's copy.
        md5 = source.version.md5
        assert source.uri is not None and source.uri.endswith(f"/md5/{md5[:2]}/{md5[2:]}")
        assert Path(source.uri).read_bytes() == expected.read_bytes()

    # A worker that only knows the repository's URL and a git revision.
    url = project.resolve().as_uri()
    head = git(project, "rev-parse", "HEAD")
    source = sources.resolve("reviews@2", url, None, elsewhere / "url-cache")
    assert file_md5(source.path) == second.entry.md5
    assert source.label == f"reviews@2 of {url} (data/datasets/reviews/v2.csv)"
    assert source.uri == f"{url}/data/datasets/reviews/v2.csv"
    # A git revision as the version: the dataset's latest version at that commit.
    v3 = write_reviews(tmp_path / "in" / "third.csv", ReviewSpec(rows=330, seed=3))
    sources.add(project, v3, "reviews", PARAMS)
    git(project, "add", "-A")
    git(project, "commit", "-qm", "third")
    at_head_before = sources.resolve(f"reviews@{head}", url, None, elsewhere / "rev-cache")
    assert file_md5(at_head_before.path) == second.entry.md5
    assert sources.resolve(
        "reviews@latest", url, None, elsewhere / "rev-cache"
    ).version.md5 == file_md5(v3)


def test_same_bytes_under_two_names_are_one_version(project, tmp_path):
    data = write_reviews(tmp_path / "reviews.csv", ReviewSpec(rows=300, seed=4))
    copy = tmp_path / "renamed.csv"
    shutil.copyfile(data, copy)
    first = sources.add(project, data, "reviews", PARAMS)
    again = sources.add(project, copy, "reviews", PARAMS)
    assert not again.created and again.entry == first.entry
    other = sources.add(project, copy, "archive", PARAMS)
    assert other.created and other.same_bytes == ["reviews@1"]
    assert other.entry.md5 == first.entry.md5
    objects = [p for p in (project / ".dvc" / "cache").rglob("*") if p.is_file()]
    assert len(objects) == 1  # one object in DVC's content-addressed cache
    remote = [p for p in (tmp_path / "remote").rglob("*") if p.is_file()]
    assert len(remote) == 1


def test_adding_refuses_bad_names_and_leaves_nothing_behind(project, tmp_path):
    data = write_reviews(tmp_path / "reviews.csv", ReviewSpec(rows=300, seed=4))
    with pytest.raises(CatalogError, match="'../escape' is not a dataset name"):
        sources.add(project, data, "../escape", PARAMS)
    assert not (project / "data").exists()
    with pytest.raises(CatalogError, match="expected NAME@VERSION"):
        DataRef.parse("reviews@")
    with pytest.raises(CatalogError, match="no dataset named 'reviews'"):
        Catalog(project).resolve(DataRef.parse("reviews@1"))


def test_a_failed_push_rolls_the_version_back(project, tmp_path):
    """The remote is unreachable: no pointer, no copy, no catalog entry stays behind."""
    subprocess.run(
        [sys.executable, "-m", "dvc", "remote", "modify", "local", "url", "/proc/nowhere/remote"],
        cwd=project,
        check=True,
        capture_output=True,
    )
    data = write_reviews(tmp_path / "reviews.csv", ReviewSpec(rows=300, seed=4))
    with pytest.raises(Exception):  # noqa: B017 - whatever DVC raises for an unwritable remote
        sources.add(project, data, "reviews", PARAMS)
    assert Catalog(project).entries() == []
    assert list((project / "data" / "datasets" / "reviews").glob("v1*")) == []


def test_cli_add_list_show(project, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from modelyard.cli import app

    monkeypatch.chdir(project)
    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path / "home"))
    params = project / "params.yaml"
    params.write_text(yaml.safe_dump(PARAMS.model_dump(mode="json")))
    frame = pd.read_csv(write_reviews(tmp_path / "r.csv", ReviewSpec(rows=300, seed=6)))
    frame.to_parquet(tmp_path / "reviews.parquet")
    runner = CliRunner()
    added = runner.invoke(app, ["data", "add", str(tmp_path / "reviews.parquet")])
    assert added.exit_code == 0, added.output
    assert "added reviews@1: data/datasets/reviews/v1.parquet" in added.output
    assert "validation: 17/17 expectations passed on 300 rows" in added.output
    listed = runner.invoke(app, ["data", "list"])
    assert listed.exit_code == 0 and "reviews@1" in listed.output and "300" in listed.output
    shown = runner.invoke(app, ["data", "show", "reviews@1"])
    assert shown.exit_code == 0, shown.output
    assert file_md5(tmp_path / "reviews.parquet") in shown.output
    assert "none trained on it yet" in shown.output
    missing = runner.invoke(app, ["data", "show", "reviews@9"])
    assert missing.exit_code == 1 and "no such version" in " ".join(missing.output.split())

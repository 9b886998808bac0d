"""Rebuild from lineage, the split: a version's recorded membership, checked against its
`split_md5` tag (a changed one refused, naming both md5s), and the scratch process's split made
from it — for a version whose split was inherited, exactly the split the retrain flow made, row
for row, where a fresh cut of the same rows is another. No model is trained."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import pandas as pd
import pytest
import yaml

from modelyard import tags as tag
from modelyard.adapters.rebuild import (
    _STAGES_CODE,
    Lineage,
    recorded_membership,
    split_made,
    split_notes,
)
from modelyard.data.dataset import Splits, read_frame, split, to_canonical
from modelyard.data.membership import SPLIT, Membership, inherit_split
from modelyard.data.synthetic import ReviewSpec, write_reviews
from modelyard.evaluation.rebuild import RebuildRefused
from modelyard.registry.mlflow_registry import MlflowRegistry
from modelyard.registry.splits import MEMBERSHIP_DIR, log_membership, membership_md5

RUN = "run-1"


@dataclass
class _Info:
    run_id: str
    tags: dict[str, str]


@dataclass
class _Registry:
    """The artifact and version calls the membership's round trip makes, on a directory."""

    root: Path
    tags: dict[str, str] = field(default_factory=dict)

    def log_artifacts(self, run_id: str, local_dir: Path, path: str) -> None:
        for source in local_dir.iterdir():
            target = self.root / run_id / path / source.name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())

    def list_artifacts(self, run_id: str, path: str) -> list[str]:
        folder = self.root / run_id / path
        return [f"{path}/{p.name}" for p in sorted(folder.iterdir())] if folder.is_dir() else []

    def download_artifact(self, run_id: str, path: str, into: Path) -> Path:
        target = into / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((self.root / run_id / path).read_bytes())
        return target

    def version_info(self, name: str, version: str) -> _Info:
        return _Info(RUN, self.tags)


def _lineage(tags: dict[str, str]) -> Lineage:
    return Lineage("m", "2", RUN, tags, {}, {}, {})


def _membership() -> Membership:
    frame = pd.DataFrame({"key": ["a1", "b2", "c3"], SPLIT: ["train", "val", "test"]})
    return Membership(frame)


def test_the_recorded_membership_is_read_back_checked(tmp_path):
    fake = _Registry(tmp_path)
    registry = cast(MlflowRegistry, fake)
    assert recorded_membership(registry, _lineage({})) is None  # none recorded
    fake.tags[tag.SPLIT_MD5] = log_membership(registry, RUN, _membership())
    found = recorded_membership(registry, _lineage(fake.tags))
    assert found is not None and found.frame.equals(_membership().frame)


def test_a_membership_that_does_not_hash_to_its_tag_is_refused_naming_both(tmp_path):
    fake = _Registry(tmp_path)
    registry = cast(MlflowRegistry, fake)
    fake.tags[tag.SPLIT_MD5] = expected = log_membership(registry, RUN, _membership())
    changed = _membership().frame.assign(**{SPLIT: ["test", "val", "test"]})
    log_membership(registry, RUN, Membership(changed))
    assert MEMBERSHIP_DIR in fake.list_artifacts(RUN, MEMBERSHIP_DIR)[0]
    with pytest.raises(RebuildRefused) as refused:
        recorded_membership(registry, _lineage(fake.tags))
    assert str(refused.value) == (
        f"m version 2: its split membership hashes to {membership_md5(Membership(changed))}, "
        f"but its lineage tag {tag.SPLIT_MD5} says {expected}: the run's artifact was changed; "
        "the split it was trained on cannot be rebuilt from it"
    )


def test_the_report_says_how_the_split_was_made_and_why_it_differs(tmp_path):
    tags = {tag.SPLIT_MD5: "a" * 32}
    assert split_made(tags, tmp_path / "m.parquet") == (
        f"from its recorded split membership (md5 {'a' * 32})"
    )
    assert split_made(tags, None).startswith("cut afresh from its params")
    assert split_notes(tags, "a" * 32, from_membership=True) == ()
    (fresh,) = split_notes(tags, "b" * 32)
    assert "its run recorded no split membership, so it was cut afresh" in fresh
    (made,) = split_notes(tags, "b" * 32, from_membership=True)
    assert "though it was made from the version's recorded membership" in made


def _prepare_in_scratch(where: Path, params: Path, membership: Path, repo: Path) -> Splits:
    """The scratch process's `prepare` only (nothing trained), with this checkout's code."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")]),
    }
    ran = subprocess.run(
        [sys.executable, "-c", _STAGES_CODE, str(params), str(membership), "prepare"],
        cwd=where,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "from the recorded membership" in ran.stdout
    return Splits.load(where / "build" / "prepared")


def test_an_inherited_split_is_made_again_row_for_row(tmp_path, real_params, repo):
    first = read_frame(write_reviews(tmp_path / "v1.csv", ReviewSpec(rows=300, seed=3)))
    extra = read_frame(write_reviews(tmp_path / "more.csv", ReviewSpec(rows=60, seed=4)))
    grown = tmp_path / "grown.csv"
    pd.concat([first, extra], ignore_index=True).to_csv(grown, index=False)
    data = real_params.data
    parent = Membership.of(split(to_canonical(first, data), data))
    # What the retrain flow made for the second version (tasks.data.split_dataset).
    canonical = to_canonical(read_frame(grown, data), data)
    version, lineage = inherit_split(canonical, data, parent, "1")
    assert sum(lineage.kept.values()) >= len(first) and sum(lineage.new.values()) > 0
    recorded = Membership.of(version)
    fresh = split(canonical, data)
    assert membership_md5(Membership.of(fresh)) != membership_md5(recorded)

    params = tmp_path / "reproduce.params.yaml"
    dumped = real_params.updated({"data.path": str(grown)}).model_dump(mode="json")
    params.write_text(yaml.safe_dump(dumped), encoding="utf-8")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    rebuilt = _prepare_in_scratch(scratch, params, recorded.write(tmp_path / "m.parquet"), repo)
    for part in ("train", "val", "test"):
        pd.testing.assert_frame_equal(getattr(rebuilt, part), getattr(version, part))
    assert membership_md5(Membership.of(rebuilt)) == membership_md5(recorded)

"""Nothing done twice: the lineage key and the decision "is this retrain a repeat of version N?"
over the tags the registry recorded, without MLflow."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from modelyard import tags as tag
from modelyard.data.identity import DatasetVersion
from modelyard.lineage_key import (
    Environment,
    LineageKey,
    RecordedVersion,
    clean_commit,
    find_repeat,
)

COMMIT = "0123456789abcdef0123456789abcdef01234567"
SPLIT = "split-md5"
ENV = Environment(
    "0.1.0", "2.5.1", "4.46.0", "0.20.0", "2.1.0", "cpu", "-", "fp32", 2, deterministic=False
)
KEY = LineageKey(
    DatasetVersion("data/reviews.csv", "d" * 32, 10, COMMIT, None), "p" * 16, COMMIT, ENV
)
WHEN = datetime(2026, 11, 29, 14, 3, 7, tzinfo=UTC)


def version(
    number: str = "1",
    key: LineageKey = KEY,
    finished: bool = True,
    **extra: str,
) -> RecordedVersion:
    """A registered version as the retrain tags it: the key's tags, its split, the gate's."""
    tags = {
        **key.tags(),
        tag.SPLIT_MD5: SPLIT,
        tag.GATE_DECISION: "promote",
        tag.JUDGED_AGAINST: tag.NO_VERSION,
        **extra,
    }
    return RecordedVersion(number, WHEN, tags, finished)


def test_a_version_with_the_same_key_and_split_is_repeated():
    repeat = find_repeat(KEY, [version()], SPLIT, production="1")
    assert repeat.version is not None and repeat.version.version == "1"
    assert repeat.line() == (
        "identical to version 1 (registered 2026-11-29 14:03:07 UTC, gate decision promote)"
    )


def test_the_oldest_matching_version_is_named():
    assert find_repeat(KEY, [version("4"), version("2")], SPLIT, "2").version.version == "2"


@pytest.mark.parametrize("commit", [f"{COMMIT}-dirty", "unknown", "abc123"])
def test_a_dirty_or_unknown_commit_has_no_key_and_repeats_nothing(commit):
    dirty = replace(KEY, code_commit=commit)
    assert dirty.value is None and tag.LINEAGE_KEY not in dirty.tags()
    assert dirty.tags()[tag.CODE_COMMIT] == commit  # recorded all the same
    # Even a version that (somehow) carries the clean key is not taken for it.
    repeat = find_repeat(dirty, [version()], SPLIT, "1")
    assert repeat.version is None
    assert ("uncommitted changes" in repeat.line()) == commit.endswith("-dirty")
    assert "clean commit" in repeat.line()


def test_every_part_changes_the_key():
    others = [
        replace(KEY, environment=replace(ENV, torch="2.6.0")),
        replace(KEY, environment=replace(ENV, device="cuda", precision="bf16")),
        replace(KEY, environment=replace(ENV, threads=1)),
        replace(KEY, environment=replace(ENV, deterministic=True)),
        replace(KEY, params_hash="q" * 16),
        replace(KEY, dataset=replace(KEY.dataset, md5="e" * 32)),
        replace(KEY, code_commit="f" * 40),
    ]
    assert len({KEY.value, *(other.value for other in others)}) == len(others) + 1
    # Where the dataset lives, or the commit that pins it, is not what trains.
    assert replace(KEY, dataset=replace(KEY.dataset, path="x.csv", git_commit="a")).value == (
        KEY.value
    )


def test_a_different_environment_or_params_is_not_a_repeat():
    for other in (
        replace(KEY, environment=replace(ENV, transformers="4.47.0")),
        replace(KEY, params_hash="q" * 16),
    ):
        repeat = find_repeat(other, [version()], SPLIT, "1")
        assert repeat.version is None
        assert "version 1 has another lineage key" in repeat.line()


def test_a_rejected_version_still_matches_while_production_is_what_it_was_judged_against():
    rejected = version("2", **{tag.REJECTED: tag.TRUE, tag.GATE_DECISION: "reject"})
    rejected = replace(rejected, tags={**rejected.tags, tag.JUDGED_AGAINST: "1"})
    repeat = find_repeat(KEY, [rejected], SPLIT, production="1")
    assert repeat.version is rejected
    assert "gate decision reject" in repeat.line()
    # Production moved since: the same model may now be judged otherwise.
    again = find_repeat(KEY, [rejected], SPLIT, production="3")
    assert again.version is None
    assert "rejected against production version 1, not the current one" in again.line()


def test_an_unfinished_retrain_resumes_instead_of_repeating():
    """A retrain killed after registering its version (its MLflow run never FINISHED): the rerun
    resumes that run rather than taking its version for done."""
    repeat = find_repeat(KEY, [version(finished=False)], SPLIT, "1")
    assert repeat.version is None and "did not finish (it resumes)" in repeat.line()


def test_another_split_or_a_failed_deploy_is_not_a_repeat():
    assert find_repeat(KEY, [version()], "another-split", "1").version is None
    failed = version(**{tag.DEPLOY: tag.DEPLOY_FAILED})
    assert "failed its deploy check" in find_repeat(KEY, [failed], SPLIT, "1").line()


def test_no_candidate_says_so_and_an_approval_is_shown():
    assert find_repeat(KEY, [], None, None).line() == (
        "retraining: no registered version has this lineage key"
    )
    approved = version(**{tag.APPROVAL: "rejected"})
    assert (
        find_repeat(KEY, [approved], SPLIT, "1")
        .line()
        .endswith("gate decision promote, approval rejected)")
    )


def test_clean_commit():
    assert clean_commit(COMMIT)
    assert not clean_commit(COMMIT + "-dirty") and not clean_commit("unknown")


def test_the_tags_carry_every_part_but_the_ones_already_tagged():
    tags = KEY.tags()
    assert tags[tag.LINEAGE_KEY] == KEY.value and tags[tag.CODE_COMMIT] == COMMIT
    assert tags[tag.ENV_TORCH] == "2.5.1" and tags[tag.ENV_PRECISION] == "fp32"
    assert tags[tag.ENV_THREADS] == "2" and tags[tag.ENV_DETERMINISTIC] == "false"
    assert tag.DATASET_MD5 not in tags and tag.PARAMS_HASH not in tags  # lineage tags already
    ran = KEY.trained_on("cuda", "bf16")
    assert ran.value != KEY.value and ran.tags()[tag.ENV_DEVICE] == "cuda"

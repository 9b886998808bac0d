"""Rebuild from lineage, the decisions: which commit a version's code is rebuilt from (a dirty
or unknown one refused), the recorded params checked against the version's params hash, and
the verdict over the figures and environments, without git, DVC or MLflow."""

from __future__ import annotations

import math

import pytest

from modelyard import tags as tag
from modelyard.evaluation.rebuild import (
    NOT_RECORDED,
    RebuildRefused,
    check_params,
    compare_metrics,
    environment_differences,
    rebuild_commit,
    verdict,
)

COMMIT = "0123456789abcdef0123456789abcdef01234567"
RECORDED = {"test/accuracy": 0.8125, "test/macro_f1": 0.8, "slice/short_accuracy": 0.75}
ENV = {"env.torch": "2.5.1+cpu", "env.threads": "2", "env.python": "3.12.3"}


def test_the_code_commit_wins_over_the_dataset_commit():
    tags = {tag.CODE_COMMIT: COMMIT, tag.GIT_COMMIT: "f" * 40}
    assert rebuild_commit("m", "3", tags) == COMMIT
    assert rebuild_commit("m", "3", {tag.GIT_COMMIT: COMMIT}) == COMMIT


def test_a_dirty_commit_is_refused_with_the_reason():
    with pytest.raises(RebuildRefused) as refused:
        rebuild_commit("m", "3", {tag.CODE_COMMIT: f"{COMMIT}-dirty"})
    assert str(refused.value) == (
        f"m version 3 was trained from uncommitted changes (commit {COMMIT}-dirty): its code "
        "cannot be rebuilt"
    )


@pytest.mark.parametrize("tags", [{}, {tag.GIT_COMMIT: "unknown"}, {tag.CODE_COMMIT: "abc"}])
def test_an_unknown_commit_is_refused(tags):
    with pytest.raises(RebuildRefused, match="records no git commit of its code"):
        rebuild_commit("m", "3", tags)


def test_params_that_do_not_hash_to_the_tag_are_refused():
    check_params("m", "1", "a" * 16, "a" * 16)  # no refusal
    with pytest.raises(RebuildRefused) as refused:
        check_params("m", "1", "a" * 16, "b" * 16)
    assert f"hashes to {'a' * 16}, but its params_hash tag says {'b' * 16}" in str(refused.value)


def test_identical_within_the_tolerance():
    rebuilt = {name: value + 4e-7 for name, value in RECORDED.items()}
    judged = verdict(RECORDED, rebuilt, ENV, ENV)
    assert judged.identical and judged.word == "identical"
    assert judged.lines()[-1] == "verdict: identical (tolerance 1e-06)"


def test_a_delta_over_the_tolerance_is_different_and_lists_metric_and_environment():
    rebuilt = {**RECORDED, "test/accuracy": 0.8130}
    now = {**ENV, "env.torch": "2.6.0+cpu", "env.threads": "16"}
    judged = verdict(RECORDED, rebuilt, ENV, now)
    assert not judged.identical
    text = "\n".join(judged.lines())
    assert "verdict: different" in text
    assert "test/accuracy: 0.8125 → 0.813 (+0.0005)" in text
    assert "env.torch: 2.5.1+cpu → 2.6.0+cpu" in text
    assert "env.threads: 2 → 16" in text
    assert "env.python" not in text  # the same on both sides


def test_only_the_candidates_test_figures_are_compared():
    recorded = {
        **RECORDED,
        "test/production/accuracy": 0.5,
        "test/baseline/majority/accuracy": 0.5,
        "train/loss": 0.1,
    }
    names = [row.name for row in compare_metrics(recorded, RECORDED)]
    assert names == sorted(RECORDED)


def test_a_figure_on_one_side_only_is_shown_but_decides_nothing():
    rows = compare_metrics(RECORDED, {**RECORDED, "test/roc_auc": 0.9})
    (only_rebuilt,) = [row for row in rows if row.name == "test/roc_auc"]
    assert only_rebuilt.recorded is None and only_rebuilt.delta is None
    assert verdict(RECORDED, {**RECORDED, "test/roc_auc": 0.9}, ENV, ENV).identical


def test_nothing_to_compare_is_not_identical():
    judged = verdict({}, {"test/accuracy": 0.5}, ENV, ENV)
    assert not judged.identical
    assert "no test figure recorded on both sides" in "\n".join(judged.lines())


def test_nan_on_both_sides_is_the_same_figure():
    nan = {"test/roc_auc": math.nan}
    assert verdict(nan, nan, ENV, ENV).identical


def test_a_different_split_makes_it_different_with_the_note():
    judged = verdict(RECORDED, RECORDED, ENV, ENV, notes=("the rebuilt split differs",))
    assert not judged.identical
    assert "  the rebuilt split differs" in judged.lines()


def test_an_entry_known_on_one_side_only_is_a_difference():
    diffs = environment_differences(
        {"env.torch": "2.5.1"}, {"env.torch": "2.5.1", "env.numpy": "2"}
    )
    assert [(d.name, d.recorded, d.now) for d in diffs] == [("env.numpy", NOT_RECORDED, "2")]
    assert environment_differences({"env.device": "CPU"}, {"env.device": "cpu"}) == ()

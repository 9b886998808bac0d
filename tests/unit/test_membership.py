"""Split membership across dataset versions, on constructed lineages: a grown dataset keeps the
champion's test texts in test, never puts its training texts there, and the comparison set
holds out whatever the champion saw."""

from __future__ import annotations

import pandas as pd
import pytest

from modelyard.config import DataParams
from modelyard.data.dataset import LABEL, TEXT, split
from modelyard.data.membership import (
    TEST,
    TRAIN,
    VAL,
    Membership,
    SplitLineage,
    comparison_set,
    inherit_split,
    text_hashes,
)
from modelyard.evaluation.gate import decide
from modelyard.registry.splits import membership_md5

PARAMS = DataParams(labels=("neg", "pos"), seed=3)


def _frame(start: int, rows: int, prefix: str = "review") -> pd.DataFrame:
    return pd.DataFrame(
        {
            TEXT: [f"{prefix} number {i}" for i in range(start, start + rows)],
            LABEL: ["neg" if i % 3 else "pos" for i in range(start, start + rows)],
        }
    )


def _keys(frame: pd.DataFrame) -> set[str]:
    return set(text_hashes(frame[TEXT]))


def test_without_a_parent_the_split_is_the_plain_one():
    frame = _frame(0, 400)
    splits, lineage = inherit_split(frame, PARAMS, None)
    plain = split(frame, PARAMS)
    assert lineage.parent is None
    for ours, theirs in zip(
        (splits.train, splits.val, splits.test), (plain.train, plain.val, plain.test), strict=True
    ):
        pd.testing.assert_frame_equal(ours, theirs)


def test_a_grown_dataset_keeps_every_parent_split_and_splits_only_new_rows():
    v1 = _frame(0, 600)
    parent = Membership.of(split(v1, PARAMS))
    # v2: v1 plus 300 feedback rows, in another order, with one v1 text relabelled.
    v2 = pd.concat(
        [_frame(600, 300, "feedback"), v1.sample(frac=1.0, random_state=1)], ignore_index=True
    )
    splits, lineage = inherit_split(v2, PARAMS, parent, "1")

    assert _keys(splits.test) >= parent.keys(TEST)
    assert not _keys(splits.test) & parent.keys(TRAIN, VAL)
    assert not _keys(splits.train) & parent.keys(TEST, VAL)
    assert sum(lineage.kept.values()) == 600 and sum(lineage.new.values()) == 300
    assert lineage.kept[TEST] == len(parent.keys(TEST))
    # The new rows are split in the configured proportions, per label.
    new_test = splits.test[splits.test[TEXT].str.startswith("feedback")]
    assert len(new_test) == lineage.new[TEST]
    assert abs(lineage.new[TEST] - 300 * PARAMS.test_size) <= 2
    for label, group in _frame(600, 300, "feedback").groupby(LABEL):
        share = (new_test[LABEL] == label).sum() / len(group)
        assert share == pytest.approx(PARAMS.test_size, abs=0.02)
    assert "inherited from production version 1" in lineage.describe()

    comparison = comparison_set(splits.test, parent, "1", lineage)
    assert comparison.held_out == 0 and len(comparison.test) == len(splits.test)


def test_a_fresh_split_of_the_grown_dataset_overlaps_and_the_comparison_holds_it_out():
    """The case of the issue: a new cut of a grown dataset puts the champion's training texts
    in test; the comparison set removes every one of them and says how many."""
    v1 = _frame(0, 600)
    parent = Membership.of(split(v1, PARAMS))
    v2 = pd.concat([v1, _frame(600, 300, "feedback")], ignore_index=True)
    fresh = split(v2, DataParams(labels=("neg", "pos"), seed=11))
    seen = _keys(fresh.test) & parent.keys(TRAIN, VAL)
    assert seen, "the naive split must reproduce the leak for this test to mean anything"

    comparison = comparison_set(fresh.test, parent, "1", SplitLineage(None, {}, {}))
    assert comparison.held_out == len(fresh.test[text_hashes(fresh.test[TEXT]).isin(seen)])
    assert not _keys(comparison.test) & parent.keys(TRAIN, VAL)
    assert len(comparison.test) + comparison.held_out == len(fresh.test)
    assert f"{comparison.held_out} held out" in comparison.notes()[-1]


def test_a_handful_of_new_rows_and_duplicates_share_one_fate():
    v1 = _frame(0, 200)
    parent = Membership.of(split(v1, PARAMS))
    extra = pd.DataFrame(
        {TEXT: ["brand new text", "Brand  new TEXT", "another one"], LABEL: ["pos", "pos", "neg"]}
    )
    splits, lineage = inherit_split(pd.concat([v1, extra], ignore_index=True), PARAMS, parent, "4")
    assert sum(lineage.new.values()) == 3
    where = {
        name: set(part[TEXT])
        for name, part in zip(
            (TRAIN, VAL, TEST), (splits.train, splits.val, splits.test), strict=True
        )
    }
    home = [name for name, texts in where.items() if "brand new text" in texts]
    assert home and "Brand  new TEXT" in where[home[0]]


def test_the_split_is_deterministic_and_the_membership_digest_is_its_content(tmp_path):
    v1 = _frame(0, 300)
    parent = Membership.of(split(v1, PARAMS))
    v2 = pd.concat([v1, _frame(300, 100, "feedback")], ignore_index=True)
    first, _ = inherit_split(v2, PARAMS, parent, "1")
    second, _ = inherit_split(v2.sample(frac=1.0, random_state=5), PARAMS, parent, "1")
    assert _keys(first.test) == _keys(second.test) and _keys(first.val) == _keys(second.val)

    membership = Membership.of(first)
    again = Membership.read(membership.write(tmp_path / "m.parquet"))
    assert membership_md5(again) == membership_md5(Membership.of(second))
    other = Membership(again.frame.assign(split=again.frame["split"].replace({TEST: TRAIN})))
    assert membership_md5(other) != membership_md5(again)


def test_a_table_that_is_not_a_membership_is_refused(tmp_path):
    path = tmp_path / "bad.parquet"
    pd.DataFrame({"key": ["a"], "split": ["holdout"]}).to_parquet(path)
    with pytest.raises(ValueError, match="not a split membership table"):
        Membership.read(path)


def test_the_gate_report_says_how_the_comparison_set_was_made(tiny_params):
    notes = [
        "comparison set: 90 of 100 test texts; 10 held out because production version 1 "
        "trained or validated on them"
    ]
    decision = decide(
        {"accuracy": 0.9, "macro_f1": 0.9},
        {"accuracy": 0.8, "macro_f1": 0.8},
        tiny_params.gate,
        notes=notes,
    )
    assert notes[0] in decision.to_markdown() and notes[0] in decision.to_text()
    assert decision.to_dict()["notes"] == notes


def test_the_same_data_under_its_own_membership_splits_exactly_as_before():
    """A rerun on unchanged data must train on the same rows in the same order (a seeded CPU
    training then reproduces its model and the gate sees +0.0000)."""
    frame = _frame(0, 500)
    plain = split(frame, PARAMS)
    again, lineage = inherit_split(
        frame.sample(frac=1.0, random_state=9).sort_index(), PARAMS, Membership.of(plain), "1"
    )
    assert sum(lineage.new.values()) == 0
    for ours, theirs in zip(
        (again.train, again.val, again.test), (plain.train, plain.val, plain.test), strict=True
    ):
        pd.testing.assert_frame_equal(ours, theirs)

"""Which split every text belongs to, kept from one dataset version to the next, so that the
champion and a challenger are compared on texts neither of them learnt from.

A model version records its split *membership*: for every distinct text (its `text_key`,
hashed), whether it went to train, val or test. A retrain on a grown dataset inherits the
membership of the model in production: a text in its test split stays in test, a text it
trained or validated on stays out of test; only the new texts are split (seeded, stratified on
the label). The comparison set is then the candidate's test split less any text the champion
trained or validated on — which, with an inherited split, is nothing.

Pure: no I/O besides the Parquet round trip of a membership table.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from modelyard.config import DataParams
from modelyard.data.dataset import LABEL, TEXT, Splits, split, text_key

TRAIN, VAL, TEST = "train", "val", "test"
SPLITS = (TRAIN, VAL, TEST)
KEY, SPLIT = "key", "split"


def text_hashes(texts: pd.Series) -> pd.Series:
    """A short stable hash of each text as the splits compare it (whitespace collapsed, case
    folded): a membership table stores these, never the texts themselves."""
    keys = text_key(texts)
    hashed = [hashlib.sha1(key.encode("utf-8")).hexdigest()[:16] for key in keys.to_numpy()]
    return pd.Series(hashed, index=texts.index, dtype=object)


@dataclass(frozen=True)
class Membership:
    """One row per distinct text hash: the split it belongs to."""

    frame: pd.DataFrame  # columns KEY, SPLIT

    @classmethod
    def of(cls, splits: Splits) -> Membership:
        parts = [
            pd.DataFrame({KEY: text_hashes(part[TEXT]).to_numpy(), SPLIT: name})
            for name, part in zip(SPLITS, (splits.train, splits.val, splits.test), strict=True)
        ]
        frame = pd.concat(parts, ignore_index=True).drop_duplicates(KEY, keep="last")
        return cls(frame.sort_values(KEY, kind="stable").reset_index(drop=True))

    def keys(self, *splits: str) -> set[str]:
        return set(self.frame.loc[self.frame[SPLIT].isin(splits), KEY])

    def lookup(self, hashes: pd.Series) -> pd.Series:
        """The split of each hash; None where the text is not in this membership."""
        known = dict(zip(self.frame[KEY], self.frame[SPLIT], strict=True))
        return hashes.map(known).astype(object).where(hashes.isin(known.keys()), None)

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.frame.to_parquet(path, index=False)
        return path

    @classmethod
    def read(cls, path: Path) -> Membership:
        frame = pd.read_parquet(path)
        if list(frame.columns) != [KEY, SPLIT] or not frame[SPLIT].isin(SPLITS).all():
            raise ValueError(f"{path}: not a split membership table (columns {KEY}, {SPLIT})")
        return cls(frame)


@dataclass(frozen=True)
class SplitLineage:
    """How a split was made: how many rows kept their parent's split, and how many were new."""

    parent: str | None  # the model version whose membership was inherited
    kept: dict[str, int]  # rows per split that were in the parent's same split
    new: dict[str, int]  # new rows per split (seeded, stratified)

    def describe(self) -> str:
        if self.parent is None:
            return "split cut afresh (no production model to inherit from)"
        kept = ", ".join(f"{count} {name}" for name, count in self.kept.items())
        new = ", ".join(f"{count} {name}" for name, count in self.new.items())
        return (
            f"split inherited from production version {self.parent}: rows kept in its "
            f"splits ({kept}); new rows split seeded and stratified ({new})"
        )


def inherit_split(
    frame: pd.DataFrame,
    params: DataParams,
    parent: Membership | None,
    parent_version: str | None = None,
    test: pd.DataFrame | None = None,
) -> tuple[Splits, SplitLineage]:
    """Train/val/test for `frame` (canonical columns) in which every text the parent knew keeps
    its split. Without a parent, or with a fixed test file, it is `dataset.split` unchanged."""
    if parent is None or test is not None:
        return split(frame, params, test), SplitLineage(None, {}, {})
    frame = frame.reset_index(drop=True)
    hashes = text_hashes(frame[TEXT])
    inherited = parent.lookup(hashes)
    fresh = inherited.isna().to_numpy()
    assigned = inherited.copy()
    assigned[fresh] = _assign_new(hashes[fresh], frame.loc[fresh, LABEL], params)
    # Rows in the order the plain split would give them: the same data with the same parent
    # then trains on the same batches in the same order, so a rerun reproduces its model.
    plain = split(frame.assign(_row=np.arange(len(frame))), params)
    order = np.concatenate(
        [part["_row"].to_numpy() for part in (plain.train, plain.val, plain.test)]
    )
    parts = [
        frame.iloc[[row for row in order if assigned.iat[row] == name]].reset_index(drop=True)
        for name in SPLITS
    ]
    lineage = SplitLineage(
        parent_version,
        kept={name: int((inherited == name).sum()) for name in SPLITS},
        new={
            name: int(((assigned == name) & pd.Series(fresh, index=assigned.index)).sum())
            for name in SPLITS
        },
    )
    return Splits(*parts), lineage


def _assign_new(hashes: pd.Series, labels: pd.Series, params: DataParams) -> np.ndarray:
    """Split texts no parent knew: per label, the distinct texts in a seeded order, the first
    `test_size` of them to test, the next `val_size` to val, the rest to train. Rows with the
    same text share one fate. Works for a handful of new rows, where a stratified sklearn
    split would refuse."""
    groups = (
        pd.DataFrame({KEY: hashes.to_numpy(), LABEL: labels.to_numpy()})
        .drop_duplicates(KEY)
        .sort_values(KEY, kind="stable")
    )
    rng = np.random.default_rng(params.seed)
    fate: dict[str, str] = {}
    for _, members in groups.groupby(LABEL, sort=True):
        order = members[KEY].to_numpy()[rng.permutation(len(members))]
        n_test = round(len(order) * params.test_size)
        n_val = round(len(order) * params.val_size)
        fate.update(dict.fromkeys(order[:n_test], TEST))
        fate.update(dict.fromkeys(order[n_test : n_test + n_val], VAL))
        fate.update(dict.fromkeys(order[n_test + n_val :], TRAIN))
    return hashes.map(fate).to_numpy()


@dataclass(frozen=True)
class Comparison:
    """The set champion and challenger are both scored on, and why it is what it is."""

    test: pd.DataFrame
    test_rows: int  # the candidate's test split before anything was held out
    held_out: int  # test rows the champion trained or validated on
    champion: str | None
    champion_known: bool  # the champion's membership was found (else nothing could be checked)
    lineage: SplitLineage

    def notes(self) -> list[str]:
        lines = [self.lineage.describe()]
        if self.champion is None:
            return lines
        if not self.champion_known:
            lines.append(
                f"production version {self.champion} has no split membership in its "
                f"lineage: its training texts could not be held out of the "
                f"{self.test_rows} test texts"
            )
        else:
            lines.append(
                f"comparison set: {len(self.test)} of {self.test_rows} test texts; "
                f"{self.held_out} held out because production version {self.champion} "
                f"trained or validated on them"
            )
        return lines


def comparison_set(
    test: pd.DataFrame,
    champion: Membership | None,
    champion_version: str | None,
    lineage: SplitLineage,
) -> Comparison:
    """`test` less every text the champion trained or validated on."""
    if champion is None:
        return Comparison(test, len(test), 0, champion_version, False, lineage)
    seen = text_hashes(test[TEXT]).isin(champion.keys(TRAIN, VAL)).to_numpy()
    kept = test[~seen].reset_index(drop=True)
    return Comparison(kept, len(test), int(seen.sum()), champion_version, True, lineage)


def fair_or_fail(comparison: Comparison) -> Comparison:
    """A comparison set with something in it; when the champion trained or validated on every
    test text there is no fair comparison, and saying so beats comparing on nothing."""
    if comparison.test.empty:
        raise ValueError(
            f"no fair comparison: every one of the {comparison.test_rows} test texts "
            f"was in the training or validation split of production version "
            f"{comparison.champion}"
        )
    return comparison

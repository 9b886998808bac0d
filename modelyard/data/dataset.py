"""Loading a labelled text file and splitting it (stratified, seeded)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from modelyard.config import DataParams

TEXT = "text"
LABEL = "label"


class DatasetError(ValueError):
    """A dataset that cannot be read; the message names the file and the problem."""


@dataclass(frozen=True)
class Splits:
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


SUFFIXES = (".csv", ".tsv", ".parquet", ".jsonl", ".ndjson")


def _as_strings(frame: pd.DataFrame) -> pd.DataFrame:
    """Every value as the string it was written as (integer labels 0/1 become "0"/"1"), nulls kept
    as missing values, so labels compare the same whatever the file format."""
    return frame.apply(lambda column: column.map(lambda v: None if pd.isna(v) else str(v)))


def read_frame(path: Path) -> pd.DataFrame:
    """Read a labelled text file as strings: labels stay as written, no text becomes a number."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DatasetError(
            f"{path}: unsupported file type {suffix!r} (expected one of {', '.join(SUFFIXES)})"
        )
    try:
        if suffix in {".csv", ".tsv"}:
            return pd.read_csv(
                path, sep="\t" if suffix == ".tsv" else ",", dtype=str, keep_default_na=False,
                na_values=[""],
            )
        if suffix == ".parquet":
            return _as_strings(pd.read_parquet(path))
        return _as_strings(pd.read_json(path, lines=True, dtype=False))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError,
            ValueError, OSError) as error:
        raise DatasetError(f"{path}: cannot be parsed as {suffix[1:]}: {error}") from None


def to_canonical(frame: pd.DataFrame, params: DataParams) -> pd.DataFrame:
    """Rename the configured text/label columns to `text`/`label`. Missing columns are left for
    validation to report, together with every other problem, in one go."""
    renamed = frame.rename(columns={params.text_column: TEXT, params.label_column: LABEL})
    keep = [column for column in (TEXT, LABEL) if column in renamed.columns]
    return renamed[keep]


def split(frame: pd.DataFrame, params: DataParams) -> Splits:
    """Stratified train/val/test split; the same frame and seed always give the same split."""
    from sklearn.model_selection import train_test_split

    rest, test = train_test_split(
        frame, test_size=params.test_size, stratify=frame[LABEL], random_state=params.seed
    )
    val_share = params.val_size / (1.0 - params.test_size)
    train, val = train_test_split(
        rest, test_size=val_share, stratify=rest[LABEL], random_state=params.seed
    )
    return Splits(*(part.reset_index(drop=True) for part in (train, val, test)))

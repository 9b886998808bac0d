"""Feedback becomes data: the labelled predictions of the platform database merged into a
training dataset, as a new dataset version validated by the same suite.

A text that appears in both keeps the label the feedback gave (a person said so, after the
model answered); duplicates collapse to one row (the latest feedback per prediction, then one
row per normalised text). Predictions logged as hashes only cannot become data and are counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from modelyard.adapters.catalog import CatalogError, Entry
from modelyard.config import DataParams, Params
from modelyard.data.dataset import LABEL, TEXT, text_key

if TYPE_CHECKING:
    from modelyard.adapters.datasets import Added


@dataclass(frozen=True)
class FeedbackData:
    frame: pd.DataFrame  # canonical columns: text, label
    labelled: int  # feedback rows considered
    without_text: int  # of those, predictions logged as hashes only


def read_feedback(
    database_url: str,
    model: str | None = None,
    since: datetime | None = None,
    keys: tuple[str, ...] = (),
) -> FeedbackData:
    """The model's labelled predictions; `keys`: only feedback sent with one of these API keys
    (their ids; empty: all feedback, with a key or without)."""
    from sqlalchemy import select

    from modelyard.store.db import engine_for
    from modelyard.store.models import Feedback, Prediction
    from modelyard.store.roles import answered

    query = (
        select(Prediction.text, Feedback.label, Feedback.created_at, Feedback.prediction_id)
        .join(Prediction, Prediction.id == Feedback.prediction_id)
        .where(answered(Prediction.role))  # labels of answers only (not shadow, not failed)
    )
    if model is not None:
        query = query.where(Prediction.model == model)
    if since is not None:
        query = query.where(Feedback.created_at >= since)
    if keys:
        query = query.where(Feedback.key_id.in_(keys))
    engine = engine_for(database_url)
    try:
        with engine.connect() as connection:
            rows = pd.read_sql(query, connection)
    finally:
        engine.dispose()
    latest = rows.sort_values("created_at").drop_duplicates("prediction_id", keep="last")
    with_text = latest[latest["text"].notna()]
    frame = pd.DataFrame(
        {TEXT: with_text["text"].astype(str), LABEL: with_text["label"].astype(str)}
    ).reset_index(drop=True)
    return FeedbackData(frame, len(latest), int(latest["text"].isna().sum()))


def merge(training: pd.DataFrame, feedback: pd.DataFrame) -> pd.DataFrame:
    """Training rows plus feedback rows (canonical columns), one row per normalised text, the
    feedback's label winning."""
    both = pd.concat(
        [training[[TEXT, LABEL]].assign(_feedback=0), feedback[[TEXT, LABEL]].assign(_feedback=1)],
        ignore_index=True,
    )
    both["_key"] = text_key(both[TEXT])
    both = both.sort_values("_feedback", kind="stable")
    merged = both.drop_duplicates("_key", keep="last").sort_index()
    return merged[[TEXT, LABEL]].reset_index(drop=True)


def count_new(training: pd.DataFrame, feedback: pd.DataFrame) -> int:
    """Feedback texts (canonical columns) whose text, with that label, the training data does
    not already hold: what a retrain on the merged data could learn that it has not."""
    known = set(zip(text_key(training[TEXT]), training[LABEL].astype(str), strict=True))
    latest = feedback.assign(_key=text_key(feedback[TEXT])).drop_duplicates("_key", keep="last")
    return sum(
        (key, str(label)) not in known
        for key, label in zip(latest["_key"], latest[LABEL], strict=True)
    )


def base_for(catalog_entries: list[Entry], md5: str, path: str) -> tuple[str, str]:
    """The dataset a model was trained on as (spec to read, dataset name for the next version):
    the catalog version with those bytes when there is one, else the file its lineage names."""
    from pathlib import Path

    for entry in sorted(catalog_entries, key=lambda e: (e.name, e.version)):
        if entry.md5 == md5:
            return entry.ref, entry.name
    return path, Path(path).stem


def to_source_columns(frame: pd.DataFrame, data: DataParams) -> pd.DataFrame:
    """Back to the dataset's own column names, so the new version reads like the others."""
    return frame.rename(columns={TEXT: data.text_column, LABEL: data.label_column})


def add_feedback_version(
    base: str,
    name: str,
    params: Params,
    database_url: str,
    root: Path,
    cache: Path,
    since: datetime | None = None,
    push: bool = True,
    keys: tuple[str, ...] = (),
) -> tuple[Added, FeedbackData]:
    """Training data `base` (a file or NAME@VERSION) + the model's feedback → the next version
    of `name`, validated and added like `modelyard data add`; `keys`: only the feedback those
    API keys sent. (Added, FeedbackData)."""
    import tempfile

    from modelyard.adapters import datasets as sources
    from modelyard.data.dataset import read_whole, to_canonical

    source = sources.resolve(base, None, root, cache)
    training = to_canonical(read_whole(source.path, params.data), params.data)
    feedback = read_feedback(database_url, params.model.name, since, keys)
    if feedback.frame.empty:
        sent_by = f" sent with the key(s) {', '.join(keys)}" if keys else ""
        raise CatalogError(
            f"no feedback with text{sent_by} for {params.model.name} in "
            f"{database_url.split('@')[-1]} "
            f"({feedback.labelled} labelled predictions, {feedback.without_text} logged as "
            "hashes only): nothing to add"
        )
    merged = to_source_columns(merge(training, feedback.frame), params.data)
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / f"{name}-with-feedback.csv"
        merged.to_csv(path, index=False)
        added = sources.add(root, path, name, params, push=push)
    return added, feedback

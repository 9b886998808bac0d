"""The monitor's reads outside its prediction window: the data a version was trained on, found
again from its lineage (the file it names, or the dataset cache's copy of those bytes, or the
catalog version with them), and what a response to a degradation weighs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from modelyard.data.identity import file_md5
from modelyard.monitoring.action import Action, decide_response, training_unreadable

if TYPE_CHECKING:
    import pandas as pd

    from modelyard.config import DataParams, Params
    from modelyard.monitoring.reference import TrainedOn


def find_copy(md5: str | None, path: str | None, cache: Path) -> Path | None:
    """The file at `path`, or a dataset-cache copy (named by md5), that still holds exactly the
    bytes `md5` names; None when none is left."""
    candidates = [Path(path)] if path else []
    if md5 and cache.is_dir():
        candidates += sorted(cache.glob(f"{md5}*"))
    for candidate in candidates:
        if candidate.is_file() and file_md5(candidate) == md5:
            return candidate
    return None


def reference_texts(trained: TrainedOn, data: DataParams, cache: Path) -> list[str] | None:
    """The texts the version was trained on; None when its bytes cannot be found."""
    from modelyard.data.dataset import TEXT, read_frame, to_canonical

    copy = find_copy(trained.md5, trained.path, cache)
    if copy is None:
        return None
    texts: list[str] = to_canonical(read_frame(copy, data), data)[TEXT].tolist()
    return texts


def training_frame(
    base: str, md5: str, path: str, root: Path | None, cache: Path, data: DataParams | None = None
) -> pd.DataFrame | None:
    """The version's training data as read from its file (decoded and split as `data` says):
    the catalog version `base` (in a checkout), else the lineage's file or its dataset-cache
    copy, md5-checked; None when none is left."""
    from modelyard.adapters import datasets as sources
    from modelyard.data.dataset import read_frame

    if root is not None and base != path:
        return read_frame(sources.resolve(base, None, root, cache).path, data)
    copy = find_copy(md5, path, cache)
    return None if copy is None else read_frame(copy, data)


@dataclass(frozen=True)
class ResponsePlan:
    """What to do about a degraded window, with what it needs to do it."""

    action: Action
    base: str  # the training data's spec: a catalog NAME@VERSION, or the lineage's file
    name: str  # the dataset a version built from feedback belongs to
    judged: bool  # False: the training data could not be read, nothing was weighed


def plan_response(
    model: str,
    version: str,
    trained: TrainedOn,
    params: Params,
    database_url: str,
    root: Path | None,
    cache: Path,
) -> ResponsePlan:
    """Read what the decision weighs — the training data, the model's feedback, the last
    action taken for this version — and decide (`decide_response`)."""
    from modelyard.adapters.catalog import Catalog
    from modelyard.adapters.feedback import base_for, count_new, read_feedback
    from modelyard.data.dataset import to_canonical
    from modelyard.store.monitor_log import last_action

    md5 = trained.md5 if trained.md5 is not None else ""
    path = trained.path if trained.path is not None else str(params.data.path)
    base, name = base_for(Catalog(root).entries() if root else [], md5, path)
    training = training_frame(base, md5, path, root, cache, params.data)
    if training is None:
        return ResponsePlan(training_unreadable(version, md5), base, name, judged=False)
    feedback = read_feedback(database_url, model)
    new = count_new(to_canonical(training, params.data), feedback.frame)
    action = decide_response(
        new,
        params.monitor.min_feedback_for_retrain,
        last_action(database_url, model, version),
        root is not None,
        base,
        name,
    )
    return ResponsePlan(action, base, name, judged=True)

"""Is this retrain a repeat of a registered version? The candidates (same lineage key) read from
the registry, the split this retrain would train on, and the core's decision
(`modelyard.lineage_key.find_repeat`)."""

from __future__ import annotations

import pandas as pd

from modelyard import tags as tag
from modelyard.adapters.promotion import champion_membership
from modelyard.config import DataParams
from modelyard.data import dataset as ds
from modelyard.data.membership import Membership, inherit_split
from modelyard.lineage_key import LineageKey, Repeat, find_repeat
from modelyard.registry.mlflow_registry import MlflowRegistry
from modelyard.registry.splits import membership_md5


def repeat_of(
    registry: MlflowRegistry,
    name: str,
    key: LineageKey,
    frame: pd.DataFrame,
    test: pd.DataFrame | None,
    params: DataParams,
) -> Repeat:
    """The version of `name` this retrain (on `frame`, and `test` when a test file is given)
    would make again, or why it trains. The split is computed only when a version has the key:
    it is inherited from the production model, as the retrain would inherit it."""
    value = key.value
    candidates = [] if value is None else registry.versions_with_lineage_key(name, value)
    production = registry.alias_version(name, tag.PRODUCTION)
    split_md5 = None
    if candidates:
        parent = champion_membership(registry, name, production)
        canonical_test = None if test is None else ds.to_canonical(test, params)
        splits, _ = inherit_split(
            ds.to_canonical(frame, params), params, parent, production, canonical_test
        )
        split_md5 = membership_md5(Membership.of(splits))
    return find_repeat(key, candidates, split_md5, production)

"""The registry's side of "nothing done twice": versions found by their lineage key in a real
(SQLite) MLflow store, with when they were registered and whether their run finished."""

from __future__ import annotations

from pathlib import Path

from modelyard import tags as tag
from modelyard.registry.mlflow_registry import MlflowRegistry
from tests.helpers.models import register_tiny_versions

NAME = "keyed"


def test_versions_are_found_by_their_lineage_key(tmp_path: Path):
    registry = MlflowRegistry(
        f"sqlite:///{tmp_path}/mlflow.db", "keys", (tmp_path / "mlruns").as_uri()
    )
    assert registry.versions_with_lineage_key(NAME, "k1") == []  # no such model yet
    keys = {1: "k1", 2: "k2", 3: "k1"}
    register_tiny_versions(
        registry, NAME, tmp_path, seeds=(1, 2, 3), tags=lambda seed: {tag.LINEAGE_KEY: keys[seed]}
    )
    found = sorted(registry.versions_with_lineage_key(NAME, "k1"), key=lambda v: v.version)
    assert [v.version for v in found] == ["1", "3"]
    assert all(v.run_finished and v.tags[tag.LINEAGE_KEY] == "k1" for v in found)
    assert found[0].registered <= found[1].registered and found[0].registered.tzinfo is not None
    # A version whose run did not end FINISHED (a killed retrain) says so.
    registry.client.set_terminated(registry.version_info(NAME, "3").run_id or "", "FAILED")
    again = sorted(registry.versions_with_lineage_key(NAME, "k1"), key=lambda v: v.version)
    assert [v.run_finished for v in again] == [True, False]
    assert registry.versions_with_lineage_key(NAME, "k9") == []

"""A model version's split membership in MLflow: logged with its run, named and content-checked
by the version's `split_md5` lineage tag, read back to make the next split and a fair
comparison (`modelyard.data.membership`)."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from modelyard.data.membership import Membership
from modelyard.registry.mlflow_registry import MlflowRegistry
from modelyard.tags import SPLIT_MD5

MEMBERSHIP_DIR = "split"
MEMBERSHIP_FILE = "membership.parquet"


class SplitMembershipError(ValueError):
    """A recorded membership that does not match its lineage tag: never used, always named."""


def membership_md5(membership: Membership) -> str:
    """The digest of the table's content (not of its Parquet bytes, which a writer may vary)."""
    digest = hashlib.md5()
    for key, split in zip(membership.frame["key"], membership.frame["split"], strict=True):
        digest.update(f"{key}\t{split}\n".encode())
    return digest.hexdigest()


def log_membership(registry: MlflowRegistry, run_id: str, membership: Membership) -> str:
    """Store the membership with the run; its md5, for the version's lineage."""
    with tempfile.TemporaryDirectory() as scratch:
        membership.write(Path(scratch) / MEMBERSHIP_FILE)
        registry.log_artifacts(run_id, Path(scratch), MEMBERSHIP_DIR)
    return membership_md5(membership)


def load_membership(registry: MlflowRegistry, name: str, version: str) -> Membership | None:
    """The membership `version` was trained with; None for a version registered before
    memberships were recorded. Raises when the stored table does not hash to its tag."""
    info = registry.version_info(name, version)
    expected = info.tags.get(SPLIT_MD5)
    if not expected or info.run_id is None:
        return None
    with tempfile.TemporaryDirectory() as scratch:
        path = registry.download_artifact(
            info.run_id, f"{MEMBERSHIP_DIR}/{MEMBERSHIP_FILE}", Path(scratch)
        )
        membership = Membership.read(path)
    found = membership_md5(membership)
    if found != expected:
        raise SplitMembershipError(
            f"{name} version {version}: its split membership hashes to {found}, but its lineage "
            f"tag {SPLIT_MD5} says {expected}: the run's artifact was changed"
        )
    return membership

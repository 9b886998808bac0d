"""The default dataset of `make run`: pulled from DVC when it can be, otherwise regenerated from
its seed — and then it must hash to exactly the committed `.dvc` pointer, or we stop."""

from __future__ import annotations

from pathlib import Path

from modelyard.data.identity import dvc_pointer_md5, file_md5
from modelyard.data.synthetic import ReviewSpec, write_reviews
from modelyard.data.versioning import DvcRepo


class DatasetMismatch(RuntimeError):
    pass


def prepare_default_dataset(root: Path, path: Path, spec: ReviewSpec = ReviewSpec()) -> str:
    """Make sure `path` holds the committed version, is in DVC's cache and in the remote.
    Returns how it was obtained."""
    dvc = DvcRepo(root)
    expected = dvc_pointer_md5(path)
    how = "present"
    if not (path.is_file() and (expected is None or file_md5(path) == expected)):
        if expected is not None and dvc.pull(path):
            how = "pulled from DVC"
        else:
            write_reviews(path, spec)
            how = "generated from seed"
    actual = file_md5(path)
    if expected is not None and actual != expected:
        raise DatasetMismatch(
            f"{path} hashes to {actual} but {path}.dvc records {expected}: the generator no "
            "longer reproduces the committed dataset version"
        )
    dvc.add(path)
    dvc.push(path)
    return how

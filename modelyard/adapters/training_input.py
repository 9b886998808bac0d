"""What the retrain flow would refuse first, checked without Prefect or a model: the dataset
version exists, the file is there and readable in its format, both columns are present, every
text is text and every row has a label."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelyard.config import Params


class TrainingInputError(ValueError):
    """The training data would be refused; the message names the version (or file) and rows."""


def check_training_input(
    params: Params, data: str | None, data_repo: str | None, remote: bool, root: Path, cache: Path
) -> None:
    """Check `data` (default: data.path) and data.test_path; TrainingInputError otherwise.

    `root` is where this project's versions are looked up, `cache` where a version is fetched
    to. With `remote`, a plain file that is not on this machine is left to the worker, which
    may see files this one does not; versions (NAME@VERSION) are checked here as well."""
    from modelyard.adapters.catalog import CatalogError, DataRef
    from modelyard.adapters.workspace_catalog import check_reference

    specs = [data or str(params.data.path)]
    if params.data.test_path is not None:
        specs.append(str(params.data.test_path))
    try:  # an unknown version of this project, without pandas or DVC: the quickest refusal
        for spec in specs:
            if data_repo is None and DataRef.looks_like(spec):
                check_reference(spec, root)
    except CatalogError as error:
        raise TrainingInputError(str(error)) from None
    for spec in specs:
        versioned = data_repo is not None or DataRef.looks_like(spec)
        if remote and not versioned and not Path(spec).exists():
            continue
        _check_one(params, spec, data_repo, cache)


def _check_one(params: Params, spec: str, data_repo: str | None, cache: Path) -> None:
    from modelyard.adapters import datasets as sources
    from modelyard.adapters.catalog import CatalogError
    from modelyard.data.dataset import DatasetError, read_frame
    from modelyard.data.input_check import InputError, check_training_frame

    source = None
    try:
        source = sources.resolve(spec, data_repo, None, cache)
        frame = read_frame(source.path, params.data)
        check_training_frame(frame, params.data, source.label, source.path)
    except (CatalogError, DatasetError, InputError, OSError) as error:
        message = str(error)
        if source is not None and source.ref is not None:  # the version, not the cache file
            message = message.replace(str(source.path), source.label)
        raise TrainingInputError(message) from None

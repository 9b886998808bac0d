"""The default dataset of `make run`: pulled from DVC when it can be, otherwise regenerated from
its seed — and then it must hash to exactly the committed `.dvc` pointer, or we stop. With it, the
dataset versions the checkout pins are put in the workspace, so that `dvc status` on a fresh
clone has nothing to report as deleted."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from modelyard.adapters.catalog import DATASETS
from modelyard.adapters.dvc import DvcRepo
from modelyard.data.identity import dvc_pointer_md5, file_md5
from modelyard.data.synthetic import ReviewSpec, write_reviews

_POINTER = ".dvc"
# DVC's own logger and the one of its data layer, which warns "Some of the cache files do not
# exist neither locally nor on remote" on a miss.
_DVC_LOGGERS = ("dvc", "dvc_data")


class DatasetMismatch(RuntimeError):
    pass


@dataclass(frozen=True)
class Materialised:
    """Dataset version files (paths inside the repository) by how they got into the workspace."""

    present: tuple[str, ...] = ()
    restored: tuple[str, ...] = ()  # from DVC's cache or the remote
    unavailable: tuple[str, ...] = ()  # in neither: only a remote that has them can help


@contextmanager
def _misses_are_answers() -> Iterator[None]:
    """A pull that finds nothing is an expected answer here (the caller falls back or reports
    it), not a warning to print."""
    import dvc  # noqa: F401 - importing DVC sets its loggers' levels: it must come first

    loggers = [logging.getLogger(name) for name in _DVC_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def prepare_default_dataset(root: Path, path: Path, spec: ReviewSpec | None = None) -> str:
    """Make sure `path` holds the committed version, is in DVC's cache and in the remote.
    Returns how it was obtained."""
    spec = spec or ReviewSpec()
    dvc = DvcRepo(root)
    expected = dvc_pointer_md5(path)
    how = "present"
    if not (path.is_file() and (expected is None or file_md5(path) == expected)):
        with _misses_are_answers():
            pulled = expected is not None and dvc.pull(path)
        if pulled:
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


def materialise_dataset_versions(root: Path) -> Materialised:
    """Put each dataset version this checkout pins (`data/datasets/NAME/vN.<ext>.dvc`) into the
    workspace from DVC's cache or remote. A fresh clone has none of those files, and `dvc status`
    reports every one as deleted; the default dataset's own version (`reviews@1`, the same md5)
    comes from the cache `prepare_default_dataset` just filled. A file already there is left as
    it is, whatever it holds: this never overwrites."""
    dvc = DvcRepo(root)
    present: list[str] = []
    restored: list[str] = []
    unavailable: list[str] = []
    for pointer in sorted((root / DATASETS).glob(f"*/*{_POINTER}")):
        path = pointer.with_name(pointer.name.removesuffix(_POINTER))
        name = path.relative_to(root).as_posix()
        if path.exists():
            present.append(name)
            continue
        with _misses_are_answers():
            pulled = dvc.pull(path)
        (restored if pulled else unavailable).append(name)
    return Materialised(tuple(present), tuple(restored), tuple(unavailable))

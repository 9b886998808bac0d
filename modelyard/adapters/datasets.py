"""Where training data comes from: a file path, or a dataset version `NAME@VERSION` of this or
another repository; and how a new version gets in (`modelyard data add`).

Adding validates first (the same suite as training), so a version that exists always passed the
data gate, and nothing is written — no copy, no pointer, no DVC cache entry — for a bad file.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from modelyard.adapters.catalog import (
    NAME,
    Catalog,
    CatalogError,
    DataRef,
    Entry,
    next_version,
    now,
    version_path,
    write_meta,
)
from modelyard.adapters.dvc import DvcRepo
from modelyard.config import DataParams, Params
from modelyard.data import dataset as ds
from modelyard.data.identity import DatasetVersion, dataset_version, file_md5, git_commit
from modelyard.data.validation import ValidationReport, ensure_valid, validate_datasets

if TYPE_CHECKING:
    import pandas as pd


def project_root(start: Path | None = None) -> Path:
    """The nearest directory upwards holding `.dvc/`: where datasets are versioned."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / ".dvc").is_dir():
            return directory
    raise CatalogError(
        f"{here} is not inside a DVC repository (no .dvc/ here or above): run "
        "`dvc init` in the project first"
    )


def checkout_root() -> Path | None:
    """The project checkout around the working directory (where new dataset versions are
    added); None outside one."""
    try:
        return project_root()
    except CatalogError:
        return None


@dataclass(frozen=True)
class Source:
    """A dataset made local: `path` holds exactly the bytes of `version`."""

    path: Path
    label: str  # how messages name it: the path, or "reviews@2 (data/datasets/reviews/v2.csv)"
    version: DatasetVersion
    ref: str | None = None
    # Where the version's bytes resolve for a person: the DVC remote's copy (or the path in the
    # repository, at its revision); None for a plain file (its path is the answer).
    uri: str | None = None


def resolve(spec: str, repo: str | None, root: Path | None, cache_dir: Path) -> Source:
    """A path, or `NAME@VERSION` read through dvc.api from `repo` (default: the project at
    `root`) into `cache_dir` (named by md5, so a version is fetched once)."""
    if not DataRef.looks_like(spec) and repo is None:
        path = Path(spec)
        if not path.is_file():
            raise ds.DatasetError(f"{path}: no such file")
        return Source(path, str(path), dataset_version(path))
    ref = DataRef.parse(spec, repo)
    where: str | Path = repo or root or project_root()  # raises, naming the directory
    catalog = Catalog(where)
    stored = _stored_at(where, Path(repo) if repo and Path(repo).is_dir() else None)
    entry, rev = catalog.resolve(ref)
    local = catalog.read_bytes_to(entry, rev, cache_dir / f"{entry.md5}{Path(entry.path).suffix}")
    where = "" if repo is None else f" of {repo}"
    at = f" at {rev}" if rev else ""
    label = f"{entry.ref}{where}{at} ({entry.path})"
    commit = (
        git_commit(root)
        if root is not None and repo is None and rev is None
        else (rev or "unknown")
    )
    version = replace(
        dataset_version(local), path=label, git_commit=commit, dvc_pointer_md5=entry.md5
    )
    return Source(local, label, version, entry.ref, stored(entry.path, rev))


def _stored_at(where: str | Path, local: Path | None) -> Callable[[str, str | None], str]:
    """How to name where a version's bytes are: the DVC remote URL for a repository on this
    machine; `REPO/PATH[@REV]` for a git URL (asking DVC would clone it again) or when no
    remote is configured."""
    directory = where if isinstance(where, Path) else local

    def at(path: str, rev: str | None) -> str:
        if directory is not None:
            import dvc.api

            try:
                return str(dvc.api.get_url(path, repo=str(directory), rev=rev))
            except Exception:  # noqa: BLE001 - no remote configured: the path says where
                pass
        return f"{str(where).rstrip('/')}/{path}" + (f"@{rev}" if rev else "")

    return at


def read(source: Source, data: DataParams | None = None) -> pd.DataFrame:
    """The rows of `source`, decoded and split as `data` says; a DatasetError names a dataset
    version as such, not by the cache file it was fetched into."""
    try:
        return ds.read_frame(source.path, data)
    except ds.DatasetError as error:
        if source.ref is None:
            raise
        raise ds.DatasetError(str(error).replace(str(source.path), source.label)) from error


def versioning_warning(spec: str, source: Source) -> str | None:
    """What is wrong with how a plain file is versioned (not at all, or changed since `dvc add`),
    so a run on it cannot be reproduced; None for a dataset version or a file its pointer
    matches."""
    version = source.version
    if source.ref is not None:
        return None
    if version.dvc_pointer_md5 is None:
        return f"{spec} is not versioned: `modelyard data add {spec}` (or `dvc add`) to keep it"
    if not version.matches_pointer:
        return (
            f"{spec} differs from its .dvc pointer ({version.dvc_pointer_md5[:10]}): the "
            "data changed since `dvc add`"
        )
    return None


@dataclass(frozen=True)
class Added:
    entry: Entry
    created: bool
    # Other names the same bytes were already added under (one version, several names).
    same_bytes: list[str]
    report: ValidationReport | None


def add(root: Path, source: Path, name: str, params: Params, push: bool = True) -> Added:
    """Validate `source`, copy it in as the next version of `name`, track it with DVC, describe
    it in the pointer's `meta:`, push it to the default remote."""
    if not NAME.match(name):
        raise CatalogError(f"{name!r} is not a dataset name (letters, digits, '.', '_', '-')")
    frame = ds.read_frame(source, params.data)
    report = ensure_valid(validate_datasets(frame, params.data, params.validation), str(source))
    md5 = file_md5(source)
    catalog = Catalog(root)
    versions = catalog.versions(name)
    for entry in versions:
        if entry.md5 == md5:
            return Added(entry, False, [], report)
    same_bytes = [entry.ref for entry in catalog.entries() if entry.md5 == md5]

    version = next_version(versions)
    target = version_path(root, name, version, source.suffix)
    target.parent.mkdir(parents=True, exist_ok=True)
    pointer = target.with_name(target.name + ".dvc")
    ignore = target.parent / ".gitignore"
    ignore_before = ignore.read_text() if ignore.exists() else None
    partial = target.with_name(f".{target.name}.partial")
    try:
        shutil.copyfile(source, partial)
        os.replace(partial, target)
        dvc = DvcRepo(root)
        dvc.add(target)
        labels = ds.to_canonical(frame, params.data)[ds.LABEL].value_counts()
        write_meta(
            pointer,
            {
                "name": name,
                "version": version,
                "rows": len(frame),
                "classes": {str(k): int(v) for k, v in labels.sort_index().items()},
                "added": now(),
                "source": source.name,
            },
        )
        if push:
            dvc.push(target)
    except BaseException:
        # Leave the catalog as it was: no half-added version.
        for path in (partial, target, pointer):
            path.unlink(missing_ok=True)
        if ignore_before is None:
            ignore.unlink(missing_ok=True)
        else:
            ignore.write_text(ignore_before)
        raise
    entry = next(e for e in Catalog(root).versions(name) if e.version == version)
    return Added(entry, True, same_bytes, report)

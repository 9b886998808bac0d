"""This checkout's dataset versions, read straight from the `.dvc` pointer files on disk.

For the workspace that is exactly what `Catalog` lists through DVC's file system (the pointers
are what DVC reads), without DVC's start-up: opening a `DVCFileSystem` parses every stage and
costs a second or more, which a command refusing `reviews@99` should not pay. Resolving stays
`Catalog.resolve` (one set of rules); a git revision falls through to DVC as before.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from modelyard.adapters.catalog import DATASETS, Catalog, DataRef, Entry, _entry

_POINTER = ".dvc"


class WorkspaceCatalog(Catalog):
    """The dataset versions of the checkout at `root`, as its working tree has them."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.root = Path(root)

    def names(self) -> list[str]:
        folder = self.root / DATASETS
        return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []

    def versions(self, name: str) -> list[Entry]:
        folder = self.root / DATASETS / name
        if not folder.is_dir():
            return []
        entries = []
        for pointer in folder.glob(f"v*{_POINTER}"):
            data = yaml.safe_load(pointer.read_text(encoding="utf-8")) or {}
            path = (DATASETS / name / pointer.name.removesuffix(_POINTER)).as_posix()
            entry = _entry(name, path, data if isinstance(data, dict) else {})
            if entry is not None:
                entries.append(entry)
        return sorted(entries, key=lambda entry: entry.version)


def checkout_root(start: Path) -> Path | None:
    """The nearest directory upwards holding `.dvc/` (as `sources.project_root` finds it,
    without importing what `sources` needs for reading data); None when there is none."""
    here = start.resolve()
    return next((d for d in (here, *here.parents) if (d / ".dvc").is_dir()), None)


def check_reference(spec: str, start: Path) -> Entry | None:
    """The entry `spec` (NAME@VERSION) names in the checkout holding `start`; CatalogError,
    listing what exists, when there is none. None outside a checkout (left to the full
    resolution, which says so)."""
    root = checkout_root(start)
    if root is None:
        return None
    entry, _ = WorkspaceCatalog(root).resolve(DataRef.parse(spec))
    return entry

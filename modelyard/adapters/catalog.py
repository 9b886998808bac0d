"""Named dataset versions, kept by DVC.

Version N of dataset NAME is the DVC-tracked file `data/datasets/NAME/vN.<ext>`: its pointer
`vN.<ext>.dvc` (committed to git) holds DVC's content hash and, under DVC's free-form `meta:`
key, what `modelyard data list/show` print (rows, classes, when it was added, where it came
from). Every version stays addressable at every later git revision, so `NAME@N` needs no
history walk, and the bytes come through `dvc.api` from the workspace, the DVC cache or the DVC
remote — also from another checkout or a git URL, as a worker that only has the repository's URL
would read them.

The identity of a version is its md5: the same bytes added under two names are one object in
DVC's cache and remote, and `data show` lists every name they were added under.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from modelyard.data.identity import file_md5

DATASETS = PurePosixPath("data/datasets")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_VERSION_FILE = re.compile(r"^v(\d+)(\.[A-Za-z0-9]+)$")


class CatalogError(ValueError):
    """A dataset reference or name that cannot be used; the message says why and what exists."""


@dataclass(frozen=True)
class Entry:
    name: str
    version: int
    md5: str
    path: str  # inside the repository, POSIX
    size: int
    rows: int | None = None
    classes: dict[str, int] = field(default_factory=dict)
    added: str | None = None
    source: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, **asdict(self)}


@dataclass(frozen=True)
class DataRef:
    """`NAME@VERSION` (VERSION: a number, `vN`, `latest`, an md5 prefix, or a git revision),
    read from `repo` (a path or git URL; None: this project)."""

    name: str
    version: str = "latest"
    repo: str | None = None

    @classmethod
    def parse(cls, text: str, repo: str | None = None) -> DataRef:
        name, sep, version = text.partition("@")
        if not NAME.match(name) or (sep and not version):
            raise CatalogError(
                f"{text!r} is not a dataset reference (expected NAME@VERSION, e.g. "
                "reviews@2, reviews@latest, reviews@<md5 prefix>)"
            )
        return cls(name, version or "latest", repo)

    @staticmethod
    def looks_like(text: str) -> bool:
        """A reference rather than a file: NAME@VERSION with no path separator."""
        return "@" in text and "/" not in text.partition("@")[0] and not Path(text).exists()


def _meta(pointer: dict[str, Any]) -> dict[str, Any]:
    meta = pointer.get("meta")
    return meta if isinstance(meta, dict) else {}


def _entry(name: str, path: str, pointer: dict[str, Any]) -> Entry | None:
    match = _VERSION_FILE.match(PurePosixPath(path).name)
    outs = pointer.get("outs") or []
    if not match or not outs or "md5" not in outs[0]:
        return None
    meta = _meta(pointer)
    return Entry(
        name=name,
        version=int(match.group(1)),
        md5=str(outs[0]["md5"]),
        path=path,
        size=int(outs[0].get("size", 0)),
        rows=meta.get("rows"),
        classes=dict(meta.get("classes") or {}),
        added=meta.get("added"),
        source=meta.get("source"),
    )


class Catalog:
    """The dataset versions of one repository at one revision (None: the workspace)."""

    def __init__(self, repo: str | Path, rev: str | None = None) -> None:
        self.repo, self.rev = str(repo), rev
        self._fs: Any = None

    @property
    def fs(self) -> Any:
        if self._fs is None:
            from dvc.api import DVCFileSystem

            try:
                self._fs = DVCFileSystem(self.repo, rev=self.rev)
            except Exception as error:  # noqa: BLE001 - DVC raises many kinds; all mean "cannot open"
                where = f"{self.repo} at {self.rev}" if self.rev else self.repo
                raise CatalogError(f"cannot open the DVC repository {where}: {error}") from None
        return self._fs

    def names(self) -> list[str]:
        if not self.fs.exists(str(DATASETS)):
            return []
        return sorted(
            PurePosixPath(p).name
            for p in self.fs.ls(str(DATASETS), detail=False)
            if self.fs.isdir(p)
        )

    def versions(self, name: str) -> list[Entry]:
        folder = DATASETS / name
        if not self.fs.exists(str(folder)):
            return []
        entries = []
        for info in self.fs.ls(str(folder), detail=True):
            if not info.get("dvc_info", {}).get("isout"):
                continue
            pointer = yaml.safe_load(self.fs.cat_file(info["name"] + ".dvc")) or {}
            entry = _entry(name, info["name"], pointer)
            if entry is not None:
                entries.append(entry)
        return sorted(entries, key=lambda entry: entry.version)

    def entries(self) -> list[Entry]:
        return [entry for name in self.names() for entry in self.versions(name)]

    def resolve(self, ref: DataRef) -> tuple[Entry, str | None]:
        """The entry `ref` names and the git revision to read it at (None: this revision)."""
        versions = self.versions(ref.name)
        spec = ref.version.lower()
        number = spec.removeprefix("v")
        if versions and spec == "latest":
            return versions[-1], self.rev
        if number.isdigit():
            for entry in versions:
                if entry.version == int(number):
                    return entry, self.rev
            raise CatalogError(self._missing(ref, versions))
        if len(spec) >= 6 and all(c in "0123456789abcdef" for c in spec):
            matches = [entry for entry in versions if entry.md5.startswith(spec)]
            if len(matches) == 1:
                return matches[0], self.rev
        # Not a version of this revision: a git revision, at which NAME's latest version is read.
        try:
            older = Catalog(self.repo, ref.version)
            found = older.versions(ref.name)
        except CatalogError:
            found = []
        if found:
            return found[-1], ref.version
        raise CatalogError(self._missing(ref, versions))

    def _missing(self, ref: DataRef, versions: list[Entry]) -> str:
        if not versions:
            known = ", ".join(self.names()) or "none"
            return (
                f"no dataset named {ref.name!r} in {self.repo} (datasets: {known}); add one "
                f"with `modelyard data add FILE --name {ref.name}`"
            )
        listed = ", ".join(f"{e.version} ({e.md5[:8]})" for e in versions)
        return (
            f"{ref.name}@{ref.version}: no such version, md5 prefix or git revision "
            f"(versions: {listed})"
        )

    def read_bytes_to(self, entry: Entry, rev: str | None, target: Path) -> Path:
        """Copy the bytes of `entry` through dvc.api to `target` and check they are exactly the
        version's bytes (atomic: a reader never sees a partial file)."""
        import dvc.api

        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_file() and file_md5(target) == entry.md5:
            return target
        partial = target.with_name(target.name + ".partial")
        try:
            with (
                dvc.api.open(entry.path, repo=self.repo, rev=rev, mode="rb") as source,
                partial.open("wb") as sink,
            ):
                shutil.copyfileobj(source, sink, 1 << 20)
        except Exception as error:  # noqa: BLE001 - network, remote and cache errors alike
            partial.unlink(missing_ok=True)
            raise CatalogError(
                f"cannot read {entry.ref} ({entry.path}) through DVC: {error}"
            ) from None
        actual = file_md5(partial)
        if actual != entry.md5:
            partial.unlink(missing_ok=True)
            raise CatalogError(
                f"{entry.ref}: DVC returned bytes with md5 {actual}, the pointer "
                f"records {entry.md5}"
            )
        partial.replace(target)
        return target


def next_version(existing: list[Entry]) -> int:
    return max((entry.version for entry in existing), default=0) + 1


def version_path(root: Path, name: str, version: int, suffix: str) -> Path:
    return root / DATASETS / name / f"v{version}{suffix.lower()}"


def write_meta(pointer_path: Path, meta: dict[str, Any]) -> None:
    """Add ModelYard's description under the pointer's `meta:` key (DVC ignores its contents)."""
    pointer = yaml.safe_load(pointer_path.read_text(encoding="utf-8")) or {}
    pointer["meta"] = meta
    temporary = pointer_path.with_name(pointer_path.name + ".tmp")
    temporary.write_text(yaml.safe_dump(pointer, sort_keys=False), encoding="utf-8")
    temporary.replace(pointer_path)


def now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()

"""Dataset identity: the DVC content hash of the bytes, plus the git revision that pins them.

DVC 3 hashes a file as the plain md5 of its bytes, so computing it here needs no DVC import and
gives the same answer `dvc add` writes into the `.dvc` pointer (an integration test holds us to
that). The name of the file plays no part: the same bytes under two names are one version.
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

_CHUNK = 1 << 20


@dataclass(frozen=True)
class DatasetVersion:
    path: str
    md5: str
    size: int
    git_commit: str
    # The md5 the committed `.dvc` pointer records, if the file is tracked by DVC.
    dvc_pointer_md5: str | None

    @property
    def short(self) -> str:
        return self.md5[:10]

    @property
    def matches_pointer(self) -> bool:
        return self.dvc_pointer_md5 == self.md5


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def dvc_pointer_md5(path: Path) -> str | None:
    """The md5 recorded in `<path>.dvc`, or None when the file is not tracked by DVC."""
    pointer = path.with_name(path.name + ".dvc")
    if not pointer.exists():
        return None
    outs = (yaml.safe_load(pointer.read_text()) or {}).get("outs") or []
    return str(outs[0]["md5"]) if outs and "md5" in outs[0] else None


def git_commit(directory: Path) -> str:
    """HEAD of the repository holding `directory`, suffixed `-dirty` with uncommitted changes."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=directory, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (subprocess.CalledProcessError, FileNotFoundError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit


def dataset_version(path: Path) -> DatasetVersion:
    if not path.is_file():
        raise FileNotFoundError(f"dataset {path} does not exist (or is not a file)")
    return DatasetVersion(
        path=str(path),
        md5=file_md5(path),
        size=path.stat().st_size,
        git_commit=git_commit(path.resolve().parent),
        dvc_pointer_md5=dvc_pointer_md5(path),
    )

"""DVC, through its Python API: track a dataset file, push it to the remote, pull it back.

DVC takes a repository-wide lock, so every call here goes through one process-wide lock too:
two flows in one process never race for it.
"""

from __future__ import annotations

import threading
from pathlib import Path

from modelyard.data.identity import dvc_pointer_md5, file_md5

_DVC_LOCK = threading.Lock()


class DvcError(RuntimeError):
    pass


class DvcRepo:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        if not (self.root / ".dvc").is_dir():
            raise DvcError(f"{self.root} is not a DVC repository (no .dvc/): run `dvc init`")

    def _target(self, path: Path, suffix: str = "") -> str:
        # Absolute: DVC resolves relative targets against the process's working directory.
        resolved = path.resolve()
        if not resolved.is_relative_to(self.root):
            raise DvcError(f"{path} is outside the DVC repository {self.root}")
        return str(resolved) + suffix

    def add(self, path: Path) -> str:
        """Track `path` (pointer `<path>.dvc`, file into the cache); returns the content md5."""
        import logging

        from dvc.repo import Repo

        # DVC's "to track the changes with git, run: git add …" hint is for its own CLI.
        logging.getLogger("dvc.repo.scm_context").setLevel(logging.WARNING)
        with _DVC_LOCK, Repo(str(self.root)) as repo:
            repo.add(self._target(path))
        md5 = dvc_pointer_md5(path)
        if md5 is None:
            raise DvcError(f"dvc add {path} wrote no md5 into {path}.dvc")
        return md5

    def push(self, path: Path) -> int:
        from dvc.repo import Repo

        with _DVC_LOCK, Repo(str(self.root)) as repo:
            return int(repo.push(targets=[self._target(path, ".dvc")]) or 0)

    def pull(self, path: Path) -> bool:
        """Fetch `path` from the cache or the remote; False when neither has it."""
        import logging

        from dvc.exceptions import DvcException
        from dvc.repo import Repo

        # A miss is an expected answer here (the caller falls back), not a warning to print.
        dvc_logger = logging.getLogger("dvc")
        level = dvc_logger.level
        dvc_logger.setLevel(logging.ERROR)
        try:
            with _DVC_LOCK, Repo(str(self.root)) as repo:
                repo.pull(targets=[self._target(path, ".dvc")])
        except DvcException:
            return False
        finally:
            dvc_logger.setLevel(level)
        return path.is_file() and file_md5(path) == dvc_pointer_md5(path)

"""A copy of the checkout as git would hand it to a new user."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def copy_checkout(repo: Path, root: Path) -> Path:
    """The tracked files plus the new ones git does not ignore, copied under `root`."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for name in listed.splitlines():
        if (repo / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(repo / name, root / name)
    return root

"""The DVC pipeline's cached outputs, from a retrain that computed the same thing.

`make run` trains through the retrain flow, not `dvc repro`. On a fresh clone the pipeline's
cached outputs (`build/prepared`, `build/model`) then exist only as hashes in `dvc.lock` (no shared
remote holds them), so `dvc status` would say they are "not in cache" although the flow has just
computed the same split and the same model from the same inputs. When a retrain's inputs are the
pipeline's own, its split and its model are written where the stages write theirs and committed
to the DVC cache, but only once DVC finds them identical to what `dvc.lock` records. Anything else
is removed again: `dvc.lock` never changes here, and a different result is never passed off as
the pipeline's (`dvc repro` stays the way to produce that).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from modelyard.adapters.dvc import _DVC_LOCK

if TYPE_CHECKING:
    from dvc.repo import Repo

PARAMS_FILE = "params.yaml"
PIPELINE_FILE = "dvc.yaml"


@dataclass(frozen=True)
class StageOutput:
    """One cached output of a stage of `dvc.yaml`, and how this run writes it."""

    stage: str
    path: str  # as dvc.yaml names it, relative to the project root
    write: Callable[[Path], object]


@dataclass(frozen=True)
class Recorded:
    """What was committed to the DVC cache (stage outputs), and why it stopped short, if it did."""

    outputs: tuple[str, ...]
    stopped: str | None = None


def pipeline_root(
    params_path: Path, data_file: Path, data_path: Path, overridden: bool, remote_data: bool
) -> Path | None:
    """The project whose `dvc.yaml` a retrain reproduced: its inputs are that project's own
    `params.yaml` unchanged and the file its `data.path` names; None otherwise."""
    root = params_path.resolve().parent
    if overridden or remote_data or params_path.name != PARAMS_FILE:
        return None
    if not (root / PIPELINE_FILE).is_file() or not (root / ".dvc").is_dir():
        return None
    return root if data_file.resolve() == (root / data_path).resolve() else None


def record_outputs(root: Path, outputs: Sequence[StageOutput]) -> Recorded:
    """Write and commit each output, in pipeline order, while DVC finds it identical to dvc.lock;
    stop at the first that is not (nothing of that one is left behind)."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo, lock_repo

    done: list[str] = []
    try:
        with _DVC_LOCK, _quiet(), Repo(str(root)) as repo, lock_repo(repo):
            for output in outputs:
                stopped = _record(repo, root, output)
                if stopped is not None:
                    return Recorded(tuple(done), stopped)
                done.append(output.path)
    except (DvcException, OSError) as error:  # the retrain's own result does not depend on it
        return Recorded(tuple(done), f"DVC: {error}")
    return Recorded(tuple(done))


def _record(repo: Repo, root: Path, output: StageOutput) -> str | None:
    """None when the output is in the workspace and the cache as dvc.lock records it; else why
    it was left alone."""
    # Absolute: DVC resolves a target against the working directory, not the repository.
    (stage,) = repo.stage.collect(f"{root / PIPELINE_FILE}:{output.stage}")
    if stage.changed_deps() or stage.changed_stage():
        return f"stage {output.stage} changed since dvc.lock (its data, code, params or command)"
    (out,) = (out for out in stage.outs if out.def_path == output.path)
    target = root / output.path
    written = not target.exists()
    if written:
        _write_atomically(output, target)
    if out.workspace_status():  # its hash is not the lock's
        if not written:
            return f"{output.path} in the workspace is not what dvc.lock records: left as it is"
        _remove(target)
        return f"this run's {output.path} is not what dvc.lock records"
    if out.changed_cache():
        # Unchanged stage, outputs as the lock says: this only fills the cache.
        repo.commit(f"{root / PIPELINE_FILE}:{output.stage}")
    return None


def _write_atomically(output: StageOutput, target: Path) -> None:
    partial = target.with_name(f".{target.name}.partial")
    _remove(partial)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        output.write(partial)
        os.replace(partial, target)
    finally:
        _remove(partial)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


@contextmanager
def _quiet() -> Iterator[None]:
    # DVC's own progress and hints are for its CLI; the caller reports the outcome.
    dvc_logger = logging.getLogger("dvc")
    level = dvc_logger.level
    dvc_logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        dvc_logger.setLevel(level)

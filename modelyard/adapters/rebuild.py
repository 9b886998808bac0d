"""Rebuild a registered version from its lineage alone (`modelyard models reproduce`): its
code at the commit of its tag in a scratch git work tree, its dataset by md5 (the dataset cache,
the DVC cache, a file the project tracks with DVC through its remote, the recorded path), the
params of its run (checked against its `params_hash`), its split membership (checked against
its `split_md5`). The scratch tree's own code makes the split the version was trained on from
that membership (a version that recorded none: the DVC pipeline's `prepare`), then trains and
evaluates (the pipeline's stages, which every commit has) in a MODELYARD_HOME of its own:
nothing is registered or tracked in the user's stores. The verdict is
`modelyard.evaluation.rebuild`'s."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from modelyard import tags as tag
from modelyard.data.identity import file_md5
from modelyard.data.membership import Membership
from modelyard.evaluation.rebuild import (
    ENV_PREFIX,
    RebuildRefused,
    Verdict,
    check_params,
    rebuild_commit,
    verdict,
)
from modelyard.registry.mlflow_registry import MlflowRegistry
from modelyard.registry.splits import (
    MEMBERSHIP_DIR,
    MEMBERSHIP_FILE,
    SplitMembershipError,
    load_membership,
)

STAGES = ("prepare", "train", "evaluate")
# Run by the scratch tree's Python with its own code: argv is the params file, the recorded
# membership ("" when none) and the stages. With a membership the split is made as the retrain
# flow made it (`tasks.data.split_dataset`: the canonical columns of the rows as read, no
# dropna — validation refused any missing value — and `inherit_split`): the version's own
# membership as the parent knows every text, so each keeps its split, in the order the
# frame and params give; the pipeline's `prepare` would cut it afresh.
_STAGES_CODE = (
    "import sys\n"
    "from pathlib import Path\n"
    "from modelyard.cli import app\n"
    "params, membership, stages = sys.argv[1], sys.argv[2], sys.argv[3:]\n"
    "if membership:\n"
    "    from modelyard.config import load_params\n"
    "    from modelyard.data import dataset as ds\n"
    "    from modelyard.data.membership import Membership, inherit_split\n"
    "    from modelyard.orchestration.pipeline import PREPARED\n"
    "    data = load_params(params).data\n"
    "    frame = ds.to_canonical(ds.read_frame(data.path, data), data)\n"
    "    splits, _ = inherit_split(frame, data, Membership.read(Path(membership)))\n"
    "    splits.save(PREPARED)\n"
    "    print(f'prepared {PREPARED} from the recorded membership: {splits.sizes()}')\n"
    "    stages = [stage for stage in stages if stage != 'prepare']\n"
    "for stage in stages:\n"
    "    app(['stage', stage, '--params', params], standalone_mode=False)\n"
)
MEMBERSHIP_NAME = "membership.parquet"  # the recorded membership, in the rebuild's scratch
PARAMS_NAME = "reproduce.params.yaml"  # the recorded params, the dataset's path replaced
RECORDED_PARAMS_NAME = "recorded.params.yaml"  # the recorded params as they were
# What the scratch tree's processes must not inherit: they would track, register or read
# another store than the scratch home's.
_STORE_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MODELYARD_DATABASE_URL")


class RebuildFailed(RuntimeError):
    """A stage of the rebuild failed in the scratch tree; the message carries its output."""


@dataclass(frozen=True)
class Lineage:
    """What the registry recorded of a version, as a rebuild needs it."""

    name: str
    version: str
    run_id: str
    tags: Mapping[str, str]
    params: dict[str, Any]  # the run's params.yaml, as recorded
    metrics: Mapping[str, float]  # the run's metrics (the test figures among them)
    environment: Mapping[str, str]  # env.* of the run's params and the version's tags


@dataclass(frozen=True)
class Reproduction:
    commit: str
    dataset: str  # where its bytes were found
    split: str  # how the split was made
    verdict: Verdict
    kept: Path | None  # the scratch tree, when kept


def read_lineage(registry: MlflowRegistry, name: str, version: str) -> Lineage:
    """The version's tags, its run's params.yaml (refused when it was not recorded), metrics
    and recorded environment."""
    info = registry.version_info(name, version)
    if info.run_id is None:
        raise RebuildRefused(f"{name} version {version} has no MLflow run: no lineage to read")
    if tag.PARAMS_FILE not in registry.list_artifacts(info.run_id, ""):
        raise RebuildRefused(
            f"{name} version {version}: its run recorded no {tag.PARAMS_FILE} (trained before "
            "retrains recorded their resolved params): its params cannot be rebuilt exactly"
        )
    with tempfile.TemporaryDirectory() as scratch:
        path = registry.download_artifact(info.run_id, tag.PARAMS_FILE, Path(scratch))
        params = yaml.safe_load(path.read_text(encoding="utf-8"))
    run_params = registry.run_params(info.run_id)
    environment = {k: v for k, v in run_params.items() if k.startswith(ENV_PREFIX)}
    environment.update({k: v for k, v in info.tags.items() if k.startswith(ENV_PREFIX)})
    metrics = registry.run_metrics(info.run_id)
    return Lineage(name, version, info.run_id, info.tags, params, metrics, environment)


def recorded_membership(registry: MlflowRegistry, lineage: Lineage) -> Membership | None:
    """The split membership the version was trained with, checked against its `split_md5`
    tag; None when its run recorded none (or no tag to check it by). Refused when it does not
    hash to the tag: a split rebuilt from it would not be the version's."""
    stored = f"{MEMBERSHIP_DIR}/{MEMBERSHIP_FILE}"
    if stored not in registry.list_artifacts(lineage.run_id, MEMBERSHIP_DIR):
        return None
    try:
        return load_membership(registry, lineage.name, lineage.version)
    except SplitMembershipError as error:
        raise RebuildRefused(
            f"{error}; the split it was trained on cannot be rebuilt from it"
        ) from error


def reproduce(
    registry: MlflowRegistry,
    name: str,
    version: str,
    repo: Path,
    cache: Path,
    keep: Path | None = None,
) -> Reproduction:
    """Rebuild `name` version `version` from its lineage in a scratch work tree of `repo`
    (removed after, unless `keep`) and judge it against the recorded figures."""
    lineage = read_lineage(registry, name, version)
    commit = rebuild_commit(name, version, lineage.tags)
    if lineage.params.get("data", {}).get("test_path") is not None:
        raise RebuildRefused(
            f"{name} version {version} was trained with a separate test file (data.test_path), "
            "whose md5 its lineage does not record: it cannot be rebuilt"
        )
    root = git_root(repo)
    has_commit(root, commit, name, version)
    membership = recorded_membership(registry, lineage)
    with tempfile.TemporaryDirectory(prefix="modelyard-rebuild-") as scratch:
        dataset, found_at = fetch_dataset(lineage.tags, Path(scratch) / "data", cache, root)
        recorded = None if membership is None else membership.write(Path(scratch) / MEMBERSHIP_NAME)
        with scratch_tree(root, commit, keep) as tree:
            expected = lineage.tags.get(tag.PARAMS_HASH, "not recorded")
            check_params(name, version, recorded_digest(tree, lineage.params), expected)
            rebuilt, split_md5 = run_stages(tree, lineage.params, dataset, recorded)
    notes = split_notes(lineage.tags, split_md5, from_membership=recorded is not None)
    judged = verdict(
        lineage.metrics, rebuilt, lineage.environment, environment_now(lineage.params), notes
    )
    kept = keep.resolve() if keep is not None else None
    return Reproduction(commit, found_at, split_made(lineage.tags, recorded), judged, kept)


def split_made(tags: Mapping[str, str], membership: Path | None) -> str:
    """How the rebuild made its split, for the report."""
    if membership is None:
        return "cut afresh from its params (its run recorded no split membership)"
    return f"from its recorded split membership (md5 {tags.get(tag.SPLIT_MD5)})"


def git_root(repo: Path) -> Path:
    found = _git(repo, "rev-parse", "--show-toplevel")
    if found.returncode != 0:
        raise RebuildRefused(f"{repo} is not in a git repository: no commit to rebuild from")
    return Path(found.stdout.strip())


def has_commit(root: Path, commit: str, name: str, version: str) -> None:
    if _git(root, "cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
        raise RebuildRefused(
            f"{name} version {version} was trained from commit {commit}, which the repository "
            f"at {root} does not have (git fetch it, or run from the project that trained it)"
        )


def _git(where: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=where, capture_output=True, text=True, check=False)


def dataset_sources(
    tags: Mapping[str, str], cache: Path, root: Path
) -> Iterator[tuple[str, Callable[[Path], Path]]]:
    """Where a dataset's bytes may be, by md5, in the order they are tried: each a name for
    messages and a way to copy the bytes to a target."""
    md5 = tags.get(tag.DATASET_MD5, "")

    def copy_of(source: Path) -> Callable[[Path], Path]:
        return lambda target: Path(shutil.copyfile(source, target))

    for cached in sorted(cache.glob(f"{md5}*")) if md5 else []:
        yield f"the dataset cache ({cached})", copy_of(cached)
    if (root / ".dvc").is_dir():
        dvc_cache = root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
        if dvc_cache.is_file():
            yield f"the DVC cache ({dvc_cache})", copy_of(dvc_cache)
        yield from _pointer_sources(md5, root)
    recorded = Path(tags.get(tag.DATASET_PATH, ""))
    if recorded.name and recorded.is_file():
        yield f"its recorded path ({recorded})", copy_of(recorded)


def _pointer_sources(md5: str, root: Path) -> Iterator[tuple[str, Callable[[Path], Path]]]:
    """Each file the project tracks with DVC (a catalog version, a plain `dvc add`ed file)
    whose committed pointer records these bytes: DVC reads it from its cache or the remote."""
    from modelyard.data.identity import dvc_pointer_md5

    listed = _git(root, "ls-files", "*.dvc").stdout.splitlines()
    for pointer in sorted(listed):
        tracked = Path(pointer).with_suffix("")
        if not pointer.startswith(".dvc/") and dvc_pointer_md5(root / tracked) == md5:
            yield f"{tracked} through DVC", partial(_read_through_dvc, root, tracked)


def _read_through_dvc(root: Path, tracked: Path, target: Path) -> Path:
    import dvc.api

    try:
        with (
            dvc.api.open(str(tracked), repo=str(root), mode="rb") as source,
            target.open("wb") as sink,
        ):
            shutil.copyfileobj(source, sink, 1 << 20)
    except Exception as error:  # noqa: BLE001 - DVC's cache, remote and network errors alike
        raise OSError(f"DVC cannot read it: {error}") from None
    return target


def fetch_dataset(tags: Mapping[str, str], into: Path, cache: Path, root: Path) -> tuple[Path, str]:
    """The version's dataset, its bytes checked against the `dataset_md5` tag; refused,
    naming the md5 expected and each found, when no source has them. Also where it was."""
    expected = tags.get(tag.DATASET_MD5, "")
    suffix = Path(tags.get(tag.DATASET_PATH, "").rstrip(")")).suffix or ".csv"
    into.mkdir(parents=True, exist_ok=True)
    target, found = into / f"{expected or 'dataset'}{suffix}", []
    for where, copy in dataset_sources(tags, cache, root):
        try:
            copy(target)
        except (OSError, RuntimeError, ValueError) as error:
            found.append(f"{where}: unreadable ({error})")
            continue
        actual = file_md5(target)
        if actual == expected:
            return target, where
        found.append(f"{where}: md5 {actual}")
        target.unlink(missing_ok=True)
    seen = "; ".join(found) if found else "no copy in the dataset cache, DVC or at its path"
    raise RebuildRefused(
        f"dataset md5 {expected or 'not recorded'} is missing or different — expected md5 "
        f"{expected}, found: {seen}. Nothing was trained."
    )


@contextmanager
def scratch_tree(root: Path, commit: str, keep: Path | None) -> Iterator[Path]:
    """A detached git work tree of `root` at `commit`; removed afterwards unless `keep`
    (then it is that directory, left for `git worktree remove`)."""
    if keep is not None and keep.exists() and any(keep.iterdir()):
        raise RebuildRefused(f"--keep {keep}: the directory exists and is not empty")
    holder = None if keep is not None else tempfile.mkdtemp(prefix="modelyard-tree-")
    tree = keep.resolve() if keep is not None else Path(str(holder)) / "tree"
    added = _git(root, "worktree", "add", "--detach", str(tree), commit)
    if added.returncode != 0:
        raise RebuildRefused(f"git worktree add {commit} failed: {added.stderr.strip()}")
    try:
        yield tree
    finally:
        if keep is None:
            _git(root, "worktree", "remove", "--force", str(tree))
            shutil.rmtree(str(holder), ignore_errors=True)
            _git(root, "worktree", "prune")


def _scratch_env(tree: Path) -> dict[str, str]:
    """The environment of the scratch tree's processes: its code first on the path, a home of
    its own, no store of the user's."""
    env = {k: v for k, v in os.environ.items() if k not in _STORE_VARIABLES}
    env.update(
        PYTHONPATH=os.pathsep.join([str(tree), *filter(None, [env.get("PYTHONPATH")])]),
        MODELYARD_HOME=str(tree / ".rebuild-home"),
    )
    return env


def recorded_digest(tree: Path, params: Mapping[str, Any]) -> str:
    """`Params.digest` of the recorded params by the scratch tree's own code: the params model
    of the version's commit made its `params_hash` (a newer one may hash the same file
    differently)."""
    recorded = tree / RECORDED_PARAMS_NAME
    recorded.write_text(yaml.safe_dump(dict(params)), encoding="utf-8")
    code = (
        "import sys; from modelyard.config import load_params; "
        "print(load_params(sys.argv[1]).digest())"
    )
    ran = subprocess.run(
        [sys.executable, "-c", code, str(recorded)],
        cwd=tree,
        env=_scratch_env(tree),
        capture_output=True,
        text=True,
        check=False,
    )
    if ran.returncode != 0:
        output = (ran.stdout + ran.stderr)[-2000:]
        raise RebuildRefused(
            f"the recorded {tag.PARAMS_FILE} does not load at its commit:\n{output}"
        )
    return ran.stdout.strip().splitlines()[-1]


def run_stages(
    tree: Path, params: Mapping[str, Any], dataset: Path, membership: Path | None = None
) -> tuple[dict[str, float], str | None]:
    """Prepare (from `membership`, the version's recorded split, when given), train and
    evaluate with the scratch tree's own code on `dataset`; the test figures under their MLflow
    names and the md5 of the split it made."""
    data = {**params.get("data", {}), "path": str(dataset)}
    params_file = tree / PARAMS_NAME
    params_file.write_text(yaml.safe_dump({**params, "data": data}), encoding="utf-8")
    # One process runs the stages, as `modelyard stage …` would one by one (the scratch code's
    # CLI app): one start of torch instead of three.
    ran = subprocess.run(
        [sys.executable, "-c", _STAGES_CODE, str(params_file), str(membership or ""), *STAGES],
        cwd=tree,
        env=_scratch_env(tree),
        capture_output=True,
        text=True,
        check=False,
    )
    if ran.returncode != 0:
        output = (ran.stdout + ran.stderr)[-3000:]
        raise RebuildFailed(f"the stages {STAGES} failed in the scratch tree {tree}:\n{output}")
    return _rebuilt_figures(tree / "build" / "metrics.json"), _split_md5(tree)


def _rebuilt_figures(metrics: Path) -> dict[str, float]:
    """`build/metrics.json`'s candidate figures under the run's metric names."""
    recorded = json.loads(metrics.read_text(encoding="utf-8"))
    extra = {"majority_baseline_accuracy", "test_rows"}
    headline = {
        key: float(value)
        for key, value in recorded.items()
        if isinstance(value, int | float) and key not in extra
    }
    return tag.scored_metrics(headline)


def _split_md5(tree: Path) -> str | None:
    """The md5 of the rebuilt split's membership (as the version's `split_md5` tag is)."""
    from modelyard.data.dataset import Splits
    from modelyard.registry.splits import membership_md5

    try:
        return membership_md5(Membership.of(Splits.load(tree / "build" / "prepared")))
    except (OSError, ValueError, KeyError):
        return None


def split_notes(
    tags: Mapping[str, str], rebuilt: str | None, from_membership: bool = False
) -> tuple[str, ...]:
    """What differs between the rebuilt split and the version's (by membership md5)."""
    recorded = tags.get(tag.SPLIT_MD5)
    if recorded is None or rebuilt is None or recorded == rebuilt:
        return ()
    if from_membership:
        why = (
            "though it was made from the version's recorded membership: the commit's code "
            "splits these rows otherwise"
        )
    else:
        why = (
            "its run recorded no split membership, so it was cut afresh from its params (a "
            "split inherited from the production model of its time differs)"
        )
    return (
        f"the rebuilt split (membership md5 {rebuilt}) is not the version's ({recorded}): "
        f"{why}, so the test sets differ",
    )


def environment_now(params: Mapping[str, Any]) -> dict[str, str]:
    """This machine's environment for a training with `params`, named as recorded."""
    import torch
    import transformers

    from modelyard.config import Params, TrainParams
    from modelyard.lineage_key import environment

    try:
        train = Params.model_validate(params).train
    except ValueError:  # params of an older model: the defaults decide device and precision
        train = TrainParams()
    return {
        **environment(train).tags(),
        "env.python": platform.python_version(),
        "env.platform": platform.platform(),
        "env.torch": torch.__version__,
        "env.transformers": transformers.__version__,
    }

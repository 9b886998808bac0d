"""`dvc.yaml` declares what each stage of `modelyard/orchestration/pipeline.py` reads and writes,
as the code
really does it. Each stage function runs here (tiny model, small data) while the test records:

- every params key it reads (attribute reads on the params tree, as dotted keys),
- every file of the project's code that runs (a profile hook on calls),
- what it writes under build/ (before/after), and the build paths in its signature that it
  does not write (what it reads from earlier stages).

A stage's `params:` must cover each key read (a section covers its keys) and name nothing it does
not read; its deps must be exactly the data file(s), the earlier outputs and the code it runs;
its outs and metrics exactly what it writes. So an undeclared read cannot leave a stale result in
`dvc.lock`, and a stale declaration cannot rerun a stage for nothing.
"""

from __future__ import annotations

import inspect
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import FrameType

import pytest
import yaml
from pydantic import BaseModel

from modelyard.config import Params
from modelyard.orchestration import pipeline

STAGES = ("prepare", "validate", "train", "evaluate")
CODE = "modelyard"
# Not read, but ordered: DVC must not train on data the suite has not passed.
ORDERING_DEPS = {"train": {str(pipeline.VALIDATION_METRICS)}}


@dataclass(frozen=True)
class Observed:
    params: frozenset[str]  # dotted keys
    code: frozenset[str]  # files, relative to the repository
    reads: frozenset[str]  # build paths
    writes: frozenset[str]  # build paths


def _paths_of(model: BaseModel, prefix: str = "") -> dict[int, str]:
    """id(sub-model) → its dotted prefix in the tree."""
    found = {id(model): prefix}
    for name in type(model).model_fields:
        value = object.__getattribute__(model, name)
        if isinstance(value, BaseModel):
            found.update(_paths_of(value, f"{prefix}{name}."))
    return found


def _classes_of(model: BaseModel) -> set[type[BaseModel]]:
    found = {type(model)}
    for name in type(model).model_fields:
        value = object.__getattribute__(model, name)
        if isinstance(value, BaseModel):
            found |= _classes_of(value)
    return found


@contextmanager
def _recording_reads(params: Params, monkeypatch: pytest.MonkeyPatch) -> Iterator[set[str]]:
    """Dotted keys of `params` read while inside; a sub-tree read whole (say `params.data`
    handed on and never looked into) shows as its section."""
    where = _paths_of(params)
    reads: set[str] = set()

    def record(self: BaseModel, name: str) -> object:
        prefix = where.get(id(self))
        if prefix is not None and name in type(self).model_fields:
            reads.add(prefix + name)
        return object.__getattribute__(self, name)

    for cls in _classes_of(params):
        monkeypatch.setattr(cls, "__getattribute__", record)
    yield reads


@contextmanager
def _tracing_code(repo: Path) -> Iterator[set[str]]:
    package = str(repo / CODE) + "/"
    ran: set[str] = set()

    def profile(frame: FrameType, event: str, arg: object) -> None:
        if event == "call" and frame.f_code.co_filename.startswith(package):
            ran.add(PurePosixPath(Path(frame.f_code.co_filename).relative_to(repo)).as_posix())

    sys.setprofile(profile)
    threading.setprofile(profile)
    try:
        yield ran
    finally:
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]


def _build_entries(root: Path) -> dict[str, int]:
    """Top-level entries under build/ → their modification time."""
    build = root / pipeline.BUILD
    if not build.is_dir():
        return {}
    return {str(pipeline.BUILD / p.name): p.stat().st_mtime_ns for p in build.iterdir()}


def _signature_paths(stage: Callable[..., object]) -> set[str]:
    return {
        str(p.default)
        for p in inspect.signature(stage).parameters.values()
        if isinstance(p.default, Path)
    }


@pytest.fixture(scope="module")
def observed(tiny_params, small_reviews, tmp_path_factory) -> dict[str, Observed]:
    """Run the four stages in order, in a scratch directory, watching each."""
    params = tiny_params.updated(
        {"data.path": str(small_reviews), "train.epochs": 1, "train.max_steps": 2}
    )
    scratch = tmp_path_factory.mktemp("stages")
    code_root = Path(pipeline.__file__).resolve().parents[2]  # the checkout that is imported
    results = {}
    with pytest.MonkeyPatch.context() as place:
        place.chdir(scratch)
        for name in STAGES:
            stage = getattr(pipeline, name)
            before = _build_entries(scratch)
            with (
                pytest.MonkeyPatch.context() as patch,
                _recording_reads(params, patch) as reads,
                _tracing_code(code_root) as ran,
            ):
                stage(params)
            after = _build_entries(scratch)
            writes = {path for path, stamp in after.items() if before.get(path) != stamp}
            results[name] = Observed(
                frozenset(reads),
                frozenset(ran),
                frozenset(_signature_paths(stage) - writes),
                frozenset(writes),
            )
    return results


@pytest.fixture(scope="module")
def declared(repo) -> dict[str, dict]:
    return yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]


def _entries(stage: dict, key: str) -> set[str]:
    """Paths (or params keys) of a list like `outs:` whose items are names or {name: options}."""
    return {item if isinstance(item, str) else next(iter(item)) for item in stage.get(key, [])}


def _covers(entry: str, key: str) -> bool:
    return key == entry or key.startswith(entry + ".")


def _covers_path(dep: str, path: str) -> bool:
    return path == dep or path.startswith(dep.rstrip("/") + "/")


def _keys(tree: dict, prefix: str = "") -> set[str]:
    """Every dotted key of a YAML tree, sections included."""
    keys = set()
    for name, value in tree.items():
        keys.add(prefix + name)
        if isinstance(value, dict):
            keys |= _keys(value, f"{prefix}{name}.")
    return keys


def test_the_stages_are_the_pipeline_functions(declared):
    assert list(declared) == list(STAGES)
    for name, stage in declared.items():
        assert stage["cmd"].split()[-1] == name


@pytest.mark.parametrize("name", STAGES)
def test_params_are_exactly_what_the_stage_reads(name, declared, observed, repo):
    entries = _entries(declared[name], "params")
    read = observed[name].params
    leaves = {key for key in read if not any(other.startswith(key + ".") for other in read)}
    undeclared = {key for key in leaves if not any(_covers(entry, key) for entry in entries)}
    assert not undeclared, f"{name} reads params dvc.yaml does not list: {sorted(undeclared)}"
    unread = {entry for entry in entries if not any(_covers(entry, key) for key in leaves)}
    assert not unread, f"{name} lists params it never reads: {sorted(unread)}"
    in_file = _keys(yaml.safe_load((repo / "params.yaml").read_text()))
    assert entries <= in_file, f"DVC needs each listed key in params.yaml: {entries - in_file}"


@pytest.mark.parametrize("name", STAGES)
def test_deps_are_the_data_the_earlier_outputs_and_the_code_that_runs(
    name, declared, observed, real_params
):
    deps = _entries(declared[name], "deps")
    seen = observed[name]
    code = {dep for dep in deps if dep.startswith(CODE + "/") or dep == CODE}
    uncovered = {f for f in seen.code if not any(_covers_path(dep, f) for dep in code)}
    assert not uncovered, f"{name} runs code dvc.yaml does not list: {sorted(uncovered)}"
    idle = {dep for dep in code if not any(_covers_path(dep, f) for f in seen.code)}
    assert not idle, f"{name} lists code it never runs: {sorted(idle)}"

    data = set()
    if "data.path" in seen.params:
        data.add(str(real_params.data.path))
    if "data.test_path" in seen.params and real_params.data.test_path is not None:
        data.add(str(real_params.data.test_path))
    expected = data | set(seen.reads) | ORDERING_DEPS.get(name, set())
    assert deps - code == expected


@pytest.mark.parametrize("name", STAGES)
def test_outputs_are_what_the_stage_writes(name, declared, observed):
    stage = declared[name]
    outputs = _entries(stage, "outs") | _entries(stage, "metrics") | _entries(stage, "plots")
    untracked = {str(path) for path in pipeline.NOT_DVC_OUTPUTS}
    assert outputs == set(observed[name].writes) - untracked

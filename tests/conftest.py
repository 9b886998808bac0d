"""Fixtures and collection hooks of the whole suite; helpers live in `tests/helpers/`.

Isolation: the session runs in a scratch directory with its own PREFECT_HOME and MODELYARD_HOME,
with the Prefect/MLflow variables a developer may have exported removed (a `.env` or
`prefect.toml` in the repository would be read from the working directory, hence the chdir).
Each xdist worker is its own process, so each gets its own scratch directory, Prefect home and
Prefect test API; ports are asked of the kernel and PostgreSQL databases get random names.

Parallel runs (`make test` runs `-n 3 --dist loadgroup`): the tests of a module that share a
module-scoped fixture (a trained model, a stack) are one xdist group, so one worker builds it
once; every other test is scheduled on its own. The longest tests are queued first, so the run
does not end waiting on one that started last. Otherwise the order is random (pytest-randomly),
the same in every worker: no test may depend on another having run.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.paths import REPO

_LEAKY = (
    "PREFECT_API_URL",
    "PREFECT_API_KEY",
    "PREFECT_PROFILE",
    "PREFECT_PROFILES_PATH",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
    "MLFLOW_EXPERIMENT_NAME",
    "MLFLOW_EXPERIMENT_ID",
    "MLFLOW_RUN_ID",
)

_THREADS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")

# Queued first under xdist, longest first (measured: `pytest --durations`), so that a worker
# takes each of them while the other works through the rest. A scheduling hint only: a test
# missing here still runs, just not first.
_LONGEST_FIRST = (
    "tests/integration/test_the_loop.py",  # ~200-270 s on two busy cores (production mode too)
    "tests/e2e/test_s3.py",  # ~100-230 s: local S3, an MLflow server, a retrain
    "tests/e2e/test_promotion.py",  # five tests, 30-55 s each
    "tests/e2e/test_retrain_flow.py",  # one group, ~80 s
    "tests/e2e/test_dataset_versions.py",
    "tests/e2e/test_dvc_pipeline.py",
    "tests/integration/test_catalog.py",
    "tests/e2e/test_resume.py",
    "tests/e2e/test_deploy.py",
    "tests/e2e/test_distributed.py",
)


def pytest_configure(config: pytest.Config) -> None:
    if getattr(config.option, "tx", None) and not hasattr(config, "workerinput"):
        # The xdist controller runs no test; its workers start in its working directory and
        # resolve the command line's paths from there, so it stays where it was started.
        return
    scratch = Path(tempfile.mkdtemp(prefix="modelyard-tests-"))
    for name in _LEAKY + tuple(k for k in os.environ if k.startswith("MODELYARD_")):
        os.environ.pop(name, None)
    # One compute thread per process (inherited by every process a test starts), unless set:
    # tests run beside each other (xdist workers, servers, concurrent retrains), and torch's
    # threads spin at their barriers while another process holds the core: a tiny model's
    # 2-epoch fit took 3 s alone and 89 s beside one busy process on two cores with two threads.
    for name in _THREADS:
        os.environ.setdefault(name, "1")
    os.environ["PREFECT_HOME"] = str(scratch / "prefect")
    os.environ["MODELYARD_HOME"] = str(scratch / "home")
    (scratch / "home").mkdir()
    from modelyard.env import apply_defaults

    apply_defaults()
    # Prefect's console log handler keeps the stream that is sys.stderr when Prefect sets up its
    # logging (on first use). Set up here, that is the session's stderr, not the one a CliRunner
    # swaps in for a command that imports Prefect lazily and closes after it: every later log
    # line in that worker failed on the closed file (seen when a CLI test ran first).
    from prefect.logging.configuration import ensure_logging_setup

    ensure_logging_setup()

    os.chdir(scratch)


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> Iterator[None]:
    # Before the other implementations: xdist turns the group marks into scopes in its own.
    _skip_gpu_tests_without_cuda(items)
    _group_tests_sharing_a_module_fixture(items)
    result = yield
    # After them (pytest-randomly shuffles in its own): only the queue's head is reordered.
    items.sort(key=_queue_position)
    return result


def _skip_gpu_tests_without_cuda(items: list[pytest.Item]) -> None:
    marked = [item for item in items if item.get_closest_marker("gpu")]
    if not marked:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (marked gpu)")
    for item in marked:
        item.add_marker(skip)


# Session fixtures that train a model: every test using one goes to one worker, so it is trained
# once a run, not once per worker (a tiny retrain with its ONNX export is ~40 s of CPU).
_TRAINED_ONCE = ("tiny_production",)


def _group_tests_sharing_a_module_fixture(items: list[pytest.Item]) -> None:
    """One xdist group per module whose tests use a module- or package-scoped fixture: the
    fixture is built once, on one worker. Tests of a session fixture that trains a model: one
    group for all of them."""
    for item in items:
        if item.get_closest_marker("xdist_group"):
            continue
        trained = [name for name in _TRAINED_ONCE if name in getattr(item, "fixturenames", ())]
        if trained:
            item.add_marker(pytest.mark.xdist_group(trained[0]))
            continue
        definitions = getattr(item, "_fixtureinfo", None)
        if definitions is None:
            continue
        scopes = {defs[-1].scope for defs in definitions.name2fixturedefs.values() if defs}
        if scopes & {"module", "package", "class"}:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))


def _queue_position(item: pytest.Item) -> int:
    path = item.nodeid.split("::")[0]
    return _LONGEST_FIRST.index(path) if path in _LONGEST_FIRST else len(_LONGEST_FIRST)


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def real_params():
    from modelyard.config import load_params

    return load_params(REPO / "params.yaml")


@pytest.fixture(scope="session")
def tiny_params(real_params):
    """The real config, shrunk: a tiny BERT, a few epochs, the same gate structure."""
    return real_params.updated(
        {
            "model.backbone": "tiny",
            "model.max_length": 64,
            "train.epochs": 5,
            "train.learning_rate": 3e-3,
            "train.batch_size": 32,
            "validation.min_rows": 100,
            "validation.min_rows_per_class": 10,
            "gate.min_accuracy": 0.45,
            "gate.min_macro_f1": 0.4,
            # The ONNX export takes ~20 s a retrain on two cores: only the session's
            # `tiny_production` exports (tests/e2e/test_runtime.py reads it).
            "runtime.export": False,
        }
    )


@pytest.fixture(scope="session")
def small_reviews(tmp_path_factory) -> Path:
    """A 1,500-row dataset from the project's own generator (another seed than the default)."""
    from modelyard.data.synthetic import ReviewSpec, write_reviews

    return write_reviews(
        tmp_path_factory.mktemp("data") / "reviews.csv", ReviewSpec(rows=1500, seed=7)
    )


@pytest.fixture
def postgres() -> Iterator[tuple[str, str, list[str]]]:
    """The local PostgreSQL server for a stack: (server URL, a database-name prefix of this
    test's own, a list the test appends the other databases it makes to). Everything under the
    prefix and in the list is dropped afterwards. Skipped without a server outside CI, failed
    in CI."""
    from tests.helpers import postgres as pg

    pg.admin().close()
    prefix = pg.unique_name("modelyard_t")
    others: list[str] = []
    yield pg.SERVER, prefix, others
    pg.drop_databases(prefix, f"{prefix}_prefect", f"{prefix}_mlflow", *others)

"""Fixtures of the end-to-end tests: a real Prefect API, and the tiny model trained once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml

from tests.helpers.lineage import pin_code_commit
from tests.helpers.models import TINY_MODEL
from tests.helpers.stores import TrainedHome


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """One real (temporary) Prefect API for every end-to-end test (of this xdist worker); its
    URL, for subprocesses."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=None):
        yield str(PREFECT_API_URL.value())


@pytest.fixture(scope="session")
def tiny_production(prefect_api, tmp_path_factory, tiny_params, small_reviews) -> TrainedHome:
    """The retrain flow run once on `small_reviews` with `tiny_params`: TINY_MODEL version 1 in
    production, in a MODELYARD_HOME of its own. Trained once per session (per xdist worker) for
    every test that only reads it; a test that changes the stores works on a copy
    (`tests.helpers.stores.copy_home`)."""
    from flows.retrain import retrain

    home = tmp_path_factory.mktemp("tiny-production")
    params = home / "params.yaml"
    params.write_text(
        yaml.safe_dump(
            tiny_params.updated(
                {"model.name": TINY_MODEL, "data.path": str(small_reviews), "runtime.export": True}
            ).model_dump(mode="json")
        )
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODELYARD_HOME", str(home))
        pin_code_commit(patch)  # its lineage key names a clean commit, dirty tree or not
        summary = retrain(params_path=str(params))
    assert summary.production_version_after == "1"
    return TrainedHome(home, params, summary)


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch

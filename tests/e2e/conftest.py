from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def prefect_api() -> str:
    """One real (temporary) Prefect API for every end-to-end test; its URL, for subprocesses."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=None):
        yield str(PREFECT_API_URL.value())


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch

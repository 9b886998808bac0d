"""The model server's OpenAPI document, fuzzed by schemathesis against the real app (uvicorn in a
thread, a registered tiny model, a SQLite platform database, API keys required): every endpoint,
a bounded number of generated requests each, valid and invalid. No answer is a 5xx, every answer
matches what the document says of it (status, content type, body schema), an endpoint that
declares a credential refuses a request without one, and the server is alive afterwards."""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from modelyard.config import ExplainParams, PrivacyParams, ServingParams
from modelyard.registry.mlflow_registry import MlflowRegistry
from modelyard.serving.app import create_app
from tests.helpers.models import TINY_TEXTS, register_tiny_versions
from tests.helpers.servers import ServerThread

NAME = "fuzzed"
TOKEN = "fuzz-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# Per endpoint and mode; eight endpoints, each example one request to a tiny model: ~30 s in all.
EXAMPLES = 20

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    uri = f"sqlite:///{root}/mlflow.db"
    register_tiny_versions(
        MlflowRegistry(uri, "fuzz-tests", (root / "mlruns").as_uri()), NAME, root, seeds=(1,)
    )
    app = create_app(
        lambda: MlflowRegistry(uri, "fuzz-tests"),
        NAME,
        ServingParams(poll_interval_s=3600, require_keys=True, max_wait_ms=1),
        f"sqlite:///{root}/platform.db",
        TOKEN,
        PrivacyParams(),
        ExplainParams(n_steps=4),
    )
    with ServerThread(app) as running:
        yield running.url
        # Alive after everything the fuzzer sent: ready, and answering real texts.
        assert httpx.get(f"{running.url}/ready", timeout=30).status_code == 200
        after = httpx.post(
            f"{running.url}/predict", json={"texts": TINY_TEXTS}, headers=AUTH, timeout=30
        )
        assert after.status_code == 200 and len(after.json()["predictions"]) == 3


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_every_endpoint_answers_as_documented(server, mode):
    """Every check schemathesis has but one: `positive_data_acceptance` (a request the schema
    allows gets a 2xx) cannot hold here, as what a request may hold also depends on the model
    being served (its labels, its text column) and on the server's limits
    (serving.max_texts_per_request...), which a static schema does not carry. Those refusals
    are 4xx with a message, which the other checks hold them to."""
    from hypothesis import given
    from schemathesis import GenerationMode
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    operations = [
        result.ok()
        for result in schemathesis.openapi.from_url(f"{server}/openapi.json").get_all_operations()
    ]
    assert {op.label for op in operations} >= {
        "GET /health",
        "GET /ready",
        "GET /metadata",
        "GET /metrics",
        "POST /predict",
        "POST /explain",
        "POST /feedback",
        "POST /admin/reload",
    }
    for operation in operations:
        if mode == "negative" and not list(operation.body):
            continue  # nothing to get wrong in a request without a body or parameters

        @given(case=operation.as_strategy(GenerationMode(mode)))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case):
            case.call_and_validate(
                base_url=server, headers=AUTH, excluded_checks=[positive_data_acceptance]
            )

        fuzz()

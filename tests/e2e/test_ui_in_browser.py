"""What a person sees, read in a real browser: after the session's tiny retrain, MLflow's UI and
a Prefect server (started as `modelyard ui` starts them, on free ports) are opened in headless
Chromium: the run page, the version page, the Prefect flow run and its link artifact. Each page
must say what it must say, raise no uncaught script error, and ask nothing of another machine.

Needs Debian's `chromium` (`make browser` installs it; CI's `.ci/run` does): skipped without.
"""

from __future__ import annotations

import os
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.browser import BROWSER, Page, chromium
from tests.helpers.models import TINY_MODEL
from tests.helpers.servers import free_port
from tests.helpers.wait import wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        BROWSER is None, reason="no Chromium installed (`make browser`: apt-get install chromium)"
    ),
]


@dataclass(frozen=True)
class Uis:
    mlflow: str
    prefect: str
    run_id: str
    experiment_id: str
    flow_run_id: str
    dataset: str


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="module")
def uis(tiny_production, tmp_path_factory) -> Iterator[Uis]:
    """Both UIs on the tiny retrain's stores: MLflow's on its SQLite store, a Prefect server on
    the database of the session's Prefect API (its UI told its own API address)."""
    from mlflow import MlflowClient
    from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL

    from modelyard.orchestration.ui import ui_commands

    home = tiny_production.home
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODELYARD_HOME", str(home))
        commands = ui_commands("127.0.0.1", free_port(), free_port())
    mlflow_argv, mlflow_env = commands["mlflow"]
    prefect_argv, prefect_env = commands["prefect"]
    prefect_env = {
        **prefect_env,
        "PREFECT_HOME": str(tmp_path_factory.mktemp("prefect-ui-home")),
        "PREFECT_API_DATABASE_CONNECTION_URL": str(PREFECT_API_DATABASE_CONNECTION_URL.value()),
    }
    mlflow_url = f"http://127.0.0.1:{mlflow_argv[mlflow_argv.index('--port') + 1]}"
    prefect_url = f"http://127.0.0.1:{prefect_argv[-1]}"
    logs = tmp_path_factory.mktemp("ui-logs")
    started = [
        subprocess.Popen(
            argv, env=env, stdout=(logs / f"{name}.log").open("w"), stderr=subprocess.STDOUT
        )
        for name, argv, env in (
            ("mlflow", mlflow_argv, mlflow_env),
            ("prefect", prefect_argv, prefect_env),
        )
    ]
    try:
        for url, process in zip(
            (f"{mlflow_url}/health", f"{prefect_url}/api/health"), started, strict=True
        ):
            wait_until(
                lambda url=url: _up(url),
                f"{url} never answered ({logs})",
                600,
                0.5,
                alive=lambda process=process: process.poll() is None,
            )
        uri = f"sqlite:///{home.resolve()}/mlflow.db"
        run = MlflowClient(tracking_uri=uri).get_run(tiny_production.summary.mlflow_run_id)
        yield Uis(
            mlflow_url,
            prefect_url,
            run.info.run_id,
            run.info.experiment_id,
            run.data.tags["modelyard.prefect_flow_run_id"],
            run.data.tags["modelyard.dataset_version"],
        )
    finally:
        for process in started:
            process.terminate()
        for process in started:
            process.wait(timeout=60)


@pytest.fixture(scope="module")
def page() -> Iterator[Page]:
    with chromium() as tab:
        yield tab


def test_the_pages_a_person_reads(uis, page, tmp_path):
    screens = Path(os.environ.get("DOCS_SCREENS_DIR") or tmp_path)
    # The MLflow run: its description (outcome, dataset version, links), its source, and the
    # three dataset inputs (MLflow lists the first and "+2").
    page.open(f"{uis.mlflow}/#/experiments/{uis.experiment_id}/runs/{uis.run_id}")
    text = page.wait_for("Retrain of", "Gate: PROMOTE", f"{uis.dataset}/train (", "+2")
    assert "flows/retrain.py:retrain" in text and f"{TINY_MODEL}@production is version 1" in text
    page.screenshot(screens / "mlflow-run.png")
    # The model version: its description is the gate report, then the lineage.
    page.open(f"{uis.mlflow}/#/models/{TINY_MODEL}/versions/1")
    page.wait_for("Gate: PROMOTE", "Lineage", "production")
    page.screenshot(screens / "mlflow-version.png")
    # The Prefect flow run: named after what it did, tagged.
    page.open(f"{uis.prefect}/runs/flow-run/{uis.flow_run_id}")
    page.wait_for(f"retrain {TINY_MODEL} on {uis.dataset}", f"model:{TINY_MODEL}", "trigger:")
    page.screenshot(screens / "prefect-flow-run.png")
    # Its link artifact to the MLflow run.
    link = _artifact_id(f"mlflow-run-{TINY_MODEL}", uis.flow_run_id)
    page.open(f"{uis.prefect}/artifacts/artifact/{link}")
    page.wait_for(f"MLflow run {uis.run_id}")
    assert page.outside_requests() == [], page.outside_requests()
    assert page.errors == [], page.errors  # no uncaught script error on any page


def _artifact_id(key: str, flow_run_id: str) -> str:
    """The artifact `key` of this flow run (other retrains of the session's API made their own
    versions of it)."""
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )

    with get_client(sync_client=True) as prefect:
        (found,) = prefect.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[key]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(flow_run_id)]),
            )
        )
    return str(found.id)

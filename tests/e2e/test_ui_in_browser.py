"""What a person sees, read in a real browser: after the session's tiny retrain, MLflow's UI and
a Prefect server (started as `modelyard ui` starts them, on free ports) are opened in headless
Chromium: the run page, the version page, the list of models, the logged model, the Prefect
flow run and its artifacts; then every HTML report the retrain wrote, from disk. Each page must
say what it must say, raise no uncaught script error, and ask nothing of another machine; a
report also logs no console error (a failed load is one) and shows every image.

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
from tests.helpers.html_reports import data_docs_on_disk, download_html_reports
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
    run_name: str
    experiment_id: str
    flow_run_id: str
    dataset: str
    model_id: str  # the logged model the version points to


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
        yield _read_uis(home, tiny_production.summary.mlflow_run_id, mlflow_url, prefect_url)
    finally:
        for process in started:
            process.terminate()
        for process in started:
            process.wait(timeout=60)


# MLflow's UI opens a promotion modal for its new registry UI and its assistant's panel on a first
# visit; a person closes them once (the UI remembers it in localStorage), so the pages are read
# and pictured as they show from then on.
MLFLOW_DISMISSED = """try {
  localStorage.setItem('_mlflow_model_registry_promo_modal_dismissed_v1', 'true');
  localStorage.setItem('mlflow.assistant.fab.autoOpenedOnFirstLoad_v1', 'true');
  localStorage.setItem('mlflow.assistant.panelOpen_v1', 'false');
} catch (e) {}"""


def _read_uis(home: Path, run_id: str, mlflow_url: str, prefect_url: str) -> Uis:
    """Where the retrain's run, flow run and logged model are, read from its MLflow store."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{home.resolve()}/mlflow.db"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    run = client.get_run(run_id)
    return Uis(
        mlflow_url,
        prefect_url,
        run.info.run_id,
        run.info.run_name,
        run.info.experiment_id,
        run.data.tags["modelyard.prefect_flow_run_id"],
        run.data.tags["modelyard.dataset_version"],
        next(
            model.model_id
            for model in client.search_logged_models([run.info.experiment_id])
            if model.source_run_id == run.info.run_id
        ),
    )


@pytest.fixture(scope="module")
def page() -> Iterator[Page]:
    with chromium() as tab:
        tab.call("Page.addScriptToEvaluateOnNewDocument", source=MLFLOW_DISMISSED)
        yield tab


def test_the_pages_a_person_reads(uis, page, tmp_path):
    screens = Path(os.environ.get("DOCS_SCREENS_DIR") or tmp_path)
    _mlflow_pages(page, uis, screens)
    _prefect_pages(page, uis, screens)
    assert page.outside_requests() == [], page.outside_requests()
    assert page.errors == [], page.errors  # no uncaught script error on any page


def _links_to(page: Page, *targets: str) -> None:
    links = page.links()
    missing = [target for target in targets if not any(target in link for link in links)]
    assert not missing, f"no link to {missing} among {links}"


def _mlflow_pages(page: Page, uis: Uis, screens: Path) -> None:
    run = f"#/experiments/{uis.experiment_id}/runs/{uis.run_id}"
    flow_run = f"/runs/flow-run/{uis.flow_run_id}"
    # The run: its description (outcome, dataset version, links), its source, and the three
    # dataset inputs (MLflow lists the first and "+2").
    page.open(f"{uis.mlflow}/{run}")
    text = page.wait_for("Retrain of", "Gate: PROMOTE", f"{uis.dataset}/train (", "+2")
    assert "flows/retrain.py:retrain" in text and f"{TINY_MODEL}@production is version 1" in text
    _links_to(page, flow_run, f"{run}/artifacts/validation/index.html")
    page.screenshot(screens / "mlflow-run.png")
    # The version: its description is the gate report, then the lineage, linked.
    page.open(f"{uis.mlflow}/#/models/{TINY_MODEL}/versions/1")
    # (its source run is named, linked)
    page.wait_for("Gate: PROMOTE", "Lineage", "production", "Data Docs", uis.run_name)
    _links_to(page, flow_run, run, f"{run}/artifacts/validation/index.html")
    page.screenshot(screens / "mlflow-version.png")
    # The list of models: `production` is not hidden behind `staging`'s "+1".
    page.open(f"{uis.mlflow}/#/models")
    page.wait_for(TINY_MODEL, "@production v1")
    page.screenshot(screens / "mlflow-models.png")
    # The logged model names its version.
    page.open(f"{uis.mlflow}/#/experiments/{uis.experiment_id}/models/{uis.model_id}")
    text = page.wait_for(f"{TINY_MODEL}", "v1")
    assert "Not registered" not in text, text[:2000]


# Whether the table's "observed" column is on screen: not past the window's edge, nor clipped by
# a scrolling box around the table.
OBSERVED_COLUMN = """(() => {
  const th = [...document.querySelectorAll('th')].find(t => /observed/i.test(t.textContent));
  if (!th) return 'no observed column';
  const right = th.getBoundingClientRect().right;
  for (let box = th.parentElement; box; box = box.parentElement) {
    const clips = getComputedStyle(box).overflowX !== 'visible';
    if (clips && box.getBoundingClientRect().right < right - 1)
      return 'clipped by ' + box.tagName + ' ' + box.className;
  }
  return right <= window.innerWidth ? 'visible' : 'past the window';
})()"""


def _prefect_pages(page: Page, uis: Uis, screens: Path) -> None:
    # The flow run: named after what it did, tagged.
    page.open(f"{uis.prefect}/runs/flow-run/{uis.flow_run_id}")
    page.wait_for(f"retrain {TINY_MODEL} on {uis.dataset}", f"model:{TINY_MODEL}", "trigger:")
    page.screenshot(screens / "prefect-flow-run.png")
    # Its link artifacts to the MLflow run and to the model version.
    page.open(f"{uis.prefect}/artifacts/artifact/{_artifact_id(f'mlflow-run-{TINY_MODEL}', uis)}")
    page.wait_for(f"MLflow run {uis.run_id}")
    version = _artifact_id(f"model-version-{TINY_MODEL}", uis)
    page.open(f"{uis.prefect}/artifacts/artifact/{version}")
    page.wait_for(f"{TINY_MODEL} version 1")
    # The validation table: the observed values shown, the Data Docs a link.
    checks = _artifact_id(f"data-validation-{TINY_MODEL}", uis)
    page.open(f"{uis.prefect}/artifacts/artifact/{checks}")
    page.wait_for("Data validation of", "labels in the configured set")
    page.screenshot(screens / "prefect-data-validation.png")
    assert page.evaluate(OBSERVED_COLUMN) == "visible"
    _links_to(page, "file://")


# What a person must read on each report, by its path in the MLflow run.
REPORT_TEXT = {
    "validation/index.html": ("Data validation of", f"retrain {TINY_MODEL} on ", "passed"),
    "validation/0-rows.html": ("rows (data)",),
    "validation/1-statistics.html": ("statistics", "duplicate rows"),
    "explanations/report.html": (
        f"{TINY_MODEL}, candidate of MLflow run ",
        "log-odds",
        "What drives each class",
        "Most confident mistakes",
    ),
}


def test_every_html_report_in_the_browser(tiny_production, page, tmp_path):
    """Each HTML report of the run (as downloaded from it) and the Data Docs on disk, opened
    from disk: the text a person opens it for, every image shown, nothing asked of another
    machine, no script or console error."""
    screens = Path(os.environ.get("DOCS_SCREENS_DIR") or tmp_path)
    reports = download_html_reports(
        tiny_production.home, tiny_production.summary.mlflow_run_id, tmp_path
    )
    assert set(REPORT_TEXT) <= set(reports), sorted(reports)
    # The Data Docs on disk read as the run's copies do.
    on_disk = {
        f"{path} (on disk)": (path, REPORT_TEXT.get(f"validation/{path.name}", ()))
        for path in data_docs_on_disk(tiny_production.home)
    }
    shots = {
        "validation/index.html": "data-docs.png",
        "explanations/report.html": "explanations.png",
    }
    pages = {name: (path, REPORT_TEXT.get(name, ())) for name, path in reports.items()}
    for name, (path, needles) in sorted({**pages, **on_disk}.items()):
        seen = len(page.requests), len(page.errors), len(page.console)
        page.open(path.resolve().as_uri())
        page.wait_for(*needles, timeout_s=60)
        assert page.broken_images() == [], (name, page.broken_images())
        if name in shots:
            page.screenshot(screens / shots[name])
        outside = [url for url in page.outside_requests() if url in page.requests[seen[0] :]]
        assert outside == [], (name, outside)
        assert page.errors[seen[1] :] == [], (name, page.errors[seen[1] :])
        assert page.console[seen[2] :] == [], (name, page.console[seen[2] :])


def _artifact_id(key: str, uis: Uis) -> str:
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
                flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(uis.flow_run_id)]),
            )
        )
    return str(found.id)

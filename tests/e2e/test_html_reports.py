"""Every HTML report a retrain writes renders with no network and reads inside MLflow's artifact
viewer: after the session's tiny retrain, each .html in its MLflow run (and the Data Docs on
disk) loads nothing from elsewhere, links to no other file, has no placeholder field, and shows
what a person opens it for."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.html_reports import assert_self_contained, problems
from tests.helpers.models import TINY_MODEL

# What each report must show, by its path in the run.
KEY_CONTENT = {
    "validation/index.html": (
        "Data validation of",
        ": passed",
        f"<th>Run name</th><td>retrain {TINY_MODEL} on ",  # as the Prefect flow run is named
        "<th>Data asset</th>",
        "expectations passed",
        "labels in the configured set",
        "Suite <q>statistics</q>",
    ),
    "validation/0-rows.html": ("Suite <q>rows (data)</q>", "expect_column_to_exist"),
    "validation/1-statistics.html": ("Suite <q>statistics</q>", "duplicate rows"),
    "explanations/report.html": (
        "What drives each class",
        "Most confident mistakes",
        "log-odds of the class",
        "modelyard-legend",
        "<b>Green</b> pushes towards the class",
        "f(text) − f(baseline)",
    ),
}


def _html_artifacts(client, run_id: str, path: str | None = None) -> list[str]:
    found = []
    for entry in client.list_artifacts(run_id, path):
        if entry.is_dir:
            found += _html_artifacts(client, run_id, entry.path)
        elif entry.path.endswith(".html"):
            found.append(entry.path)
    return found


@pytest.fixture(scope="module")
def run_reports(tiny_production, tmp_path_factory) -> dict[str, Path]:
    """Every HTML artifact of the retrain's MLflow run, downloaded: {path in the run: file}."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{tiny_production.home.resolve()}/mlflow.db"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    run_id = tiny_production.summary.mlflow_run_id
    target = tmp_path_factory.mktemp("reports")
    return {
        path: Path(client.download_artifacts(run_id, path, str(target)))
        for path in _html_artifacts(client, run_id)
    }


def test_every_html_report_of_the_run_is_self_contained(run_reports):
    assert set(KEY_CONTENT) <= set(run_reports), sorted(run_reports)
    for path, local in sorted(run_reports.items()):
        assert_self_contained(local, *KEY_CONTENT.get(path, ()))


def test_the_data_docs_on_disk_are_self_contained_too(tiny_production):
    # Settings.validation_dir(): one directory per dataset md5 and params hash.
    pages = sorted((tiny_production.home / ".modelyard" / "validation").rglob("*.html"))
    assert {page.name for page in pages} >= {"index.html", "0-rows.html", "1-statistics.html"}
    for page in pages:
        assert not problems(page.read_text(encoding="utf-8")), page

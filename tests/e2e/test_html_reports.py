"""Every HTML report a retrain writes renders with no network and reads inside MLflow's artifact
viewer: after the session's tiny retrain, each .html in its MLflow run (and the Data Docs on
disk) loads nothing from elsewhere, links to no other file, has no placeholder field, and shows
what a person opens it for."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.html_reports import (
    assert_self_contained,
    data_docs_on_disk,
    download_html_reports,
    problems,
)
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
        f"<h1>{TINY_MODEL}, candidate of MLflow run ",  # whose predictions, what is attributed
        "what drives each class&#x27;s log-odds",
        "What drives each class",
        "Most confident mistakes",
        "log-odds of the class",
        "modelyard-legend",
        "<b>Green</b> pushes towards the class",
        "f(text) − f(baseline)",
    ),
}


@pytest.fixture(scope="module")
def run_reports(tiny_production, tmp_path_factory) -> dict[str, Path]:
    """Every HTML artifact of the retrain's MLflow run, downloaded: {path in the run: file}."""
    return download_html_reports(
        tiny_production.home,
        tiny_production.summary.mlflow_run_id,
        tmp_path_factory.mktemp("reports"),
    )


def test_every_html_report_of_the_run_is_self_contained(run_reports):
    assert set(KEY_CONTENT) <= set(run_reports), sorted(run_reports)
    for path, local in sorted(run_reports.items()):
        assert_self_contained(local, *KEY_CONTENT.get(path, ()))


def test_the_data_docs_on_disk_are_self_contained_too(tiny_production):
    pages = data_docs_on_disk(tiny_production.home)
    assert {page.name for page in pages} >= {"index.html", "0-rows.html", "1-statistics.html"}
    for page in pages:
        assert not problems(page.read_text(encoding="utf-8")), page

"""Data tasks. A bad dataset is an expected outcome, not a crash: these tasks return a `Rejected`
instead of raising, so the flow can end Failed with one clear message (no traceback in the log)
before anything is trained or tracked."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from modelyard.adapters import datasets as sources
from modelyard.adapters.catalog import CatalogError
from modelyard.config import DataParams, Params
from modelyard.data import dataset as ds
from modelyard.data.membership import Membership, SplitLineage, inherit_split
from modelyard.data.validation import (
    DataValidationError,
    ValidationReport,
    validate_datasets,
    write_data_docs,
)
from modelyard.orchestration.runs import artifact_key, run_title


class Rejected:
    """Why the data was refused; the message names the file, the check and what was observed."""

    def __init__(self, message: str) -> None:
        self.message = message

    def __repr__(self) -> str:
        return f"Rejected({self.message!r})"


@task(name="resolve-dataset", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def resolve_dataset(
    spec: str, repo: str | None, root: Path | None, cache_dir: Path
) -> sources.Source | Rejected:
    """A file path, or NAME@VERSION fetched through dvc.api; with its identity (DVC md5)."""
    try:
        source = sources.resolve(spec, repo, root, cache_dir)
    except (CatalogError, ds.DatasetError) as error:
        return Rejected(str(error))
    version = source.version
    logger = get_run_logger()
    logger.info(
        "dataset %s: md5 %s, %d bytes, git %s",
        source.label,
        version.md5,
        version.size,
        version.git_commit[:12],
    )
    if (warning := sources.versioning_warning(spec, source)) is not None:
        logger.warning("%s", warning)
    return source


@task(name="load-dataset", cache_policy=NO_CACHE)
def load_dataset(source: sources.Source, data: DataParams | None = None) -> pd.DataFrame | Rejected:
    """The rows, decoded and split as `data` says; how every record was read travels with
    them for the validation suite to judge."""
    try:
        frame = sources.read(source, data)
    except ds.DatasetError as error:
        return Rejected(str(error))
    get_run_logger().info(
        "read %s: %d rows, columns %s", source.label, len(frame), list(frame.columns)
    )
    return frame


@task(name="validate-dataset", cache_policy=NO_CACHE)
def validate_dataset(
    frame: pd.DataFrame, test: pd.DataFrame | None, params: Params, source: str, docs_dir: Path
) -> tuple[ValidationReport, Path]:
    """The expectation suite; Data Docs written to `docs_dir`, a summary as a Prefect artifact."""
    report = validate_datasets(frame, params.data, params.validation, test)
    # The Data Docs name the run as Prefect does (the retrain flow is the only caller).
    run = flow_run.get_id()
    run_name = run_title(params.model.name, source) + (f" (flow run {run})" if run else "")
    docs = write_data_docs(report, docs_dir, source, run_name=run_name)
    verdict = "passed" if report.success else "**FAILED**"
    index = (docs / "index.html").resolve()
    create_markdown_artifact(
        key=artifact_key("data-validation", params.model.name),
        markdown=(
            f"### Data validation of `{source}`: {verdict}\n\n{report.summary()}; Data Docs: "
            f"[{index}]({index.as_uri()}) (and under `validation/` in the MLflow run)\n\n"
            f"{_checks_table(report)}"
        ),
        description="Great Expectations suite on every row of the dataset (and the test file)",
    )
    logger = get_run_logger()
    if report.success:
        logger.info("validation passed: %s", report.summary())
    else:
        logger.error("validation failed: %s", report.summary())
    return report, docs


# Prefect's UI draws a markdown table's cells on one line each and scrolls (with no scroll bar)
# what does not fit, beside its side panel: three columns, texts cut so a row fits a laptop's
# window, the observed value included; the Data Docs carry them whole, with each check's column.
CHECK_CHARS, OBSERVED_CHARS = 52, 40


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _checks_table(report: ValidationReport) -> str:
    """The checks as a table that fits Prefect's artifact page: the result first and what was
    observed last, the expectation's long name left to the Data Docs."""
    lines = ["| result | check | observed |", "|---|---|---|"]
    for check in report.checks:
        mark = "pass" if check.success else "**FAIL**"
        title = check.title + ("" if check.scope == "data" else f" ({check.scope})")
        cells = (_cut(title, CHECK_CHARS), _cut(check.detail, OBSERVED_CHARS))
        lines.append(f"| {mark} | " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def rejection(report: ValidationReport, source: str, docs: Path) -> Rejected:
    return Rejected(f"{DataValidationError(source, report)}\nData Docs: {docs / 'index.html'}")


@task(name="split-dataset", cache_policy=NO_CACHE)
def split_dataset(
    frame: pd.DataFrame,
    test: pd.DataFrame | None,
    params: DataParams,
    parent: Membership | None = None,
    parent_version: str | None = None,
) -> tuple[ds.Splits, SplitLineage]:
    """Train/val/test; every text the production model (`parent`) knew keeps its split there."""
    canonical_test = None if test is None else ds.to_canonical(test, params)
    splits, lineage = inherit_split(
        ds.to_canonical(frame, params), params, parent, parent_version, canonical_test
    )
    how = "the test file" if test is not None else "a grouped, stratified split"
    logger = get_run_logger()
    logger.info("split (seed %d, test from %s): %s", params.seed, how, splits.sizes())
    logger.info("%s", lineage.describe())
    return splits, lineage

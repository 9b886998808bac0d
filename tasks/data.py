from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from modelyard.config import DataParams
from modelyard.data import dataset as ds
from modelyard.data.identity import DatasetVersion, dataset_version
from modelyard.data.validation import DataValidationError, ValidationReport, validate_frame


@task(name="resolve-dataset-version", cache_policy=NO_CACHE)
def resolve_dataset(path: Path) -> DatasetVersion:
    version = dataset_version(path)
    logger = get_run_logger()
    logger.info("dataset %s: md5 %s, %d bytes, git %s", path, version.md5, version.size,
                version.git_commit[:12])
    if version.dvc_pointer_md5 is None:
        logger.warning("%s is not tracked by DVC: `dvc add %s` to version it", path, path)
    elif not version.matches_pointer:
        logger.warning("%s differs from its .dvc pointer (%s): the data changed since `dvc add`",
                       path, version.dvc_pointer_md5[:10])
    return version


@task(name="load-dataset", cache_policy=NO_CACHE)
def load_dataset(path: Path) -> pd.DataFrame:
    return ds.read_frame(path)


@task(name="validate-dataset", cache_policy=NO_CACHE)
def validate_dataset(frame: pd.DataFrame, params: DataParams, source: str) -> ValidationReport:
    """Fails the flow (before any training or tracking) when the data breaks the suite."""
    report = validate_frame(frame, params)
    create_markdown_artifact(
        key="data-validation",
        markdown=f"### Data validation of `{source}` ({report.rows} rows)\n\n{report.to_markdown()}",
        description="Great Expectations suite on the training data",
    )
    if not report.success:
        raise DataValidationError(source, report)
    get_run_logger().info("validation passed: %d expectations on %d rows", len(report.checks),
                          report.rows)
    return report


@task(name="split-dataset", cache_policy=NO_CACHE)
def split_dataset(frame: pd.DataFrame, params: DataParams) -> ds.Splits:
    splits = ds.split(ds.to_canonical(frame, params), params)
    get_run_logger().info("split (stratified, seed %d): %s", params.seed, splits.sizes())
    return splits

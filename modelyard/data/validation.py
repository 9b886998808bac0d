"""The data gate: a Great Expectations suite run on the raw frame before any training.

The suite uses the column names of `params.yaml`, so a failure names the columns as the data
scientist wrote them.

GX is imported inside the functions (it takes seconds to import) and runs in an ephemeral
context: validating a frame writes nothing to disk and sends nothing anywhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from modelyard.config import DataParams


@dataclass(frozen=True)
class Check:
    expectation: str
    column: str | None
    success: bool
    detail: str


@dataclass(frozen=True)
class ValidationReport:
    success: bool
    rows: int
    checks: list[Check] = field(default_factory=list)

    def failures(self) -> list[Check]:
        return [check for check in self.checks if not check.success]

    def to_markdown(self) -> str:
        lines = ["| expectation | column | result | detail |", "|---|---|---|---|"]
        for check in self.checks:
            mark = "pass" if check.success else "**FAIL**"
            lines.append(f"| {check.expectation} | {check.column or ''} | {mark} | {check.detail} |")
        return "\n".join(lines)


class DataValidationError(ValueError):
    """Raised when a dataset fails the suite; nothing downstream runs."""

    def __init__(self, source: str, report: ValidationReport) -> None:
        self.report = report
        problems = "\n".join(
            f"  - {check.expectation}({check.column or ''}): {check.detail}"
            for check in report.failures()
        )
        super().__init__(f"dataset {source} failed validation:\n{problems}")


def build_suite(params: DataParams) -> Any:
    """The expectations every training dataset must meet."""
    import great_expectations as gx

    suite = gx.ExpectationSuite(name="modelyard-training-data")
    text, label = params.text_column, params.label_column
    for column in (text, label):
        suite.add_expectation(gx.expectations.ExpectColumnToExist(column=column))
        suite.add_expectation(gx.expectations.ExpectColumnValuesToNotBeNull(column=column))
    suite.add_expectation(
        gx.expectations.ExpectColumnValuesToNotMatchRegex(column=text, regex=r"^\s*$")
    )
    suite.add_expectation(
        gx.expectations.ExpectColumnValuesToBeInSet(column=label, value_set=list(params.labels))
    )
    suite.add_expectation(gx.expectations.ExpectTableRowCountToBeBetween(min_value=params.min_rows))
    return suite


def _detail(result: Any) -> str:
    info = result.result or {}
    if result.exception_info and result.exception_info.get("raised_exception"):
        message = result.exception_info.get("exception_message") or "raised an exception"
        return str(message).splitlines()[0]
    if "observed_value" in info:
        return f"observed {info['observed_value']}"
    if "unexpected_count" in info:
        examples = [v for v in (info.get("partial_unexpected_list") or [])[:3]]
        shown = f", e.g. {examples}" if examples and any(str(v).strip() for v in examples) else ""
        return f"{info['unexpected_count']} unexpected of {info.get('element_count', '?')} rows{shown}"
    return "ok" if result.success else "failed"


def validate_frame(frame: pd.DataFrame, params: DataParams) -> ValidationReport:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx

    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas("modelyard")
    asset = source.add_dataframe_asset("training-data")
    batch = asset.add_batch_definition_whole_dataframe("all").get_batch(
        batch_parameters={"dataframe": frame}
    )
    outcome = batch.validate(build_suite(params))
    columns = list(frame.columns)
    checks = []
    for result in outcome.results:
        column = result.expectation_config.kwargs.get("column")
        detail = _detail(result)
        if column is not None and column not in columns:
            detail = f"column {column!r} is missing (columns: {columns})"
        checks.append(
            Check(result.expectation_config.type, column, bool(result.success), detail)
        )
    return ValidationReport(success=bool(outcome.success), rows=len(frame), checks=checks)

"""The data gate: a Great Expectations suite run on the data before any training.

Three suites, all defined here and versioned with the code:

* `records` runs on a one-row table of how a text file was read (`modelyard.data.records`):
  every record of the file read as one row, every record with the header's fields, no records
  merged or altered by quotes — each figure must be 0, its detail names the lines and the fix
  (`data.quoting`, `data.delimiter`). Only for a frame read from a CSV, TSV or JSON Lines file.
* `rows` runs on the file as read (natural types, the column names of `params.yaml`, so a
  failure names the columns as the data scientist wrote them): columns present and typed, no
  null or blank text, text lengths, encoding, labels in the set, every class present, row count.
* `statistics` runs on a one-row table of dataset-level figures that no column expectation can
  see: the smallest class, the class imbalance, duplicate rows, texts with conflicting labels and
  train/test leakage. GX still judges them, so they sit in the same result and Data Docs.

A separate test file gets the `records` and `rows` suites too (without the row-count floor).
Thresholds come from the `validation:` section of `params.yaml`.

GX is imported inside the functions (it takes seconds to import) and runs in an ephemeral
context: validating writes nothing unless `write_data_docs` is asked to.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from modelyard.config import DataParams, ValidationParams
from modelyard.data import dataset as ds
from modelyard.data import records

# Control characters other than tab/newline/carriage return, DEL, and U+FFFD (what an
# undecodable byte reads as).
BAD_ENCODING = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd]"
TEXT_TYPES = ["str", "string", "object", "StringDtype", "large_string"]
LABEL_TYPES = [
    *TEXT_TYPES,
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "Int8",
    "Int16",
    "Int32",
    "Int64",
    "int",
]


@dataclass(frozen=True)
class Check:
    expectation: str
    column: str | None
    success: bool
    detail: str
    title: str = ""
    scope: str = "data"

    def line(self) -> str:
        where = f"{self.expectation}({self.column or ''})"
        scope = "" if self.scope == "data" else f" [{self.scope}]"
        return f"{self.title or where}{scope}: {where} {self.detail}"


@dataclass(frozen=True)
class ValidationReport:
    success: bool
    rows: int
    checks: list[Check] = field(default_factory=list)
    statistics: dict[str, float] = field(default_factory=dict)
    test_rows: int | None = None
    # The GX validation results by suite, for Data Docs and the MLflow run.
    results: dict[str, Any] = field(default_factory=dict, repr=False)

    def failures(self) -> list[Check]:
        return [check for check in self.checks if not check.success]

    def summary(self) -> str:
        passed = sum(check.success for check in self.checks)
        test = f" + {self.test_rows} test rows" if self.test_rows is not None else ""
        return f"{passed}/{len(self.checks)} expectations passed on {self.rows} rows{test}"

    def to_markdown(self) -> str:
        lines = ["| check | expectation | column | result | observed |", "|---|---|---|---|---|"]
        for check in self.checks:
            mark = "pass" if check.success else "**FAIL**"
            title = check.title + ("" if check.scope == "data" else f" ({check.scope})")
            detail = check.detail.replace("|", "\\|")
            lines.append(
                f"| {title} | {check.expectation} | {check.column or ''} | {mark} | {detail} |"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "success": self.success,
            "rows": self.rows,
            "test_rows": self.test_rows,
            "summary": self.summary(),
            "statistics": self.statistics,
            "checks": [asdict(check) for check in self.checks],
        }


class DataValidationError(ValueError):
    """Raised when a dataset fails the suite; nothing downstream runs."""

    def __init__(self, source: str, report: ValidationReport) -> None:
        self.report = report
        failures = report.failures()
        problems = "\n".join(f"  - {check.line()}" for check in failures)
        super().__init__(
            f"dataset {source} failed validation ({len(failures)} of "
            f"{len(report.checks)} expectations):\n{problems}"
        )


def _label_values(labels: tuple[str, ...], column: pd.Series | None) -> list[Any]:
    """The configured labels as they appear in the column: integers in an integer column."""
    if column is not None and pd.api.types.is_integer_dtype(column.dtype):
        return [int(label) if label.lstrip("-").isdigit() else label for label in labels]
    return list(labels)


def build_row_suite(
    data: DataParams, limits: ValidationParams, frame: pd.DataFrame, min_rows: int | None
) -> tuple[Any, dict[str, str]]:
    """The per-row expectations, with a title a person reads for each."""
    import great_expectations as gx

    E = gx.expectations
    text, label = data.text_column, data.label_column
    values = _label_values(data.labels, frame[label] if label in frame.columns else None)
    titled: list[tuple[str, Any]] = [
        ("text column present", E.ExpectColumnToExist(column=text)),
        ("label column present", E.ExpectColumnToExist(column=label)),
        (
            "text column holds text",
            E.ExpectColumnValuesToBeInTypeList(column=text, type_list=TEXT_TYPES),
        ),
        (
            "label column holds strings or integers",
            E.ExpectColumnValuesToBeInTypeList(column=label, type_list=LABEL_TYPES),
        ),
        ("no missing text", E.ExpectColumnValuesToNotBeNull(column=text)),
        ("no missing label", E.ExpectColumnValuesToNotBeNull(column=label)),
        ("no blank text", E.ExpectColumnValuesToNotMatchRegex(column=text, regex=r"^\s*$")),
        (
            f"text length within {limits.min_text_length}..{limits.max_text_length} characters",
            E.ExpectColumnValueLengthsToBeBetween(
                column=text, min_value=limits.min_text_length, max_value=limits.max_text_length
            ),
        ),
        (
            "no undecodable bytes or control characters",
            E.ExpectColumnValuesToNotMatchRegex(
                column=text, regex=BAD_ENCODING, mostly=1.0 - limits.max_bad_encoding_fraction
            ),
        ),
        (
            f"labels in the configured set {list(data.labels)}",
            E.ExpectColumnValuesToBeInSet(column=label, value_set=values),
        ),
        (
            "every configured class present",
            E.ExpectColumnDistinctValuesToContainSet(column=label, value_set=values),
        ),
    ]
    if min_rows is not None:
        titled.append(
            (f"at least {min_rows} rows", E.ExpectTableRowCountToBeBetween(min_value=min_rows))
        )
    suite = gx.ExpectationSuite(name="modelyard-rows")
    titles = {}
    for title, expectation in titled:
        suite.add_expectation(expectation)
        config = {
            "column": getattr(expectation, "column", None),
            "regex": getattr(expectation, "regex", None),
        }
        titles[_key(expectation.expectation_type, config)] = title
    return suite, titles


# Dataset-level figures: (column in the statistics table, title, "min"/"max", params field).
STATISTICS = (
    ("rows_in_smallest_class", "rows per class", "min", "min_rows_per_class"),
    ("imbalance_ratio", "class imbalance (largest/smallest)", "max", "max_imbalance_ratio"),
    ("duplicate_fraction", "duplicate rows", "max", "max_duplicate_fraction"),
    (
        "conflicting_label_fraction",
        "same text with conflicting labels",
        "max",
        "max_conflicting_fraction",
    ),
    (
        "leakage_fraction",
        "test texts also in training data (leakage)",
        "max",
        "max_leakage_fraction",
    ),
)


def build_statistics_suite(limits: ValidationParams, columns: list[str]) -> Any:
    import great_expectations as gx

    suite = gx.ExpectationSuite(name="modelyard-statistics")
    for column, _, bound, limit in STATISTICS:
        if column not in columns:
            continue
        value = getattr(limits, limit)
        if bound == "min":
            suite.add_expectation(
                gx.expectations.ExpectColumnMinToBeBetween(column=column, min_value=value)
            )
        else:
            suite.add_expectation(
                gx.expectations.ExpectColumnMaxToBeBetween(column=column, max_value=value)
            )
    return suite


def dataset_statistics(
    data: pd.DataFrame, params: DataParams, test: pd.DataFrame | None = None
) -> tuple[dict[str, float], dict[str, str]]:
    """Dataset-level figures over the usable rows (text and a configured label present), with a
    sentence of context for each. Leakage is measured against `test`, or else against the test
    split ModelYard would cut."""
    canonical = ds.to_canonical(data, params)
    if ds.TEXT not in canonical or ds.LABEL not in canonical:
        return {}, {}
    usable = canonical.dropna()
    usable = usable[usable[ds.LABEL].isin(params.labels)]
    counts = usable[ds.LABEL].value_counts().reindex(list(params.labels), fill_value=0)
    smallest, largest = counts.idxmin(), counts.idxmax()
    keys = ds.text_key(usable[ds.TEXT])
    rows = max(len(usable), 1)
    duplicated = pd.DataFrame({"k": keys, "l": usable[ds.LABEL]}).duplicated()
    labels_per_text = usable[ds.LABEL].groupby(keys.to_numpy()).nunique()
    conflicting = keys.isin(labels_per_text.index[labels_per_text > 1])
    stats = {
        "rows_in_smallest_class": int(counts.min()),
        "imbalance_ratio": round(float(counts.max() / counts.min()), 4)
        if counts.min()
        else float("inf"),
        "duplicate_fraction": round(float(duplicated.sum() / rows), 6),
        "conflicting_label_fraction": round(float(conflicting.sum() / rows), 6),
    }
    context = {
        "rows_in_smallest_class": f"class {smallest!r} has {counts.min()} rows "
        f"(counts: {counts.to_dict()})",
        "imbalance_ratio": f"{largest!r} has {counts.max()} rows, {smallest!r} {counts.min()}",
        "duplicate_fraction": f"{int(duplicated.sum())} rows repeat an earlier row",
        "conflicting_label_fraction": f"{int(conflicting.sum())} rows share their text with a "
        "row of another label",
    }
    leaked, tested, against = _leakage(usable, params, test)
    if tested:
        stats["leakage_fraction"] = round(leaked / tested, 6)
        context["leakage_fraction"] = f"{leaked} of {tested} test rows also in {against}"
    return stats, context


def _leakage(
    usable: pd.DataFrame, params: DataParams, test: pd.DataFrame | None
) -> tuple[int, int, str]:
    if test is not None:
        canonical = ds.to_canonical(test, params)
        if ds.TEXT not in canonical:
            return 0, 0, ""
        test_keys = ds.text_key(canonical[ds.TEXT].dropna())
        train_keys = set(ds.text_key(usable[ds.TEXT]))
        return int(test_keys.isin(train_keys).sum()), len(test_keys), "the training file"
    try:
        splits = ds.split(usable, params)
    except ValueError:  # too few rows of some class to cut a split: reported by the other checks
        return 0, 0, ""
    train_keys = set(ds.text_key(pd.concat([splits.train[ds.TEXT], splits.val[ds.TEXT]])))
    test_keys = ds.text_key(splits.test[ds.TEXT])
    return int(test_keys.isin(train_keys).sum()), len(test_keys), "the train/val split"


def _key(kind: str, config: dict[str, Any]) -> str:
    column = config.get("column")
    if kind == "expect_column_values_to_not_match_regex":
        return f"{kind}:{column}:{config.get('regex')}"
    return f"{kind}:{column}"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _detail(
    result: Any, columns: list[str], hint: str = "", present: frozenset[str] = frozenset()
) -> str:
    config = result.expectation_config.kwargs
    column = config.get("column")
    if column is not None and column not in columns:
        return f"column {column!r} is missing (columns: {columns}){hint}"
    info = result.result or {}
    if result.exception_info and result.exception_info.get("raised_exception"):
        message = result.exception_info.get("exception_message") or "raised an exception"
        return "could not be evaluated: " + str(message).splitlines()[0]
    if result.expectation_config.type == "expect_column_distinct_values_to_contain_set":
        # GX reports no observed value for this one in the SUMMARY format.
        missing = sorted(set(map(str, config["value_set"])) - present)
        return f"observed classes {sorted(present)}" + (f", missing {missing}" if missing else "")
    if "observed_value" in info and "unexpected_count" not in info:
        observed = info["observed_value"]
        bounds = [
            f"≥ {_fmt(config['min_value'])}" if config.get("min_value") is not None else "",
            f"≤ {_fmt(config['max_value'])}" if config.get("max_value") is not None else "",
        ]
        allowed = " and ".join(b for b in bounds if b)
        return f"observed {_fmt(observed)}" + (f" (allowed {allowed})" if allowed else "")
    if "unexpected_count" in info:
        examples = [v for v in (info.get("partial_unexpected_list") or [])[:3]]
        shown = f", e.g. {examples}" if examples and any(str(v).strip() for v in examples) else ""
        count, total = info["unexpected_count"], info.get("element_count", "?")
        mostly = config.get("mostly")
        limit = f" (allowed {_fmt(1 - mostly)} of rows)" if mostly not in (None, 1.0) else ""
        return f"observed {count} of {total} rows{shown}{limit}"
    return "ok" if result.success else "failed"


def _for_gx(frame: pd.DataFrame) -> pd.DataFrame:
    """pandas 3 reads text as its `str` dtype, which GX 1.x's type check does not know; as
    `object` GX checks the type of every value instead, which is what "holds text" means."""
    strings = [c for c in frame.columns if isinstance(frame[c].dtype, pd.StringDtype)]
    return frame.astype({c: object for c in strings}) if strings else frame


def _run(context: Any, name: str, frame: pd.DataFrame, suite: Any) -> Any:
    frame = _for_gx(frame)
    asset = context.data_sources.add_pandas(name).add_dataframe_asset(name)
    batch = asset.add_batch_definition_whole_dataframe("all").get_batch(
        batch_parameters={"dataframe": frame}
    )
    outcome = batch.validate(suite, result_format="SUMMARY")
    for result in outcome.results:
        # numpy scalars (numpy 2 prints them as `np.float64(…)`) break Data Docs' number format.
        observed = (result.result or {}).get("observed_value")
        if result.result is not None and observed is not None and hasattr(observed, "item"):
            result.result["observed_value"] = observed.item()
    return outcome


def _gx_context() -> Any:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    # Without a config GX's ephemeral context makes a temporary docs site on disk each time;
    # Data Docs are rendered explicitly by `write_data_docs` instead.
    return gx.get_context(
        mode="ephemeral",
        project_config=DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
            progress_bars=ProgressBarsConfig(globally=False),
        ),
    )


def _record_checks(
    context: Any, scope: str, frame: pd.DataFrame, results: dict[str, Any]
) -> list[Check]:
    """Every record of the file read as one row (`modelyard.data.records`), judged by GX on a
    one-row table of the reading's figures: each must be 0. None for a frame not read from a
    text file."""
    import great_expectations as gx

    reading = records.reading_of(frame)
    if reading is None:
        return []
    figures = reading.checks()
    table = pd.DataFrame([{figure: observed for figure, _, observed, _ in figures}])
    suite = gx.ExpectationSuite(name="modelyard-records")
    for figure, *_ in figures:
        suite.add_expectation(
            gx.expectations.ExpectColumnMaxToBeBetween(column=figure, min_value=0, max_value=0)
        )
    outcome = _run(context, f"records-{scope.replace(' ', '-')}", table, suite)
    results[f"records ({scope})"] = outcome
    by_figure = {figure: (title, observed, why) for figure, title, observed, why in figures}
    checks = []
    for result in outcome.results:
        config = result.expectation_config
        title, observed, why = by_figure[config.kwargs["column"]]
        checks.append(
            Check(
                config.type,
                config.kwargs["column"],
                bool(result.success),
                f"observed {observed} (allowed 0): {why}",
                title,
                scope,
            )
        )
    return checks


def _row_checks(
    context: Any,
    scope: str,
    frame: pd.DataFrame,
    min_rows: int | None,
    params: tuple[DataParams, ValidationParams],
    results: dict[str, Any],
) -> list[Check]:
    data_params, limits = params
    suite, titles = build_row_suite(data_params, limits, frame, min_rows)
    outcome = _run(context, f"rows-{scope.replace(' ', '-')}", frame, suite)
    results[f"rows ({scope})"] = outcome
    columns, hint = list(frame.columns), ds.delimiter_hint(frame)
    label = data_params.label_column
    present = (
        frozenset(str(v) for v in frame[label].dropna().unique())
        if label in frame.columns
        else frozenset()
    )
    checks = []
    for result in outcome.results:
        config = result.expectation_config
        checks.append(
            Check(
                config.type,
                config.kwargs.get("column"),
                bool(result.success),
                _detail(result, columns, hint, present),
                titles.get(_key(config.type, config.kwargs), config.type),
                scope,
            )
        )
    return checks


def _statistics_checks(
    context: Any, stats: dict[str, float], context_lines: dict[str, str], limits: ValidationParams
) -> tuple[list[Check], Any]:
    table = pd.DataFrame([{k: (1e12 if v == float("inf") else v) for k, v in stats.items()}])
    outcome = _run(context, "statistics", table, build_statistics_suite(limits, list(stats)))
    titles = {column: title for column, title, _, _ in STATISTICS}
    checks = []
    for result in outcome.results:
        config = result.expectation_config
        column = config.kwargs["column"]
        detail = _detail(result, list(table.columns)).replace("1e+12", "inf")
        checks.append(
            Check(
                config.type,
                column,
                bool(result.success),
                f"{detail}: {context_lines[column]}",
                titles[column],
                "statistics",
            )
        )
    return checks, outcome


def validate_datasets(
    data: pd.DataFrame,
    data_params: DataParams,
    limits: ValidationParams,
    test: pd.DataFrame | None = None,
) -> ValidationReport:
    """Run the suites (and the record and rows suites on a separate test file) and collect
    every problem."""
    context = _gx_context()
    checks: list[Check] = []
    # Data Docs pages are numbered in this order: the record suites' pages come last, so the
    # rows and statistics pages keep their names (0-rows.html, 1-statistics.html).
    results: dict[str, Any] = {}
    record_results: dict[str, Any] = {}
    frames: list[tuple[str, pd.DataFrame, int | None]] = [("data", data, limits.min_rows)]
    if test is not None:
        frames.append(("test file", test, None))
    for scope, frame, min_rows in frames:
        checks += _record_checks(context, scope, frame, record_results)
        checks += _row_checks(context, scope, frame, min_rows, (data_params, limits), results)
    stats, context_lines = dataset_statistics(data, data_params, test)
    if stats:
        statistics, results["statistics"] = _statistics_checks(
            context, stats, context_lines, limits
        )
        checks += statistics
    results.update(record_results)
    return ValidationReport(
        success=all(check.success for check in checks),
        rows=len(data),
        checks=checks,
        statistics=stats,
        test_rows=None if test is None else len(test),
        results=results,
    )


def validate_frame(
    frame: pd.DataFrame, params: DataParams, limits: ValidationParams | None = None
) -> ValidationReport:
    """One frame, no separate test file."""
    return validate_datasets(frame, params, limits or ValidationParams())


def ensure_valid(report: ValidationReport, source: str) -> ValidationReport:
    if not report.success:
        raise DataValidationError(source, report)
    return report


def write_data_docs(
    report: ValidationReport, directory: Path, source: str, run_name: str | None = None
) -> Path:
    """Data Docs (`modelyard.data.data_docs`: self-contained pages rendered from the GX results,
    an index holding every suite and one page per suite) and the whole result as JSON; written
    to a temporary name and renamed, so a reader never sees half a report. `run_name` names the
    validation on every page (default: "validation of SOURCE")."""
    import shutil
    import tempfile

    from modelyard.data import data_docs

    run_name = run_name or f"validation of {source}"
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".docs-", dir=directory.parent))
    for name, page in data_docs.render(report, source, run_name).items():
        (staging / name).write_text(page, encoding="utf-8")
    (staging / "validation.json").write_text(
        json.dumps(
            {
                "source": source,
                "run_name": run_name,
                **report.to_dict(),
                "gx_results": {k: r.to_json_dict() for k, r in report.results.items()},
            },
            indent=2,
            default=str,
        ),
        encoding="utf-8",
    )
    shutil.rmtree(directory, ignore_errors=True)
    staging.rename(directory)
    return directory

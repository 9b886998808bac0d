"""Validating the SST-2 train file (67,349 rows) with the full expectation suite (19 expectations,
Great Expectations; 2 of them on how the file's records were read), against the same checks
written directly in pandas, in one run. Prints seconds and rows/s for both, and the time to read
the file (decoding, accounting for every record, parsing); the target is under 10 s on a 2-core
machine.

    .venv/bin/python bench/validate_sst2.py [path/to/train.tsv]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "sst2" / "train.tsv"


def plain_pandas(frame, params, limits) -> bool:
    """The suite's checks without GX: the baseline."""
    from modelyard.data.validation import BAD_ENCODING, dataset_statistics

    text, label = frame[params.text_column], frame[params.label_column]
    lengths = text.str.len()
    rows_ok = (
        {params.text_column, params.label_column} <= set(frame.columns)
        and text.map(type).eq(str).all()
        and text.notna().all()
        and label.notna().all()
        and not text.str.fullmatch(r"\s*").any()
        and lengths.between(limits.min_text_length, limits.max_text_length).all()
        and not text.str.contains(BAD_ENCODING).any()
        and label.astype(str).isin(params.labels).all()
        and set(params.labels) <= set(label.astype(str))
        and len(frame) >= limits.min_rows
    )
    stats, _ = dataset_statistics(frame, params)
    return bool(
        rows_ok
        and stats["rows_in_smallest_class"] >= limits.min_rows_per_class
        and stats["imbalance_ratio"] <= limits.max_imbalance_ratio
        and stats["duplicate_fraction"] <= limits.max_duplicate_fraction
        and stats["conflicting_label_fraction"] <= limits.max_conflicting_fraction
        and stats["leakage_fraction"] <= limits.max_leakage_fraction
    )


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    if not path.is_file():
        sys.exit(f"{path} not found: pass the SST-2 train.tsv path")

    from modelyard.config import DataParams, ValidationParams
    from modelyard.data.dataset import read_frame
    from modelyard.data.validation import validate_datasets
    from modelyard.env import apply_defaults

    apply_defaults()
    params = DataParams(text_column="sentence", label_column="label", labels=(0, 1))
    limits = ValidationParams(min_rows=1000)
    validate_datasets(read_frame(path).head(200), params, limits)  # warm-up: imports, GX set-up

    started = time.perf_counter()
    frame = read_frame(path)
    read = time.perf_counter() - started
    started = time.perf_counter()
    report = validate_datasets(frame, params, limits)
    ours = time.perf_counter() - started

    started = time.perf_counter()
    plain_ok = plain_pandas(frame, params, limits)
    plain = time.perf_counter() - started

    rows = len(frame)
    print(f"rows {rows}: {report.summary()} (plain pandas agrees: {plain_ok == report.success})")
    accounted = next(c for c in report.checks if c.column == "records_not_read")
    print(f"records: {accounted.detail}")
    print(f"read the file        {read:.2f} s")
    print(
        f"great expectations   {ours:.2f} s  {rows / ours:,.0f} rows/s  "
        f"(read + validate {read + ours:.2f} s; target < 10 s)"
    )
    print(f"plain pandas         {plain:.2f} s  {rows / plain:,.0f} rows/s")
    print(f"ratio: the GX suite takes {ours / plain:.1f}x the plain pandas time")


if __name__ == "__main__":
    main()

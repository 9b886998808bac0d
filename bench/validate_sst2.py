"""Validating the SST-2 train file (67,349 rows) with the Great Expectations suite, against the
same checks written directly in pandas, in one run. Prints seconds and rows/s for both.

    .venv/bin/python bench/validate_sst2.py [path/to/train.tsv]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "sst2" / "train.tsv"


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    if not path.is_file():
        sys.exit(f"{path} not found: pass the SST-2 train.tsv path")

    from modelyard.config import DataParams
    from modelyard.data.dataset import read_frame
    from modelyard.data.validation import validate_frame
    from modelyard.env import apply_defaults

    apply_defaults()
    params = DataParams(text_column="sentence", label_column="label", labels=("0", "1"),
                        min_rows=1000)
    frame = read_frame(path)
    validate_frame(frame.head(100), params)  # warm-up: imports and GX context set-up

    started = time.perf_counter()
    report = validate_frame(frame, params)
    ours = time.perf_counter() - started

    started = time.perf_counter()
    text, label = frame["sentence"], frame["label"]
    plain_ok = bool(
        {"sentence", "label"} <= set(frame.columns) and text.notna().all()
        and label.notna().all() and not text.str.fullmatch(r"\s*").any()
        and label.isin(params.labels).all() and len(frame) >= params.min_rows
    )
    plain = time.perf_counter() - started

    rows = len(frame)
    print(f"rows {rows}, suite passed: {report.success} (pandas checks: {plain_ok})")
    print(f"great expectations  {ours:.2f} s  {rows / ours:,.0f} rows/s")
    print(f"plain pandas        {plain:.3f} s  {rows / plain:,.0f} rows/s")
    print(f"ratio: GX takes {ours / plain:.0f}x the plain pandas time; target < 10 s")


if __name__ == "__main__":
    main()

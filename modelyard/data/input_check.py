"""Checking a table of texts before any machinery starts: the columns are there, and every text
cell holds text. The problems are named the way the file numbers its rows, so a person can open
it and find them:

- CSV/TSV: the line the record starts on (the header is line 1);
- JSON Lines: the line;
- Parquet, a SQL table: the row, from 1.

Pure pandas and the standard library: the CLI calls it before importing Prefect, torch or MLflow.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from modelyard.config import DataParams
from modelyard.data.records import Dialect, Reading, reading_of, record_lines, without_reading

# How many row numbers a message lists before it says "and N more".
SHOWN_ROWS = 20
_DELIMITED = {".csv": ",", ".tsv": "\t"}
_LINES = {".jsonl", ".ndjson"}


class InputError(ValueError):
    """Input that cannot be used as it is; the message names the file, columns and rows."""


@dataclass(frozen=True)
class BadCells:
    """Positions (0-based, in the frame) of the cells of `column` that hold no usable text."""

    column: str
    empty: tuple[int, ...] = ()  # missing, empty or only whitespace
    non_text: tuple[int, ...] = ()  # a number, a list, a mapping… (Parquet, JSON Lines)

    @property
    def positions(self) -> list[int]:
        return sorted({*self.empty, *self.non_text})

    def __bool__(self) -> bool:
        return bool(self.empty or self.non_text)


@dataclass(frozen=True)
class Numbering:
    """How a file numbers its rows: `unit` ('line' or 'row') and the number of each frame row."""

    unit: str
    numbers: tuple[int, ...]

    def of(self, positions: Sequence[int]) -> list[int]:
        return [self.numbers[p] for p in positions]


def bad_text_cells(frame: pd.DataFrame, column: str) -> BadCells:
    """The cells of `column` that are missing, blank, or not text at all."""
    empty, non_text = [], []
    for position, value in enumerate(frame[column].tolist()):
        if isinstance(value, str):
            if not value.strip():
                empty.append(position)
        elif value is None or value is pd.NA or (isinstance(value, float) and value != value):
            empty.append(position)  # a missing cell reads as None, NA or NaN
        else:
            non_text.append(position)
    return BadCells(column, tuple(empty), tuple(non_text))


def missing_columns(frame: pd.DataFrame, wanted: Sequence[str]) -> list[str]:
    return [column for column in wanted if column not in frame.columns]


def numbering(path: Path | None, rows: int, reading: Reading | None = None) -> Numbering:
    """The file's own numbers for `rows` frame rows read from `path` (None: a table), read
    the way `reading` says the frame was read (else as UTF-8 with the suffix's delimiter)."""
    plain = Numbering("row", tuple(range(1, rows + 1)))
    if path is None:
        return plain
    if reading is not None:
        starts = _lines_as_read(path, reading)
        return Numbering("line", tuple(starts)) if len(starts) == rows else plain
    suffix = path.suffix.lower()
    try:
        if suffix in _DELIMITED:
            starts = _record_lines(path, _DELIMITED[suffix])
        elif suffix in _LINES:
            with path.open(encoding="utf-8-sig", errors="replace") as handle:
                starts = [number for number, line in enumerate(handle, 1) if line.strip()]
        else:
            return plain
    except (OSError, csv.Error):
        return plain
    # Should the two parsers ever disagree, plain row numbers are still true.
    return Numbering("line", tuple(starts)) if len(starts) == rows else plain


def _lines_as_read(path: Path, reading: Reading) -> list[int]:
    """The line each row starts on, the file decoded and split as it was when read."""
    text = path.read_bytes().decode(reading.codec, errors="replace").removeprefix("\ufeff")
    if reading.delimiter is None or reading.quoting is None:  # JSON Lines
        return [number for number, line in enumerate(text.splitlines(), 1) if line.strip()]
    return record_lines(text, Dialect(reading.delimiter, reading.quoting))


def refuse_unread_records(frame: pd.DataFrame, where: str) -> None:
    """InputError when a record of the file `frame` was read from did not become exactly one
    row (ragged, merged or altered by quotes), naming the lines and the fix."""
    reading = reading_of(frame)
    refusal = None if reading is None else reading.refusal(where)
    if refusal is not None:
        raise InputError(refusal)


def _record_lines(path: Path, delimiter: str) -> list[int]:
    """The line each data record starts on (quoted cells may span lines; blank lines skipped,
    as pandas skips them)."""
    starts = []
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        first, header = 1, True
        for record in reader:
            if record:  # an empty line reads as [], a line holding only "" as ['']
                if header:
                    header = False
                else:
                    starts.append(first)
            first = reader.line_num + 1
    return starts


def listed(unit: str, numbers: Sequence[int]) -> str:
    """'line 4' / 'lines 4, 9 and 12' / 'lines 4, 9, … and 480 more'."""
    shown = ", ".join(str(n) for n in numbers[:SHOWN_ROWS])
    plural = unit if len(numbers) == 1 else f"{unit}s"
    more = len(numbers) - SHOWN_ROWS
    return f"{plural} {shown}" + (f" and {more} more" if more > 0 else "")


def describe(where: str, bad: BadCells, rows: Numbering) -> str:
    """One sentence per kind of bad cell, naming the column and the rows."""
    parts = []
    if bad.empty:
        count = len(bad.empty)
        parts.append(
            f"{count} row{'s' if count > 1 else ''} with no text in column "
            f"{bad.column!r} (empty or blank): {listed(rows.unit, rows.of(bad.empty))}"
        )
    if bad.non_text:
        count = len(bad.non_text)
        parts.append(
            f"{count} row{'s' if count > 1 else ''} whose {bad.column!r} is not text "
            f"(a number or another value): {listed(rows.unit, rows.of(bad.non_text))}"
        )
    return f"{where}: " + "; ".join(parts)


def column_problem(where: str, frame: pd.DataFrame, missing: Sequence[str], hint: str) -> str:
    from modelyard.data.dataset import delimiter_hint

    names = " and ".join(repr(column) for column in missing)
    return (
        f"{where} has no column{'s' if len(missing) > 1 else ''} {names} (columns: "
        f"{list(frame.columns)}){delimiter_hint(frame)}{hint}"
    )


@dataclass(frozen=True)
class Screened:
    """The rows to use, and the file's numbers of the rows left out."""

    frame: pd.DataFrame
    skipped: list[int]
    unit: str


def screen_texts(
    frame: pd.DataFrame,
    column: str,
    where: str,
    path: Path | None,
    skip_invalid: bool,
    column_hint: str = "",
    cells_hint: str = "",
) -> Screened:
    """Refuse (InputError) a frame without `column` or with a cell of it that holds no text;
    with `skip_invalid`, leave those rows out instead and say which they were. The hints end
    the messages (what the person can do about it)."""
    refuse_unread_records(frame, where)
    reading = reading_of(frame)
    frame = without_reading(frame)  # nothing written from the rows carries the reading
    missing = missing_columns(frame, [column])
    if missing:
        raise InputError(column_problem(where, frame, missing, column_hint))
    bad = bad_text_cells(frame, column)
    if not bad:
        return Screened(frame, [], "row")
    rows = numbering(path, len(frame), reading)
    if not skip_invalid:
        raise InputError(describe(where, bad, rows) + cells_hint)
    keep = [True] * len(frame)
    for position in bad.positions:
        keep[position] = False
    return Screened(frame[keep].reset_index(drop=True), rows.of(bad.positions), rows.unit)


def check_training_frame(
    frame: pd.DataFrame, data: DataParams, where: str, path: Path | None
) -> None:
    """The part of the data gate that needs no Great Expectations and no model: both columns
    there, every text cell text, every label cell filled, every record of the file read as one
    row. InputError naming the rows, if not."""
    refuse_unread_records(frame, where)
    missing = missing_columns(frame, [data.text_column, data.label_column])
    if missing:
        raise InputError(
            column_problem(
                where,
                frame,
                missing,
                "; data.text_column and data.label_column in params.yaml name them",
            )
        )
    bad = bad_text_cells(frame, data.text_column)
    unlabelled = bad_text_cells(frame, data.label_column).empty  # integer labels are fine
    if not bad and not unlabelled:
        return
    rows = numbering(path, len(frame), reading_of(frame))
    problems = [describe(where, bad, rows)] if bad else []
    if unlabelled:
        count = len(unlabelled)
        problems.append(
            f"{where}: {count} row{'s' if count > 1 else ''} with no label in "
            f"column {data.label_column!r}: {listed(rows.unit, rows.of(unlabelled))}"
        )
    raise InputError("\n".join(problems))

"""Accounting for every record of a text data file, so that no row is ever lost in silence.

pandas parses the file; this module reads the same decoded text again, the way its format is
defined, and finds where a record did not become exactly one row:

- **ragged records**: more or fewer fields than the header (pandas drops a record with too
  many fields and fills a short one with missing values);
- **records damaged by quotes** (RFC 4180 quoting only): a quote that closes a field and is
  followed by more text, and — when the quoting was chosen from the suffix — a quoted field
  that runs over several lines holding lines that look like records (the delimiter, then one of
  the configured labels): a quote meant as an ordinary character swallowed them;
- the **count**: records in the file (its lines, less the header, blank lines and line breaks
  inside quoted fields) against the rows read.

How the file is split into fields: `quoting` "none" (a TSV as defined: a tab separates fields,
quotes are ordinary characters, a field cannot hold a tab or a line break) or "rfc4180" (a
CSV: a quoted field may hold the delimiter, doubled quotes and line breaks). Lines end with
LF, CRLF or a lone CR, as pandas reads them. Line numbers are the file's own: the header is
line 1.

The result travels with the frame in `DataFrame.attrs` as plain JSON values (pandas writes
attrs into Parquet metadata), small whatever the file's size: counts and at most `SHOWN`
examples of each problem.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import pandas as pd

NONE, RFC4180 = "none", "rfc4180"
ATTRS_KEY = "modelyard.records"
SHOWN = 20  # examples kept of each problem (their lines listed)
DESCRIBED = 5  # of which a message describes this many in full
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_DELIMITER_NAMES = {"\t": "a tab", ",": "','", ";": "';'", "|": "'|'"}


class RecordError(ValueError):
    """A file that cannot be split into records at all (a quote that never closes)."""


@dataclass(frozen=True)
class Problem:
    line: int  # where the record starts
    start: str  # its first characters
    why: str

    def describe(self) -> str:
        return f"line {self.line} ({self.start!r}): {self.why}"


@dataclass(frozen=True)
class Reading:
    """How a text file was read and what of it did not become exactly one row."""

    source: str
    fmt: str  # csv, tsv or jsonl
    encoding: str  # how the bytes were decoded, in words
    codec: str = "utf-8"
    delimiter: str | None = None
    quoting: str | None = None
    quoting_from_suffix: bool = True
    header_fields: int = 0
    lines: int = 0  # physical lines, trailing empty lines left out
    records: int = 0  # data records in the file
    rows: int = 0  # rows read
    blank_lines: int = 0
    quoted_line_breaks: int = 0
    ragged: int = 0
    quote_damaged: int = 0
    ragged_examples: tuple[Problem, ...] = ()
    quote_examples: tuple[Problem, ...] = ()
    header_hint: str = field(default="")

    @property
    def unread(self) -> int:
        return self.records - self.rows

    def to_attrs(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_attrs(cls, values: dict[str, Any]) -> Reading:
        examples = {
            key: tuple(Problem(**problem) for problem in values[key])
            for key in ("ragged_examples", "quote_examples")
        }
        return cls(**{**values, **examples})

    def checks(self) -> list[tuple[str, str, int, str]]:
        """Each accounting check as (figure, title, observed, context): observed 0 passes."""
        checks = [("records_not_read", "every record in the file read as one row", self.unread)]
        if self.fmt != "jsonl":
            width = self.header_fields
            title = f"every record has the header's {width} field{'s' if width != 1 else ''}"
            checks.append(("ragged_records", title, self.ragged))
        if self.quoting == RFC4180:
            title = "no records merged or altered by quotes"
            checks.append(("quote_damaged_records", title, self.quote_damaged))
        return [(name, title, n, _context(self, name)) for name, title, n in checks]

    def refusal(self, where: str) -> str | None:
        """Why the file cannot be used as read, naming lines and the fix; None when it can."""
        failed = [
            f"{title}: observed {observed}: {context}"
            for _, title, observed, context in self.checks()
            if observed
        ]
        return f"{where}: " + "\n".join(failed) if failed else None


def _listed(examples: tuple[Problem, ...], total: int) -> str:
    """The first few problems in full, then the lines of the rest kept."""
    shown = "; ".join(problem.describe() for problem in examples[:DESCRIBED])
    more = total - min(len(examples), DESCRIBED)
    if more <= 0:
        return shown
    lines = ", ".join(str(problem.line) for problem in examples[DESCRIBED:])
    etc = ", …" if total > len(examples) else ""
    return f"{shown}; and {more} more (lines {lines}{etc})"


def _context(reading: Reading, figure: str) -> str:
    """What a check's figure means for this file: the count explained, or the lines and fix."""
    if figure == "records_not_read":
        return _count_context(reading)
    name = _DELIMITER_NAMES.get(reading.delimiter or "", repr(reading.delimiter))
    if figure == "ragged_records":
        if not reading.ragged:
            return "all have"
        fix = (
            f"with data.quoting: none a field cannot hold the delimiter ({name}) or a line "
            "break: correct these lines, or set data.quoting: rfc4180 in params.yaml if the "
            "file quotes such fields"
            if reading.quoting == NONE
            else f"a field that holds the delimiter ({name}) must be quoted: correct these "
            "lines, or name the file's delimiter with data.delimiter in params.yaml"
        )
        hint = f"; {reading.header_hint}" if reading.header_hint else ""
        return f"{_listed(reading.ragged_examples, reading.ragged)}; {fix}{hint}"
    if not reading.quote_damaged:
        return "none"
    fix = (
        "if quotes are ordinary characters in this file, set data.quoting: none in params.yaml "
        f"(a field then cannot hold the delimiter, {name}, or a line break); otherwise correct "
        "the quotes (RFC 4180: a field holding a quote is quoted, the quote written twice)"
    )
    if reading.quoting_from_suffix:
        fix += "; data.quoting: rfc4180 says quoted fields spanning lines are meant as they are"
    return f"{_listed(reading.quote_examples, reading.quote_damaged)}; {fix}"


def _count_context(reading: Reading) -> str:
    parts = [] if reading.fmt == "jsonl" else ["the header"]
    if reading.blank_lines:
        parts.append(f"{reading.blank_lines} blank line{'s' if reading.blank_lines > 1 else ''}")
    if reading.quoted_line_breaks:
        parts.append(f"{reading.quoted_line_breaks} line breaks inside quoted fields")
    within = f" ({', '.join(parts)})" if parts else ""
    text = (
        f"{reading.records} record{'s' if reading.records != 1 else ''} in {reading.lines} "
        f"lines{within}, {reading.rows} row{'s' if reading.rows != 1 else ''} read; decoded as "
        f"{reading.encoding}"
    )
    if reading.unread and (reading.ragged or reading.quote_damaged):
        return text + "; the field and quote checks name the records"
    if reading.unread:
        return text + (
            "; the parser and the count disagree: check the file's quotes, delimiter and line "
            "ends (data.quoting, data.delimiter in params.yaml)"
        )
    return text


def reading_of(frame: pd.DataFrame) -> Reading | None:
    """The reading of the file `frame` was read from, if it is that file's rows as read (a frame
    derived from it with another number of rows has none)."""
    values = frame.attrs.get(ATTRS_KEY)
    if not isinstance(values, dict):
        return None
    reading = Reading.from_attrs(values)
    return reading if reading.rows == len(frame) else None


def without_reading(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` without the reading (so that nothing written from it carries it along)."""
    if ATTRS_KEY not in frame.attrs:
        return frame
    plain = frame.copy(deep=False)
    plain.attrs.pop(ATTRS_KEY, None)
    return plain


def _lines(text: str) -> list[str]:
    lines = _LINE_BREAK.split(text)
    while lines and not lines[-1].strip():
        lines.pop()  # trailing empty lines: the end of the file, not records
    return lines


def _blank(line: str, delimiter: str) -> bool:
    """A line pandas skips: only spaces (and tabs, unless a tab is the delimiter)."""
    return not line.strip(" " if delimiter == "\t" else " \t")


def _start(line: str) -> str:
    return line[:40] + ("…" if len(line) > 40 else "")


def _fields(count: int, width: int, last: bool = False) -> str:
    cut = " (the file's last line: is the file truncated?)" if last and count < width else ""
    return f"{count} field{'s' if count != 1 else ''}, the header has {width}{cut}"


def header_hint(header: str, delimiter: str, suffix: str) -> str:
    """Name the delimiter the header seems to use when it is not `delimiter`."""
    for other, name in ((";", "';'"), ("\t", "a tab"), ("|", "'|'"), (",", "','")):
        if other != delimiter and other in header and delimiter not in header:
            return (
                f"the header {header[:60]!r} looks delimited by {name}, not by what the "
                f"suffix {suffix!r} says (data.delimiter: {other!r} in params.yaml)"
            )
    return ""


@dataclass
class _Tally:
    """What one pass over the records found; becomes a Reading."""

    header_fields: int = 0
    records: int = 0
    blank_lines: int = 0
    quoted_line_breaks: int = 0
    row_lines: list[int] = field(default_factory=list)
    ragged: list[Problem] = field(default_factory=list)
    quoted: list[Problem] = field(default_factory=list)


def _plain(lines: list[str], delimiter: str) -> _Tally:
    """Records of a file without quoting: one a line."""
    tally = _Tally(header_fields=lines[0].count(delimiter) + 1)
    for number, line in enumerate(lines[1:], start=2):
        if _blank(line, delimiter):
            tally.blank_lines += 1
            continue
        tally.records += 1
        count = line.count(delimiter) + 1
        if count != tally.header_fields:
            why = _fields(count, tally.header_fields, number == len(lines))
            tally.ragged.append(Problem(number, _start(line), why))
        tally.row_lines.append(number)  # pandas reads the header's fields of each record
    return tally


@dataclass(frozen=True)
class _Labels:
    """Where a label sits in a record and what labels look like: to recognise a record."""

    at: int | None  # the label column's position, None when the header lacks it
    values: frozenset[str]

    def record_like(self, text: str, delimiter: str, width: int) -> int:
        """Lines of `text` (a field holding line breaks) that look like records of the file."""
        if self.at is None or width < 2:
            return 0
        count = 0
        for segment in _LINE_BREAK.split(text):
            parts = segment.split(delimiter)
            if len(parts) < width:
                continue
            value = parts[-1] if self.at == width - 1 else parts[self.at]
            count += value.strip().strip('"').strip() in self.values
        return count


@dataclass(frozen=True)
class Origin:
    """The file a text came from: its name, format and how its bytes were decoded."""

    source: str
    fmt: str
    codec: str
    how: str  # why that codec, in words

    def reading(self, **counts: Any) -> Reading:
        return Reading(
            source=self.source,
            fmt=self.fmt,
            encoding=f"{self.codec} ({self.how})",
            codec=self.codec,
            **counts,
        )


@dataclass(frozen=True)
class Dialect:
    """How a delimited file splits into fields (see the module's docstring)."""

    delimiter: str
    quoting: str  # NONE or RFC4180
    from_suffix: bool = True  # chosen by the suffix (data.quoting: auto)

    @property
    def csv_quoting(self) -> Literal[0, 3]:
        """pandas' `quoting`: csv.QUOTE_NONE (3) or csv.QUOTE_MINIMAL (0)."""
        return 3 if self.quoting == NONE else 0


def _quoted(text: str, lines: list[str], dialect: Dialect, labels: _Labels | None) -> _Tally:
    """Records of an RFC 4180 file, as Python's csv module reads them with `strict` on: a quote
    closing a field must be followed by the delimiter or the line's end."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=dialect.delimiter, strict=True)
    tally = _Tally()
    try:
        tally.header_fields = len(next(reader))
    except (StopIteration, csv.Error):
        return tally  # no header: pandas says so
    end = reader.line_num
    while True:
        start = end + 1
        try:
            record = next(reader)
        except StopIteration:
            return tally
        except csv.Error as error:
            end = reader.line_num
            _damaged(tally, str(error), start, end, lines)
            continue
        end = reader.line_num
        _record(tally, record, (start, end), lines, dialect.delimiter, labels)


def _record(
    tally: _Tally,
    record: list[str],
    span: tuple[int, int],
    lines: list[str],
    delimiter: str,
    labels: _Labels | None,
) -> None:
    start, end = span
    if start > len(lines):
        return  # a trailing empty line
    if start == end and _blank(lines[start - 1], delimiter):
        tally.blank_lines += 1
        return
    width, first = tally.header_fields, _start(lines[start - 1])
    if len(record) != width:
        tally.ragged.append(Problem(start, first, _fields(len(record), width, end == len(lines))))
    tally.row_lines.append(start)  # pandas reads the header's fields of each record
    swallowed = 0
    if labels is not None and end > start:
        swallowed = sum(
            labels.record_like(value, delimiter, width)
            for value in record
            if "\n" in value or "\r" in value
        )
    if not swallowed:
        tally.records += 1
        tally.quoted_line_breaks += end - start
        return
    # Each line of it is a record of the file, merged into this one by a quote.
    tally.records += end - start + 1
    why = (
        f"a quoted field runs over lines {start}-{end} and holds {swallowed} "
        f"line{'s' if swallowed > 1 else ''} that look like records (fields, then a label)"
    )
    tally.quoted.append(Problem(start, first, why))


def _damaged(tally: _Tally, error: str, start: int, end: int, lines: list[str]) -> None:
    first = _start(lines[min(start, len(lines)) - 1]) if lines else ""
    if "unexpected end of data" in error:
        raise RecordError(
            f"EOF inside string starting at line {start} ({first!r}): is the file truncated? A "
            "quote opens a field there and never closes; if quotes are ordinary characters in "
            "this file, set data.quoting: none in params.yaml"
        )
    if "expected after" in error:
        why = (
            "text follows the closing quote of a field"
            if end == start
            else f"a quoted field opens here and closes on line {end}, followed by more text"
        )
    else:
        why = error
    # pandas reads one row of it; each line it spans would be a record without the quote.
    tally.records += end - start + 1
    tally.row_lines.append(start)
    tally.quoted.append(Problem(start, first, why))


def _tally(text: str, dialect: Dialect, labels: _Labels | None) -> tuple[_Tally, list[str]]:
    lines = _lines(text)
    if not lines:
        return _Tally(), lines
    if dialect.quoting == NONE:
        return _plain(lines, dialect.delimiter), lines
    return _quoted(text, lines, dialect, labels), lines


def _header_names(line: str, dialect: Dialect) -> list[str]:
    if dialect.quoting == NONE:
        return line.split(dialect.delimiter)
    return next(csv.reader([line], delimiter=dialect.delimiter), [])


def account(
    text: str,
    dialect: Dialect,
    origin: Origin,
    label_column: str,
    labels: tuple[str, ...],
) -> Reading:
    """The records of a delimited file's text. The Reading's `rows` is left 0 for the reader to
    fill in. RecordError for a quote that never closes."""
    header = _lines(text[:65536])[:1]
    names = _header_names(header[0], dialect) if header else []
    at = names.index(label_column) if label_column in names else None
    known = _Labels(at, frozenset(labels)) if dialect.from_suffix else None
    tally, lines = _tally(text, dialect, known)
    return origin.reading(
        delimiter=dialect.delimiter,
        quoting=dialect.quoting,
        quoting_from_suffix=dialect.from_suffix,
        header_fields=tally.header_fields,
        lines=len(lines),
        records=tally.records,
        blank_lines=tally.blank_lines,
        quoted_line_breaks=tally.quoted_line_breaks,
        ragged=len(tally.ragged),
        quote_damaged=len(tally.quoted),
        ragged_examples=tuple(tally.ragged[:SHOWN]),
        quote_examples=tuple(tally.quoted[:SHOWN]),
        header_hint=header_hint(header[0], dialect.delimiter, f".{origin.fmt}") if header else "",
    )


def record_lines(text: str, dialect: Dialect) -> list[int]:
    """The line each row pandas reads from `text` starts on."""
    return _tally(text, dialect, None)[0].row_lines


def account_lines(text: str, origin: Origin) -> Reading:
    """The records of a JSON Lines file: its non-blank lines."""
    lines = _lines(text)
    blank = sum(not line.strip() for line in lines)
    return origin.reading(
        lines=len(lines),
        records=len(lines) - blank,
        blank_lines=blank,
    )

"""Reading a labelled text file in any common format, and splitting it (stratified, grouped by
text, seeded).

Files are read with their natural types (integer labels stay integers, a text column that holds
only numbers reads as numbers) so that validation can say when a column is not what it should be;
`to_canonical` then turns the two configured columns into the strings `text` and `label`.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from modelyard.config import DataParams
from modelyard.data import records
from modelyard.data.encoding import EncodingError, decode
from modelyard.data.records import Dialect, Origin, Reading

TEXT = "text"
LABEL = "label"


class DatasetError(ValueError):
    """A dataset that cannot be read; the message names the file and the problem."""


@dataclass(frozen=True)
class Splits:
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}

    def save(self, directory: Path) -> Path:
        """One parquet file per part: what `dvc repro` caches and torchrun workers read."""
        directory.mkdir(parents=True, exist_ok=True)
        for part in PARTS:
            getattr(self, part).to_parquet(directory / f"{part}.parquet", index=False)
        return directory

    @classmethod
    def load(cls, directory: Path) -> Splits:
        return cls(*(pd.read_parquet(directory / f"{part}.parquet") for part in PARTS))


PARTS = ("train", "val", "test")


FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
SUFFIXES = tuple(FORMATS)
_MAGIC = {
    b"PAR1": "a Parquet file",
    b"\x1f\x8b": "gzip-compressed",
    b"PK\x03\x04": "a zip archive",
    b"\x89PNG": "a PNG image",
    b"%PDF": "a PDF document",
    b"SQLite format 3": "an SQLite database",
}


def sniff(head: bytes) -> str:
    """What the first bytes of a file say it is, in words: 'text' unless a known magic number."""
    for magic, kind in _MAGIC.items():
        if head.startswith(magic):
            return kind
    return "text"


def _check_format(path: Path, fmt: str) -> None:
    """Refuse a file whose bytes contradict its suffix before a parser produces nonsense from it."""
    size = path.stat().st_size
    if size == 0:
        raise DatasetError(f"{path}: the file is empty (0 bytes)")
    with path.open("rb") as handle:
        head = handle.read(64)
        handle.seek(max(0, size - 4))
        tail = handle.read(4)
    kind = sniff(head)
    if fmt == "parquet":
        if kind != "a Parquet file":
            shown = "text" if kind == "text" else kind
            raise DatasetError(f"{path}: not a Parquet file (no PAR1 magic number; it is {shown})")
        if tail != b"PAR1":
            raise DatasetError(f"{path}: truncated Parquet file (no PAR1 footer at the end)")
        return
    if kind != "text":
        raise DatasetError(f"{path}: claims to be {fmt.upper()} but is {kind}")


def read_frame(path: Path, data: DataParams | None = None) -> pd.DataFrame:
    """Read a labelled text file with its natural column types, every record accounted for.

    `data` (default: the defaults of `DataParams`) says how a text file is decoded
    (`data.encoding`, see `modelyard.data.encoding`) and split into fields (`data.delimiter`,
    `data.quoting`). What did not become exactly one row — ragged records, records merged or
    altered by quotes, a count of records that differs from the rows — is not raised here: it
    travels with the frame (`records.reading_of`) for the data gate's expectations and the input
    checks to refuse, naming the lines. Undecodable bytes of a UTF-8 file become U+FFFD, for the
    gate to count rather than stop at the first one.
    """
    data = data or DataParams()
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DatasetError(
            f"{path}: unsupported file type {path.suffix!r} (expected one of {', '.join(SUFFIXES)})"
        )
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    _check_format(path, fmt)
    if fmt == "parquet":
        frame = _parse(path, fmt, lambda: pd.read_parquet(path))
    else:
        try:
            decoded = decode(path.read_bytes(), data.encoding, str(path))
        except EncodingError as error:
            raise DatasetError(str(error)) from None
        origin = Origin(str(path), fmt, decoded.encoding, decoded.how)
        if fmt == "jsonl":
            frame, reading = _read_json_lines(path, decoded.text, origin)
        else:
            frame, reading = _read_delimited(path, decoded.text, origin, data)
        frame.attrs[records.ATTRS_KEY] = reading.to_attrs()
    frame.columns = [str(column) for column in frame.columns]
    return frame


def read_whole(path: Path, data: DataParams | None = None) -> pd.DataFrame:
    """`read_frame`, refusing (DatasetError) a file of which a record did not become exactly
    one row: for readers that run no data gate on what they read."""
    frame = read_frame(path, data)
    reading = records.reading_of(frame)
    refusal = None if reading is None else reading.refusal(str(path))
    if refusal is not None:
        raise DatasetError(refusal)
    return records.without_reading(frame)


def dialect_of(fmt: str, data: DataParams) -> Dialect:
    """How a .csv or .tsv file splits into fields under `data.delimiter` and `data.quoting`."""
    delimiter = data.delimiter or ("\t" if fmt == "tsv" else ",")
    if data.quoting == "auto":
        return Dialect(delimiter, records.NONE if fmt == "tsv" else records.RFC4180)
    return Dialect(delimiter, data.quoting, from_suffix=False)


def _read_delimited(
    path: Path, text: str, origin: Origin, data: DataParams
) -> tuple[pd.DataFrame, Reading]:
    dialect = dialect_of(origin.fmt, data)
    try:
        reading = records.account(text, dialect, origin, data.label_column, data.labels)
    except records.RecordError as error:
        raise DatasetError(f"{path}: cannot be parsed as {origin.fmt}: {error}") from None

    def parse() -> pd.DataFrame:
        # Only an empty cell is missing: "NA", "null" or "None" are texts like any other. The
        # header's fields of every record, whatever its width: one record is one row, and the
        # reading names the ragged ones (pandas would otherwise skip a wide record, or take the
        # first column as the index when every record has one field more than the header).
        return pd.read_csv(
            io.StringIO(text),
            sep=dialect.delimiter,
            quoting=dialect.csv_quoting,
            keep_default_na=False,
            na_values=[""],
            index_col=False,
            usecols=range(reading.header_fields) if reading.header_fields else None,
        )

    frame = _parse(path, origin.fmt, parse, text)
    return frame, replace(reading, rows=len(frame))


def _read_json_lines(path: Path, text: str, origin: Origin) -> tuple[pd.DataFrame, Reading]:
    if not text.lstrip().startswith("{"):
        first = text.lstrip().splitlines()[0][:40] if text.strip() else text[:40]
        raise DatasetError(
            f"{path}: not JSON Lines (each line must be a JSON object; the file "
            f"starts with {first!r})"
        )
    frame = _parse(
        path, "jsonl", lambda: pd.read_json(io.StringIO(text), lines=True, dtype=False), text
    )
    return frame, replace(records.account_lines(text, origin), rows=len(frame))


def _parse(path: Path, fmt: str, parse: Callable[[], pd.DataFrame], text: str = "") -> pd.DataFrame:
    """Run a parser, turning what it raises into a DatasetError naming the file."""
    try:
        return parse()
    except pd.errors.EmptyDataError:
        raise DatasetError(f"{path}: the file has no header and no rows") from None
    except pd.errors.ParserError as error:
        detail = str(error).strip()
        header = text.split("\n", 1)[0].strip()
        hint = records.header_hint(header, "\t" if fmt == "tsv" else ",", path.suffix)
        hint = " (is the file truncated?)" if "EOF" in detail else (f"; {hint}" if hint else "")
        raise DatasetError(f"{path}: cannot be parsed as {fmt}: {detail}{hint}") from None
    except (UnicodeDecodeError, ValueError, OSError) as error:
        raise DatasetError(f"{path}: cannot be parsed as {fmt}: {error}") from None


def delimiter_hint(frame: pd.DataFrame) -> str:
    """When a whole header landed in one column, the delimiter is most likely wrong."""
    if len(frame.columns) != 1:
        return ""
    header = str(frame.columns[0])
    for delimiter, name in ((";", "';'"), ("\t", "a tab"), ("|", "'|'"), (",", "','")):
        if delimiter in header:
            return (
                f"; the header is one column {header!r}: the file looks delimited by {name}, "
                "not by what its suffix says"
            )
    return ""


def _as_text(column: pd.Series) -> pd.Series:
    return column.map(lambda v: None if pd.isna(v) else str(v)).astype(object)


def to_canonical(frame: pd.DataFrame, params: DataParams) -> pd.DataFrame:
    """The configured text/label columns as the strings `text` and `label` (label 1 → "1").
    Missing columns are left out, for validation to report with every other problem."""
    renamed = frame.rename(columns={params.text_column: TEXT, params.label_column: LABEL})
    return pd.DataFrame(
        {
            column: _as_text(renamed[column]).to_numpy()
            for column in (TEXT, LABEL)
            if column in renamed.columns
        }
    )


def text_key(texts: pd.Series) -> pd.Series:
    """Texts as compared for duplicates and leakage: whitespace collapsed, case folded."""
    # A comprehension: several times faster than the equivalent chain of pandas .str calls.
    keys = [" ".join(str(text).split()).casefold() for text in texts.to_numpy()]
    return pd.Series(keys, index=texts.index, dtype=object)


def _grouped_split(
    frame: pd.DataFrame, size: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split by distinct text, stratified on label: rows with the same text always land on the
    same side, so a duplicated text can never be in both training and test data."""
    from sklearn.model_selection import train_test_split

    keys = text_key(frame[TEXT])
    groups = pd.Series(frame[LABEL].to_numpy(), index=keys.to_numpy()).groupby(level=0).first()
    _, held_out = train_test_split(
        groups.index.to_numpy(), test_size=size, stratify=groups.to_numpy(), random_state=seed
    )
    mask = keys.isin(set(held_out)).to_numpy()
    # Shuffled like sklearn's own split: file order (often sorted by label or source) must not
    # leak into anything downstream that depends on row order.
    return (
        frame[~mask].sample(frac=1.0, random_state=seed),
        frame[mask].sample(frac=1.0, random_state=seed),
    )


def split(frame: pd.DataFrame, params: DataParams, test: pd.DataFrame | None = None) -> Splits:
    """Train/val/test, the same for the same frame and seed. With a separate `test` frame the
    file is cut into train and val only."""
    if test is None:
        rest, test = _grouped_split(frame, params.test_size, params.seed)
        val_share = params.val_size / (1.0 - params.test_size)
    else:
        rest, val_share = frame, params.val_size
    train, val = _grouped_split(rest, val_share, params.seed)
    return Splits(*(part.reset_index(drop=True) for part in (train, val, test)))

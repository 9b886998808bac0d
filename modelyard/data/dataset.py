"""Reading a labelled text file in any common format, and splitting it (stratified, grouped by
text, seeded).

Files are read with their natural types (integer labels stay integers, a text column that holds
only numbers reads as numbers) so that validation can say when a column is not what it should be;
`to_canonical` then turns the two configured columns into the strings `text` and `label`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from modelyard.config import DataParams

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
    if fmt == "jsonl" and not head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        first = head.splitlines()[0][:40] if head.splitlines() else head
        raise DatasetError(
            f"{path}: not JSON Lines (each line must be a JSON object; the file "
            f"starts with {first!r})"
        )


def read_frame(path: Path) -> pd.DataFrame:
    """Read a labelled text file with its natural column types.

    Undecodable bytes become U+FFFD instead of failing the read, so that validation can count
    them (an expectation with a threshold) rather than stop at the first one.
    """
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DatasetError(
            f"{path}: unsupported file type {path.suffix!r} (expected one of {', '.join(SUFFIXES)})"
        )
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    _check_format(path, fmt)
    try:
        if fmt in {"csv", "tsv"}:
            # Only an empty cell is missing: "NA", "null" or "None" are texts like any other.
            frame = pd.read_csv(
                path,
                sep="\t" if fmt == "tsv" else ",",
                keep_default_na=False,
                na_values=[""],
                encoding="utf-8-sig",
                encoding_errors="replace",
            )
        elif fmt == "parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_json(path, lines=True, dtype=False, encoding_errors="replace")
    except pd.errors.EmptyDataError:
        raise DatasetError(f"{path}: the file has no header and no rows") from None
    except pd.errors.ParserError as error:
        detail = str(error).strip()
        hint = " (is the file truncated?)" if "EOF" in detail else _header_hint(path, fmt)
        raise DatasetError(f"{path}: cannot be parsed as {fmt}: {detail}{hint}") from None
    except (UnicodeDecodeError, ValueError, OSError) as error:
        raise DatasetError(f"{path}: cannot be parsed as {fmt}: {error}") from None
    frame.columns = [str(column) for column in frame.columns]
    return frame


def _header_hint(path: Path, fmt: str) -> str:
    """Name the delimiter the header seems to use when it is not the one the suffix implies."""
    with path.open("rb") as handle:
        header = handle.readline().decode("utf-8", "replace").strip()
    expected = "\t" if fmt == "tsv" else ","
    for delimiter, name in ((";", "';'"), ("\t", "a tab"), ("|", "'|'"), (",", "','")):
        if delimiter != expected and delimiter in header and expected not in header:
            return (
                f"; the header {header[:60]!r} looks delimited by {name}, not by what the "
                f"suffix {path.suffix!r} says"
            )
    return ""


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

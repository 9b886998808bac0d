"""Batch prediction: a file (CSV, TSV, Parquet, JSON Lines) or a SQL table of the platform
database in, the same rows with label, class probabilities and the model version out.

Resumable: rows are scored in chunks, each written as a Parquet part next to the output
(`<output>.parts/`) the moment it is done; a re-run after a crash skips the parts already there.
The parts' manifest pins the model version, so a resumed run finishes with the version it
started with even if the alias has moved meanwhile: one output, one version.

Nothing stored is replaced unless asked: the output is never one of the platform's own tables,
and an existing table or file is overwritten only with `replace` (atomically).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pandas is imported where rows are handled: refusing an output stays fast
    import pandas as pd

    from modelyard.config import DataParams
    from modelyard.data.input_check import Screened

SQL = "sql:"
OUTPUT_SUFFIXES = (".csv", ".tsv", ".parquet", ".jsonl")


class BatchError(ValueError):
    pass


@dataclass(frozen=True)
class Manifest:
    input: str
    input_digest: str
    rows: int
    text_column: str
    chunk_rows: int
    model: str
    version: str

    @property
    def chunks(self) -> int:
        return -(-self.rows // self.chunk_rows)


def pinned_version(
    previous: Manifest | None, digest: str, chunk_rows: int, text_column: str, version: str | None
) -> str | None:
    """The version an interrupted run pinned, when this run is the same work again (same input
    bytes, chunking and column, and no other version asked for): it resumes with that version
    even if the alias has moved since. None: this run starts afresh."""
    if (
        previous is not None
        and previous.input_digest == digest
        and previous.chunk_rows == chunk_rows
        and previous.text_column == text_column
        and version in (None, previous.version)
    ):
        return previous.version
    return None


REPLACE_HINT = (
    "pass --replace (the batch-predict flow's replace=True) to overwrite it, "
    "atomically once every row is scored, or choose another output"
)
# Table names the batch writer never takes: the databases' own, and its temporary tables.
TEMPORARY_PREFIX = "modelyard_partial_"
RESERVED_PREFIXES = ("sqlite_", "pg_", TEMPORARY_PREFIX)


def _table_refusal(table: str) -> str | None:
    """Why `table` can never be an output, whatever the flags (None: it can)."""
    from modelyard.store.models import platform_tables

    if not table.replace("_", "").isalnum():
        return f"output table {table!r}: use letters, digits and _"
    platform = platform_tables()
    if table.lower() in platform:
        return (
            f"output table {table!r} is one of the platform's own tables "
            f"({', '.join(sorted(platform))}): batch output never writes there, not even "
            f"with --replace; choose another table, e.g. sql:{table}_scored"
        )
    if table.lower().startswith(RESERVED_PREFIXES):
        return (
            f"output table {table!r}: names starting with {', '.join(RESERVED_PREFIXES)} are "
            "reserved; choose another table"
        )
    return None


def _exists_refusal(spec: str) -> str:
    if spec.startswith(SQL):
        return (
            f"output table {spec[len(SQL) :]!r} already exists in the platform database: "
            + REPLACE_HINT
        )
    return f"output {spec} already exists: {REPLACE_HINT}"


def _table_exists(database_url: str, table: str) -> bool:
    from sqlalchemy import create_engine, inspect
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError

    url = make_url(database_url)
    if (
        url.get_backend_name() == "sqlite"
        and url.database not in (None, "", ":memory:")
        and not Path(url.database).exists()
    ):
        return False  # no database file yet (and connecting would create one)
    engine = create_engine(url)
    try:
        return bool(inspect(engine).has_table(table))
    except OperationalError as error:
        raise BatchError(
            f"output table {table!r}: cannot reach the platform database "
            f"{url.render_as_string(hide_password=True)} ({error.orig})"
        ) from None
    finally:
        engine.dispose()


def check_output(spec: str, database_url: str, replace: bool = False) -> None:
    """Refuse, before any work is done, an output we could not or must not write: a bad name or
    suffix, a table of the platform itself, or (unless `replace`) a table or file that exists."""
    if spec.startswith(SQL):
        refusal = _table_refusal(spec[len(SQL) :])
        if refusal:
            raise BatchError(refusal)
        exists = _table_exists(database_url, spec[len(SQL) :])
    else:
        path = Path(spec)
        if path.suffix.lower() not in OUTPUT_SUFFIXES:
            raise BatchError(
                f"output {spec}: the suffix must be one of {', '.join(OUTPUT_SUFFIXES)}"
            )
        if path.is_dir():
            raise BatchError(f"output {spec} is a directory; name a file")
        exists = path.exists()
    if exists and not replace:
        raise BatchError(_exists_refusal(spec))


def read_input(
    spec: str, database_url: str, data: DataParams | None = None
) -> tuple[pd.DataFrame, str]:
    """The rows and a digest of them (the file's md5, or a hash of the table's content); a
    text file decoded and split as `data` says (data.encoding, data.quoting, data.delimiter)."""
    import pandas as pd

    if spec.startswith(SQL):
        from sqlalchemy import create_engine

        table = spec[len(SQL) :]
        engine = create_engine(database_url)
        try:
            frame = pd.read_sql_table(table, engine)
        except ValueError as error:
            raise BatchError(f"input table {table!r} is not in {database_url}: {error}") from None
        finally:
            engine.dispose()
        digest = hashlib.md5(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
        return frame, digest.hexdigest()
    from modelyard.data.dataset import read_frame

    path = Path(spec)
    if not path.is_file():
        raise BatchError(f"input {spec} does not exist")
    return read_frame(path, data), hashlib.md5(path.read_bytes()).hexdigest()


def parts_dir(output: str, home: Path) -> Path:
    if output.startswith(SQL):
        return home / ".modelyard" / "batch" / f"{output[len(SQL) :]}.parts"
    return Path(f"{output}.parts")


def load_manifest(parts: Path) -> Manifest | None:
    path = parts / "manifest.json"
    if not path.is_file():
        return None
    return Manifest(**json.loads(path.read_text()))


def start(parts: Path, manifest: Manifest) -> int:
    """Prepare `parts` for `manifest`: parts of the same work are kept (how many), anything else
    there is cleared."""
    previous = load_manifest(parts)
    same = previous is not None and (
        previous.input_digest,
        previous.rows,
        previous.text_column,
        previous.chunk_rows,
    ) == (manifest.input_digest, manifest.rows, manifest.text_column, manifest.chunk_rows)
    if not same and parts.exists():
        shutil.rmtree(parts)
    parts.mkdir(parents=True, exist_ok=True)
    (parts / "manifest.json").write_text(json.dumps(asdict(manifest), indent=1))
    return len(list(parts.glob("part-*.parquet"))) if same else 0


def score_chunks(
    classifier: Any,
    frame: pd.DataFrame,
    manifest: Manifest,
    parts: Path,
    batch_size: int = 64,
    on_chunk: Callable[[int, int, bool], None] | None = None,
) -> int:
    """Score every chunk not already in `parts`; how many were done already. `on_chunk(index,
    rows, skipped)` after each chunk (progress bars, and tests that crash a run mid-way)."""
    if manifest.text_column not in frame.columns:
        raise BatchError(
            f"input has no column {manifest.text_column!r} (columns: "
            f"{list(frame.columns)}); choose one with --text-column"
        )
    labels = list(classifier.labels)
    skipped = 0
    for index, begin in enumerate(range(0, len(frame), manifest.chunk_rows)):
        part = parts / f"part-{index:06d}.parquet"
        chunk = frame.iloc[begin : begin + manifest.chunk_rows]
        if part.is_file():
            skipped += 1
            if on_chunk:
                on_chunk(index, len(chunk), True)
            continue
        texts = chunk[manifest.text_column].astype(str).tolist()
        probabilities = classifier.predict_proba(texts, batch_size)
        out = chunk.reset_index(drop=True).copy()
        out["label"] = [labels[i] for i in probabilities.argmax(axis=1)]
        for j, label in enumerate(labels):
            out[f"prob_{label}"] = probabilities[:, j].astype(float)
        out["model_name"], out["model_version"] = manifest.model, manifest.version
        partial = part.with_suffix(".partial")
        out.to_parquet(partial, index=False)
        partial.replace(part)  # a part exists whole or not at all
        if on_chunk:
            on_chunk(index, len(chunk), False)
    return skipped


def finish(parts: Path, output: str, database_url: str, replace: bool = False) -> int:
    """Join the parts into `output` and remove them; the number of rows written. The output
    appears whole or not at all: a file is written beside it and renamed, a table is written
    under a temporary name and swapped in, in one transaction. An output that appeared since
    `check_output` is replaced only with `replace`; if refused, the parts stay for a re-run."""
    import pandas as pd

    frame = pd.concat(
        [pd.read_parquet(p) for p in sorted(parts.glob("part-*.parquet"))], ignore_index=True
    )
    if output.startswith(SQL):
        _write_table(frame, output[len(SQL) :], database_url, replace)
    else:
        _write_file(frame, Path(output), replace)
    shutil.rmtree(parts)
    return len(frame)


def _write_table(frame: pd.DataFrame, table: str, database_url: str, replace: bool) -> None:
    import uuid

    from sqlalchemy import inspect

    from modelyard.store.db import transactional_engine

    refusal = _table_refusal(table)
    if refusal:  # checked up front too; this guards every other caller
        raise BatchError(refusal)
    temporary = f"{TEMPORARY_PREFIX}{uuid.uuid4().hex[:16]}"
    engine = transactional_engine(database_url)
    try:
        with engine.begin() as connection:
            exists = inspect(connection).has_table(table)
            if exists and not replace:
                raise BatchError(_exists_refusal(f"{SQL}{table}"))
            frame.to_sql(temporary, connection, if_exists="fail", index=False)
            quote = connection.dialect.identifier_preparer.quote
            if exists:
                connection.exec_driver_sql(f"DROP TABLE {quote(table)}")
            connection.exec_driver_sql(f"ALTER TABLE {quote(temporary)} RENAME TO {quote(table)}")
    finally:
        engine.dispose()


def _write_file(frame: pd.DataFrame, path: Path, replace: bool) -> None:
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    os.close(handle)
    partial = Path(name)
    try:
        suffix = path.suffix.lower()
        if suffix == ".parquet":
            frame.to_parquet(partial, index=False)
        elif suffix == ".jsonl":
            frame.to_json(partial, orient="records", lines=True, force_ascii=False)
        else:
            frame.to_csv(partial, index=False, sep="\t" if suffix == ".tsv" else ",")
        if replace:
            partial.replace(path)
            return
        try:
            os.link(partial, path)  # never clobbers: fails if `path` appeared meanwhile
        except FileExistsError:
            raise BatchError(_exists_refusal(str(path))) from None
        except OSError:  # a file system without hard links: the small window is accepted
            if path.exists():
                raise BatchError(_exists_refusal(str(path))) from None
            partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


COLUMN_HINT = "; choose one with --text-column"
CELLS_HINT = (
    "\nFill them in, or pass --skip-invalid to score the other rows without them (the "
    "output then has no row for them)."
)


def file_of(spec: str) -> Path | None:
    """The input's file, None for a SQL table."""
    return None if spec.startswith(SQL) else Path(spec)


def screen_input(frame: pd.DataFrame, spec: str, column: str, skip_invalid: bool) -> Screened:
    """The rows to score: BatchError naming the column or the rows when a text is missing, empty
    or not text (or, with `skip_invalid`, those rows left out and listed) or when none is left."""
    from modelyard.data.input_check import InputError, screen_texts

    try:
        screened = screen_texts(
            frame, column, spec, file_of(spec), skip_invalid, COLUMN_HINT, CELLS_HINT
        )
    except InputError as error:
        raise BatchError(str(error)) from None
    if screened.frame.empty:
        left = " left once the rows without text are skipped" if screened.skipped else ""
        raise BatchError(f"{spec} has no rows{left}")
    return screened


def check_input(
    spec: str, database_url: str, column: str, skip_invalid: bool, data: DataParams | None = None
) -> Screened:
    """Everything about the input that can be known before Prefect starts or a model loads: it
    exists and can be read, its format and encoding, every record one row, its text column and
    every text cell. BatchError, naming the problem, otherwise."""
    import os

    from modelyard.data.dataset import DatasetError

    path = file_of(spec)
    if path is not None and path.is_file() and not os.access(path, os.R_OK):
        raise BatchError(f"input {spec} cannot be read (permission denied)")
    try:
        frame, _ = read_input(spec, database_url, data)
    except DatasetError as error:
        raise BatchError(str(error)) from None
    return screen_input(frame, spec, column, skip_invalid)

"""Batch prediction: a file (CSV, TSV, Parquet, JSON Lines) or a SQL table of the platform
database in, the same rows with label, class probabilities and the model version out.

Resumable: rows are scored in chunks, each written as a Parquet part next to the output
(`<output>.parts/`) the moment it is done; a re-run after a crash skips the parts already there.
The parts' manifest pins the model version, so a resumed run finishes with the version it
started with even if the alias has moved meanwhile: one output, one version.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

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


def check_output(spec: str) -> None:
    """Refuse an output we could not write before any work is done."""
    if spec.startswith(SQL):
        if not spec[len(SQL):].replace("_", "").isalnum():
            raise BatchError(f"output table {spec[len(SQL):]!r}: use letters, digits and _")
        return
    if Path(spec).suffix.lower() not in OUTPUT_SUFFIXES:
        raise BatchError(f"output {spec}: the suffix must be one of {', '.join(OUTPUT_SUFFIXES)}")


def read_input(spec: str, database_url: str) -> tuple[pd.DataFrame, str]:
    """The rows and a digest of them (the file's md5, or a hash of the table's content)."""
    if spec.startswith(SQL):
        from sqlalchemy import create_engine

        table = spec[len(SQL):]
        engine = create_engine(database_url)
        try:
            frame = pd.read_sql_table(table, engine)
        except ValueError as error:
            raise BatchError(f"input table {table!r} is not in {database_url}: {error}") from None
        finally:
            engine.dispose()
        digest = hashlib.md5(pd.util.hash_pandas_object(frame, index=False).values.tobytes())
        return frame, digest.hexdigest()
    from modelyard.data.dataset import read_frame

    path = Path(spec)
    if not path.is_file():
        raise BatchError(f"input {spec} does not exist")
    return read_frame(path), hashlib.md5(path.read_bytes()).hexdigest()


def parts_dir(output: str, home: Path) -> Path:
    if output.startswith(SQL):
        return home / ".modelyard" / "batch" / f"{output[len(SQL):]}.parts"
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
    same = previous is not None and (previous.input_digest, previous.rows, previous.text_column,
                                     previous.chunk_rows) == (manifest.input_digest, manifest.rows,
                                                              manifest.text_column,
                                                              manifest.chunk_rows)
    if not same and parts.exists():
        shutil.rmtree(parts)
    parts.mkdir(parents=True, exist_ok=True)
    (parts / "manifest.json").write_text(json.dumps(asdict(manifest), indent=1))
    return len(list(parts.glob("part-*.parquet"))) if same else 0


def score_chunks(
    classifier: Any, frame: pd.DataFrame, manifest: Manifest, parts: Path,
    batch_size: int = 64, on_chunk: Callable[[int, int, bool], None] | None = None,
) -> int:
    """Score every chunk not already in `parts`; how many were done already. `on_chunk(index,
    rows, skipped)` after each chunk (progress bars, and tests that crash a run mid-way)."""
    if manifest.text_column not in frame.columns:
        raise BatchError(f"input has no column {manifest.text_column!r} (columns: "
                         f"{list(frame.columns)}); choose one with --text-column")
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


def finish(parts: Path, output: str, database_url: str) -> int:
    """Join the parts into `output` (atomically for files, in one transaction for a table), then
    remove them. The number of rows written."""
    frame = pd.concat([pd.read_parquet(p) for p in sorted(parts.glob("part-*.parquet"))],
                      ignore_index=True)
    if output.startswith(SQL):
        from sqlalchemy import create_engine

        engine = create_engine(database_url)
        try:
            with engine.begin() as connection:
                frame.to_sql(output[len(SQL):], connection, if_exists="replace", index=False)
        finally:
            engine.dispose()
    else:
        path = Path(output)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        suffix = path.suffix.lower()
        if suffix == ".parquet":
            frame.to_parquet(partial, index=False)
        elif suffix == ".jsonl":
            frame.to_json(partial, orient="records", lines=True, force_ascii=False)
        else:
            frame.to_csv(partial, index=False, sep="\t" if suffix == ".tsv" else ",")
        partial.replace(path)
    shutil.rmtree(parts)
    return len(frame)

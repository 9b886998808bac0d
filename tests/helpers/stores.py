"""Copies of a MODELYARD_HOME: the state a costly fixture built, handed to each test that
changes it, so that no test sees what another one did (whichever order they run in)."""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def copy_home(source: Path, target: Path) -> Path:
    """`source` (its MLflow store and artifacts, platform database, run state) copied to
    `target`, the absolute paths MLflow's SQLite store keeps (artifact locations, model
    sources) pointed at the copy. Returns `target`."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.locks"))
    for old in {str(source.resolve()), str(source.absolute())}:  # as written, either way
        _replace_in_text_columns(target / "mlflow.db", old, str(target.resolve()))
    return target


def _replace_in_text_columns(database: Path, old: str, new: str) -> None:
    connection = sqlite3.connect(database)
    try:
        tables = [
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        for table in tables:
            for _, column, kind, *_ in connection.execute(f'PRAGMA table_info("{table}")'):
                if any(word in kind.upper() for word in ("CHAR", "TEXT", "CLOB")):
                    connection.execute(
                        f'UPDATE "{table}" SET "{column}" = replace("{column}", ?, ?) '
                        f'WHERE instr("{column}", ?) > 0',
                        (old, new, old),
                    )
        connection.commit()
    finally:
        connection.close()


@dataclass(frozen=True)
class TrainedHome:
    """A MODELYARD_HOME where one retrain ran: the model in production, the params it was
    trained with, and the retrain's summary."""

    home: Path
    params: Path
    summary: Any

"""The local PostgreSQL server of the tests: 127.0.0.1:5432, user `postgres`.

Outside CI a missing server skips the test with the reason; in CI (`CI=true`) a server is
promised, so its absence fails it. Every database a test makes has a name of its own (a random
suffix), so xdist workers and concurrent runs never share one.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

SERVER = "postgresql://postgres@127.0.0.1:5432/test"
URL = "postgresql+psycopg://postgres@127.0.0.1:5432/{}"
_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test"


def admin(autocommit: bool = True) -> Any:
    """A connection to the server's `test` database, or the test skipped (failed in CI)."""
    import psycopg

    try:
        return psycopg.connect(_ADMIN, autocommit=autocommit, connect_timeout=3)
    except psycopg.OperationalError as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI promises PostgreSQL on 127.0.0.1:5432 but: {error}")
        pytest.skip(f"no PostgreSQL on 127.0.0.1:5432 ({error})")


def unique_name(prefix: str = "modelyard_") -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new empty database's SQLAlchemy URL, dropped afterwards."""
    connection = admin()
    name = unique_name()
    connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield URL.format(name)
    finally:
        connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        connection.close()


def drop_databases(*names: str) -> None:
    import psycopg

    with psycopg.connect(_ADMIN, autocommit=True) as connection:
        for name in names:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

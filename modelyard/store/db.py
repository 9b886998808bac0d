"""Engine, migrations and sessions for the platform database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    from alembic import command

    command.downgrade(alembic_config(url), revision)


def transactional_engine(url: str) -> Any:
    """An engine whose transactions include DDL on SQLite too: Python's sqlite3 commits a
    CREATE/DROP/ALTER issued before the first INSERT on its own, so a swap of tables would not be
    atomic. The SQLAlchemy recipe: the driver's own transaction handling off, an explicit BEGIN.
    (PostgreSQL's DDL is transactional already.)"""
    from sqlalchemy import create_engine, event

    engine = create_engine(url)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _no_driver_transactions(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN")

    return engine


def engine_for(url: str) -> Any:
    """An engine on `url` whose schema is migrated to head (idempotent, cheap when current).

    Two processes starting on a fresh database would both run the migrations and one would
    fail half-way: the migration holds a lock (the same kinds as the promotion lock)."""
    from sqlalchemy import create_engine

    from modelyard.store.lock import exclusive

    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    with exclusive(engine, "modelyard.migrate", 300):
        upgrade(url)
    return engine

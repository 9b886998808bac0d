"""Alembic environment: the URL comes from the Config object `modelyard.store.db` builds."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from modelyard.store.models import ALEMBIC_VERSION_TABLE, Base

config = context.config


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            version_table=ALEMBIC_VERSION_TABLE,
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("alembic: no sqlalchemy.url and no connection to migrate")
    engine = create_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            version_table=ALEMBIC_VERSION_TABLE,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()

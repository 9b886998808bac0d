"""The platform database: SQLAlchemy 2 models and Alembic migrations (SQLite by default,
PostgreSQL via MODELYARD_DATABASE_URL)."""

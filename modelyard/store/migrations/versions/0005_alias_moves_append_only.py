"""The audit trail is append-only in the database itself: UPDATE and DELETE on alias_moves (and
TRUNCATE on PostgreSQL) abort, whatever code or person issues them, so history cannot be
rewritten. The platform itself only ever inserts rows (`modelyard.store.audit.AuditLog.move`).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

from modelyard.store.models import AliasMove

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TABLE = AliasMove.__tablename__
MESSAGE = (f"{TABLE} is append-only: the audit trail of alias moves is never updated or "
           "deleted; record a correction as a new move")
# Names of what the upgrade creates: the downgrade drops exactly these.
SQLITE_TRIGGERS = {f"{TABLE}_no_update": "UPDATE", f"{TABLE}_no_delete": "DELETE"}
PG_FUNCTION = f"{TABLE}_append_only"
PG_TRIGGER = f"{TABLE}_append_only"


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name, event in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} BEFORE {event} ON {TABLE} "
                       f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END")
    elif dialect == "postgresql":
        op.execute(f"CREATE FUNCTION {PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                   f"BEGIN RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'restrict_violation'; "
                   "END $$")
        # Statement level: it fires for TRUNCATE too, and even when no row matches.
        op.execute(f"CREATE TRIGGER {PG_TRIGGER} BEFORE UPDATE OR DELETE OR TRUNCATE ON {TABLE} "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION {PG_FUNCTION}()")
    else:
        raise NotImplementedError(f"the audit trail's protection supports SQLite and PostgreSQL, "
                                  f"not {dialect!r}")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    elif dialect == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {PG_TRIGGER} ON {TABLE}")
        op.execute(f"DROP FUNCTION IF EXISTS {PG_FUNCTION}()")

"""API keys of the model server (only a hash of each secret is kept), and which key wrote each
feedback row (NULL: written without one, or before keys existed).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("scopes", sa.String(256), nullable=False),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.add_column("feedback", sa.Column("key_id", sa.String(32), nullable=True))
    op.create_index("ix_feedback_key_id", "feedback", ["key_id"])


def downgrade() -> None:
    op.drop_index("ix_feedback_key_id", table_name="feedback")
    # batch mode: SQLite before 3.35 cannot drop a column in place
    with op.batch_alter_table("feedback") as batch:
        batch.drop_column("key_id")
    op.drop_table("api_keys")

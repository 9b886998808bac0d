"""The audit of retention: what was deleted, older than when, by whom.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retention_runs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("cutoff", sa.DateTime(timezone=True), nullable=False),
        sa.Column("predictions_deleted", sa.Integer(), nullable=False),
        sa.Column("feedback_deleted", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("ran_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("retention_runs")

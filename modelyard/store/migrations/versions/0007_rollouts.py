"""Rollouts (a challenger on trial against production, shadow or canary, and how each ended),
and which request and role each logged prediction had: a shadow rollout logs the champion's
answer and the challenger's score of the same request under one request id.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rollouts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(256), nullable=False, index=True),
        sa.Column("champion_version", sa.String(32), nullable=True),
        sa.Column("challenger_version", sa.String(32), nullable=False),
        sa.Column("strategy", sa.String(16), nullable=False),
        sa.Column("weight", sa.Float, nullable=False),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_by", sa.String(256), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_by", sa.String(256), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("evidence", sa.JSON, nullable=True),
    )
    op.add_column("predictions", sa.Column("request_id", sa.String(36), nullable=True))
    op.add_column("predictions", sa.Column("role", sa.String(16), nullable=True))
    op.create_index("ix_predictions_request_id", "predictions", ["request_id"])


def downgrade() -> None:
    op.drop_index("ix_predictions_request_id", table_name="predictions")
    # batch mode: SQLite before 3.35 cannot drop a column in place
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("role")
        batch.drop_column("request_id")
    op.drop_table("rollouts")

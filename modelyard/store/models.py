"""Tables of the platform database. The schema is owned by the Alembic migrations in
`migrations/versions/`; these classes describe it for queries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Alembic's bookkeeping table (its default name, passed to it explicitly by migrations/env.py).
ALEMBIC_VERSION_TABLE = "alembic_version"


class Base(DeclarativeBase):
    pass


def platform_tables() -> frozenset[str]:
    """Every table the platform owns: the ones below and Alembic's. No batch output may write
    into them (they hold the audit trail, the prediction log, feedback, monitor runs...)."""
    return frozenset(Base.metadata.tables) | {ALEMBIC_VERSION_TABLE}


class AliasMove(Base):
    """One move of a registry alias: MLflow keeps no history of aliases, this table does."""

    __tablename__ = "alias_moves"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(256), index=True)
    alias: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # promote | rollback | manual
    from_version: Mapped[str | None] = mapped_column(String(32))
    to_version: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(256))  # a user name, or "flow-run:<id>"
    reason: Mapped[str] = mapped_column(Text)
    gate_report: Mapped[str | None] = mapped_column(Text)  # where the decision is (MLflow run)
    moved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class Prediction(Base):
    """One answered text. `text` is None unless the privacy setting keeps inputs in full; the
    hash is always kept, so feedback and drift can still match texts."""

    __tablename__ = "predictions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    model: Mapped[str] = mapped_column(String(256))
    version: Mapped[str] = mapped_column(String(32))
    text: Mapped[str | None] = mapped_column(Text)
    text_sha256: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(256))
    probabilities: Mapped[dict[str, float]] = mapped_column(JSON)
    latency_ms: Mapped[float] = mapped_column(Float)
    # The request the text came in (= `id` for an answer; a shadow score carries the id of the
    # answer it shadowed). None: logged before rollouts existed.
    request_id: Mapped[str | None] = mapped_column(String(36), index=True)
    # "served": this version answered; "shadow": the challenger scored a copy, nobody saw it.
    # None: logged before rollouts existed (= served).
    role: Mapped[str | None] = mapped_column(String(16))


class Feedback(Base):
    """The true label of a prediction, as a user reported it."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    prediction_id: Mapped[str] = mapped_column(String(36), index=True)
    label: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    # The API key that sent it (`ApiKey.id`); None: sent without one.
    key_id: Mapped[str | None] = mapped_column(String(32), index=True)


class ApiKey(Base):
    """A credential of the model server: its public id, what it may do, and the SHA-256 of its
    secret (the secret itself is shown once, when the key is made, and never stored)."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    scopes: Mapped[str] = mapped_column(String(256))  # comma-separated, sorted
    secret_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(256))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Rollout(Base):
    """A challenger on trial against the champion (production) on live traffic, and its end."""

    __tablename__ = "rollouts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(256), index=True)
    champion_version: Mapped[str | None] = mapped_column(String(32))
    challenger_version: Mapped[str] = mapped_column(String(32))
    strategy: Mapped[str] = mapped_column(String(16))  # shadow | canary
    weight: Mapped[float] = mapped_column(Float)  # share the challenger answers (0 in shadow)
    state: Mapped[str] = mapped_column(String(16), index=True)  # open | promoted | aborted
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_by: Mapped[str] = mapped_column(String(256))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_by: Mapped[str | None] = mapped_column(String(256))
    reason: Mapped[str | None] = mapped_column(Text)
    # The statistics of the last verdict (modelyard.rollout), for status and the audit trail.
    evidence: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class MonitorRun(Base):
    """What one monitor run found: the figures of every test, and whether it called the model
    degraded (which emits the event that can start a retrain)."""

    __tablename__ = "monitor_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(256))
    version: Mapped[str] = mapped_column(String(32))
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    window_end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    predictions: Mapped[int] = mapped_column(Integer)
    labelled: Mapped[int] = mapped_column(Integer)
    degraded: Mapped[bool] = mapped_column(Boolean)
    report: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RetentionRun(Base):
    """One application of `privacy.retention_days`: the rows it deleted, and who ran it."""

    __tablename__ = "retention_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cutoff: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    predictions_deleted: Mapped[int] = mapped_column(Integer)
    feedback_deleted: Mapped[int] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(256))
    ran_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

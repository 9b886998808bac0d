"""API keys of the model server, in the platform database.

A key is `myk_<id>_<secret>`: the id is public (listed, recorded on each feedback row it
writes), the secret is random (256 bits) and only its SHA-256 is kept. A plain hash is enough
for a random secret of that size (a slow password hash protects guessable passwords, which these
are not), and it keeps checking a key cheap on every request.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from modelyard.store.models import ApiKey

Scope = Literal["predict", "feedback", "admin"]
# What each scope opens: /predict and /explain; /feedback; the /admin/ endpoints.
SCOPES: tuple[Scope, ...] = ("predict", "feedback", "admin")
PREFIX = "myk"


@dataclass(frozen=True)
class KeyRecord:
    id: str
    name: str
    scopes: frozenset[str]
    created_at: datetime
    created_by: str
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def split_token(token: str) -> tuple[str, str] | None:
    """(id, secret) of a key's token, or None when it is not shaped like one."""
    prefix, _, rest = token.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != PREFIX or not key_id or not secret or len(key_id) > 32:
        return None
    return key_id, secret


def matches(secret: str, secret_sha256: str) -> bool:
    return secrets.compare_digest(hash_secret(secret), secret_sha256)


def _aware(moment: datetime | None) -> datetime | None:
    # SQLite gives naive datetimes back; they were written in UTC.
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=UTC)


def _record(row: ApiKey) -> KeyRecord:
    return KeyRecord(
        row.id,
        row.name,
        frozenset(filter(None, row.scopes.split(","))),
        _aware(row.created_at) or datetime.now(UTC),
        row.created_by,
        _aware(row.revoked_at),
    )


class ApiKeys:
    """Create, list, revoke and check keys on an engine (`modelyard.store.db.engine_for`)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def create(self, name: str, scopes: set[str], actor: str) -> tuple[KeyRecord, str]:
        """A new key: (its record, its token). The token is shown once and never again."""
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown or not scopes:
            raise ValueError(f"scopes must be some of {', '.join(SCOPES)}; got {sorted(scopes)}")
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        row = ApiKey(
            id=key_id,
            name=name,
            scopes=",".join(sorted(scopes)),
            secret_sha256=hash_secret(secret),
            created_at=datetime.now(UTC),
            created_by=actor,
            revoked_at=None,
        )
        from sqlalchemy.orm import Session

        with Session(self.engine) as session, session.begin():
            session.add(row)
            record = _record(row)
        return record, f"{PREFIX}_{key_id}_{secret}"

    def list(self) -> list[KeyRecord]:
        from sqlalchemy import select
        from sqlalchemy.orm import Session

        with Session(self.engine) as session:
            rows = session.scalars(select(ApiKey).order_by(ApiKey.created_at)).all()
            return [_record(row) for row in rows]

    def revoke(self, key_id: str) -> KeyRecord:
        """Revoke `key_id` (again: a no-op); LookupError when there is no such key."""
        from sqlalchemy.orm import Session

        with Session(self.engine) as session, session.begin():
            row = session.get(ApiKey, key_id)
            if row is None:
                raise LookupError(f"no API key {key_id!r} (modelyard keys list shows them)")
            if row.revoked_at is None:
                row.revoked_at = datetime.now(UTC)
            return _record(row)

    def check(self, token: str) -> KeyRecord | None:
        """The key `token` is, revoked or not; None when no key has that id and secret."""
        parts = split_token(token)
        if parts is None:
            return None
        from sqlalchemy.orm import Session

        with Session(self.engine) as session:
            row = session.get(ApiKey, parts[0])
            if row is None or not matches(parts[1], row.secret_sha256):
                return None
            return _record(row)

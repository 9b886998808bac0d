"""A failed deploy check's rollback, on a temporary SQLite audit trail: production goes back to
the version the failed one replaced, audited, unless it has nothing to go back to or someone
moved it since."""

from __future__ import annotations

import pytest

from modelyard.adapters.deployment import roll_back
from modelyard.store import db
from modelyard.store.audit import AuditLog


class Aliases:
    """The alias calls a rollback makes; the real registry is exercised by the e2e deploy
    test."""

    def __init__(self) -> None:
        self.aliases: dict[tuple[str, str], str] = {}

    def alias_version(self, name: str, alias: str) -> str | None:
        return self.aliases.get((name, alias))

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self.aliases[(name, alias)] = version


@pytest.fixture
def audit(tmp_path):
    url = f"sqlite:///{tmp_path}/modelyard.db"
    db.upgrade(url)
    log = AuditLog.from_url(url)
    yield log
    log.engine.dispose()


def promote(audit: AuditLog, registry: Aliases, version: str) -> None:
    audit.move(registry, "m", "production", version, kind="promote", actor="test", reason="ok")


def test_production_goes_back_to_what_the_failed_version_replaced(audit):
    registry = Aliases()
    promote(audit, registry, "1")
    promote(audit, registry, "2")
    assert roll_back(registry, audit, "m", "2", "flow-run:x", "deploy check failed") == "1"
    assert registry.alias_version("m", "production") == "1"
    last = audit.latest("m", "production")
    assert last is not None and (last.kind, last.from_version, last.to_version, last.reason) == (
        "rollback",
        "2",
        "1",
        "deploy check failed",
    )


def test_nothing_to_go_back_to_or_moved_since_leaves_production(audit):
    registry = Aliases()
    promote(audit, registry, "1")
    assert roll_back(registry, audit, "m", "1", "a", "r") is None  # the first version
    promote(audit, registry, "2")
    promote(audit, registry, "3")
    assert roll_back(registry, audit, "m", "2", "a", "r") is None  # someone moved it to 3
    assert registry.alias_version("m", "production") == "3"
    assert [m.kind for m in audit.history("m")] == ["promote"] * 3

"""The audit trail's rows that are not moves, on SQLite: a removed alias (atomic with the
registry, recorded on retry when the remover died in between) and a note (not written twice)."""

from __future__ import annotations

import pytest

from modelyard.store.audit import REMOVED, AuditLog
from tests.helpers.registry import FakeRegistry


class Registry(FakeRegistry):
    def delete_alias(self, name: str, alias: str) -> None:
        self.aliases.pop((name, alias), None)


@pytest.fixture
def audit(tmp_path):
    log = AuditLog.from_url(f"sqlite:///{tmp_path}/modelyard.db")
    yield log
    log.engine.dispose()


def _rows(audit: AuditLog) -> list[tuple[str, str, str | None, str]]:
    return [(m.alias, m.kind, m.from_version, m.to_version) for m in audit.history("m")]


def test_a_removed_alias_is_one_row_and_a_retry_adds_none(audit):
    registry = Registry()
    audit.move(registry, "m", "challenger", "2", kind="promote", actor="a", reason="gate")
    removed = audit.remove(registry, "m", "challenger", kind="rollout", actor="a", reason="end")
    assert removed is not None and registry.alias_version("m", "challenger") is None
    assert (
        audit.remove(registry, "m", "challenger", kind="rollout", actor="a", reason="end") is None
    )
    assert _rows(audit) == [
        ("challenger", "promote", None, "2"),
        ("challenger", "rollout", "2", REMOVED),
    ]
    # What the alias named at a time after its removal: nothing.
    assert audit.serving_at("m", removed.moved_at, alias="challenger") is None
    # A later move starts from nothing, not from the removal's empty version.
    registry.aliases[("m", "challenger")] = "3"  # the registry moved, the mover died
    audit.move(registry, "m", "challenger", "3", kind="promote", actor="a", reason="gate")
    assert _rows(audit)[-1] == ("challenger", "promote", None, "3")


def test_a_removal_whose_row_was_lost_is_recorded_on_retry(audit):
    registry = Registry()
    audit.move(registry, "m", "challenger", "2", kind="promote", actor="a", reason="gate")
    registry.delete_alias("m", "challenger")  # removed; the process died before its row
    again = audit.remove(registry, "m", "challenger", kind="rollout", actor="a", reason="end")
    assert again is not None and (again.from_version, again.to_version) == ("2", REMOVED)
    assert "recorded on retry" in again.reason


def test_a_note_moves_nothing_and_the_same_note_is_not_written_twice(audit):
    registry = Registry()
    audit.move(registry, "m", "challenger", "2", kind="promote", actor="a", reason="gate")
    assert audit.note("m", "challenger", "2", kind="rollout", actor="f", reason="wait") is not None
    assert audit.note("m", "challenger", "2", kind="rollout", actor="f", reason="wait") is None
    assert audit.note("m", "challenger", "2", kind="rollout", actor="f", reason="more") is not None
    assert _rows(audit)[1:] == [("challenger", "rollout", "2", "2")] * 2
    assert registry.alias_version("m", "challenger") == "2"

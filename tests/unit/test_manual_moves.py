"""Hand-made alias moves (promote, rollback): read under the lock, decided by the rule book,
audited only when something moves. A fake registry and audit trail: no MLflow, no database."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

from modelyard.adapters.manual_moves import MoveRefused, promote_by_hand, roll_back

REJECTED = {"rejected": "true", "gate_report": "REJECT\nFAIL min_accuracy: 0.30 < 0.50"}


@dataclass
class Info:
    tags: dict[str, str]


@dataclass
class Registry:
    versions: dict[str, dict[str, str]]
    aliases: dict[str, str] = field(default_factory=dict)

    def alias_version(self, name: str, alias: str) -> str | None:
        return self.aliases.get(alias)

    def version_info(self, name: str, version: str) -> Info:
        from mlflow.exceptions import MlflowException

        if version not in self.versions:
            raise MlflowException(f"no version {version}")
        return Info(self.versions[version])


@dataclass
class Audit:
    target: str | None = None
    events: list[tuple] = field(default_factory=list)

    @contextmanager
    def promotion_lock(self, name: str):
        self.events.append(("lock", name))
        yield
        self.events.append(("unlock", name))

    def rollback_target(self, name: str, current: str) -> str | None:
        return self.target

    def latest(self, name: str, alias: str) -> None:
        return None  # no row: where the registry says is where the alias is

    def note(self, name, alias, version, *, kind, actor, reason):
        self.events.append(("note", alias, version, kind, actor, reason))

    def move(self, registry, name, alias, version, *, kind, actor, reason):
        self.events.append(("move", alias, version, kind, actor, reason))


def test_a_promotion_moves_under_the_lock_and_is_audited():
    registry, audit = Registry({"1": {}, "2": {}}, {"production": "1"}), Audit()
    decision = promote_by_hand(registry, audit, "m", "production", "2", "user:ann", None, False)
    assert decision.moves and decision.current == "1"
    assert audit.events == [
        ("lock", "m"),
        ("move", "production", "2", "manual", "user:ann", "manual promotion"),
        ("unlock", "m"),
    ]


def test_a_move_to_where_the_alias_is_writes_nothing():
    registry, audit = Registry({"2": {}}, {"staging": "2"}), Audit()
    decision = promote_by_hand(registry, audit, "m", "staging", "2", "user:ann", "why", False)
    assert not decision.moves and [e[0] for e in audit.events] == ["lock", "unlock"]


@pytest.mark.parametrize(
    "version, words",
    [
        ("9", ["m has no version 9"]),
        ("2", ["m@production stays at version 1", "the gate rejected it", "--force --reason"]),
    ],
)
def test_refusals_name_the_version_and_where_the_alias_stays(version, words):
    registry, audit = Registry({"1": {}, "2": REJECTED}, {"production": "1"}), Audit()
    with pytest.raises(MoveRefused) as refused:
        promote_by_hand(registry, audit, "m", "production", version, "user:ann", None, False)
    for word in words:
        assert word in str(refused.value)
    assert not [e for e in audit.events if e[0] == "move"]


def test_a_forced_promotion_records_what_it_overrode():
    registry, audit = Registry({"1": {}, "2": REJECTED}, {"production": "1"}), Audit()
    decision = promote_by_hand(registry, audit, "m", "production", "2", "user:ann", "hotfix", True)
    assert decision.forced
    reason = audit.events[1][-1]
    assert reason.startswith("FORCED") and "hotfix" in reason


def test_rollback_goes_to_what_production_replaced_or_to_the_version_named():
    registry = Registry({"1": {}, "2": {}, "3": {}}, {"production": "3"})
    audit = Audit(target="2")
    assert roll_back(registry, audit, "m", None, "user:ann", None, False).version == "2"
    assert audit.events[1] == ("move", "production", "2", "rollback", "user:ann", "rollback")
    assert roll_back(registry, Audit(), "m", "1", "user:ann", "bad", False).version == "1"


@pytest.mark.parametrize(
    "aliases, words",
    [
        ({}, "m has no production version to roll back from"),
        ({"production": "3"}, "m@production (version 3) replaced nothing in the audit trail"),
    ],
)
def test_rollback_refuses_without_a_production_or_a_target(aliases, words):
    with pytest.raises(MoveRefused, match=words.replace("(", r"\(").replace(")", r"\)")):
        roll_back(Registry({"3": {}}, aliases), Audit(), "m", None, "user:ann", None, False)


@pytest.mark.parametrize("move", ["promote", "rollback"])
def test_only_an_approver_moves_production_and_a_refusal_is_noted(move):
    registry, audit = Registry({"1": {}, "2": {}}, {"production": "2"}), Audit(target="1")

    def attempt(actor: str):
        if move == "promote":
            return promote_by_hand(
                registry, audit, "m", "production", "1", actor, None, False, ("ann",)
            )
        return roll_back(registry, audit, "m", None, actor, None, False, ("ann",))

    with pytest.raises(MoveRefused) as refused:
        attempt("user:bob")
    assert "m@production stays at version 2: bob may not" in str(refused.value)
    assert "promotion.approvers allows only ann" in str(refused.value)
    (note,) = [event for event in audit.events if event[0] == "note"]
    assert note[1:5] == ("production", "2", "refused", "user:bob")
    assert not [event for event in audit.events if event[0] == "move"]
    assert attempt("user:ann").moves
    assert audit.events[-2][:3] == ("move", "production", "1")


def test_approvers_guard_production_only():
    registry, audit = Registry({"1": {}, "2": {}}, {"staging": "1"}), Audit()
    decision = promote_by_hand(
        registry, audit, "m", "staging", "2", "user:bob", None, False, ("ann",)
    )
    assert decision.moves

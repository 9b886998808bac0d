"""The guarded production pointer's rules: who may move production, and whether production is
where the audit trail's last move put it. Pure functions, no registry, no database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace

import pytest

from modelyard.config import Params
from modelyard.promotion import Pointer, check_pointer, may_approve


@pytest.mark.parametrize(
    "who, approvers, allowed",
    [
        ("user:bob", (), True),  # no list: anyone, as before approvers existed
        ("user:ann", ("ann", "cy"), True),
        ("ann", ("user:ann",), True),
        ("user:bob", ("ann", "cy"), False),
        ("", ("ann",), False),
    ],
)
def test_may_approve(who, approvers, allowed):
    assert may_approve(who, approvers) is allowed


def test_a_recorded_position():
    found = check_pointer("m", "production", "2", "2")
    assert found.state is Pointer.RECORDED and not found.tampered
    assert found.sentence == "m@production is at version 2, as the audit trail records"


@pytest.mark.parametrize(
    "registry, recorded, words",
    [
        ("3", "2", "points at version 3 but the audit trail's last move says version 2"),
        (None, "2", "points at no version but the audit trail's last move says version 2"),
        ("3", "", "points at version 3 but the audit trail's last move says no version"),
    ],
)
def test_an_unrecorded_position_names_both_versions(registry, recorded, words):
    found = check_pointer("m", "production", registry, recorded)
    assert found.tampered and (found.registry, found.recorded) == (registry, recorded or None)
    assert words in found.sentence and "moved outside ModelYard (MLflow UI/API)" in found.sentence


def test_an_alias_the_trail_never_moved_is_not_judged():
    found = check_pointer("m", "production", "1", None)
    assert found.state is Pointer.UNTRACKED and not found.tampered


def test_approvers_are_params_but_not_lineage():
    plain = Params()
    guarded = plain.updated({"promotion.approvers": ["ann"]})
    assert guarded.promotion.approvers == ("ann",)
    assert guarded.digest() == plain.digest()


class _Trail:
    """A trail whose last production row names `recorded`; taking the lock lets the mover that
    held it finish (its row lands), or times out."""

    def __init__(self, recorded: str, lands: str | None = None, busy: bool = False) -> None:
        self.recorded, self.lands, self.busy = recorded, lands, busy

    def latest(self, model: str, alias: str) -> SimpleNamespace:
        return SimpleNamespace(to_version=self.recorded)

    @contextmanager
    def promotion_lock(self, model: str, timeout_s: float) -> Iterator[None]:
        from modelyard.store.lock import LockTimeout

        if self.busy:
            raise LockTimeout("a mover holds it")
        if self.lands is not None:
            self.recorded = self.lands
        yield


class _Registry:
    def alias_version(self, model: str, alias: str) -> str:
        return "2"


def test_a_move_in_flight_is_looked_at_again_under_the_lock():
    from modelyard.adapters.pointer import pointer

    assert pointer(_Registry(), _Trail("1", lands="2"), "m").state is Pointer.RECORDED
    assert pointer(_Registry(), _Trail("1"), "m").tampered  # still unrecorded under the lock
    assert pointer(_Registry(), _Trail("1", busy=True), "m", timeout_s=0.1) is None

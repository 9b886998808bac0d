"""The challenger follower against a stand-in rollout store: a server following another alias
reads nothing; a database that fails keeps what was followed; a closed rollout drops the
challenger; a canary routes only once its challenger is loaded, by key and weight."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from modelyard.serving.challenger import ChallengerFollower, canary_share
from modelyard.serving.model import LoadedModel
from modelyard.store.rollouts import Rollout, RolloutState


class _Store:
    def __init__(self, rollout: Rollout | None) -> None:
        self.rollout, self.reads, self.down = rollout, 0, False

    def current(self, model: str) -> Rollout | None:
        self.reads += 1
        if self.down:
            raise ConnectionError("the database is down")
        return self.rollout


def _rollout(strategy: str, weight: float, challenger: str = "2") -> Rollout:
    return Rollout(
        7, "m", "1", challenger, strategy, weight, RolloutState.OPEN, datetime.now(UTC), "test"
    )


def _follower(store: _Store, enabled: bool = True) -> ChallengerFollower:
    # The champion is version 2 here, so loading the challenger reuses it (no registry needed).
    champion = LoadedModel("m", "2", "production", object(), None, datetime.now(UTC))
    follower = ChallengerFollower(lambda: None, "sqlite://", "m", enabled, lambda: champion)
    follower._store = store
    return follower


def test_a_server_on_another_alias_reads_no_rollout():
    store = _Store(_rollout("shadow", 0.0))
    follower = _follower(store, enabled=False)
    assert asyncio.run(follower.check()) is False
    assert (store.reads, follower.rollout, follower.status()) == (0, None, None)


def test_a_failing_database_keeps_the_challenger_and_a_closed_rollout_drops_it():
    store = _Store(_rollout("shadow", 0.0))
    follower = _follower(store)
    assert asyncio.run(follower.check()) is True
    assert follower.current is not None and follower.current.alias == "challenger"
    assert follower.shadow() is follower.current
    store.down = True
    assert asyncio.run(follower.check()) is False
    assert follower.shadow() is not None and "the database is down" in str(follower.last_error)
    assert follower.status()["challenger_loaded"] is True
    store.down, store.rollout = False, None
    assert asyncio.run(follower.check()) is True
    assert (follower.rollout, follower.current, follower.shadow()) == (None, None, None)


def test_a_canary_routes_by_key_once_its_challenger_is_loaded():
    store = _Store(_rollout("canary", 0.3))
    follower = _follower(store)
    inside = next(f"k{i}" for i in range(100) if canary_share(f"k{i}") < 0.3)
    outside = next(f"k{i}" for i in range(100) if canary_share(f"k{i}") >= 0.3)
    assert not follower.canary(inside)  # nothing read yet
    asyncio.run(follower.check())
    assert follower.canary(inside) and not follower.canary(outside)
    assert follower.shadow() is None
    store.rollout = _rollout("canary", 0.9)  # the weight grows: the key stays inside
    asyncio.run(follower.check())
    assert follower.canary(inside)
    assert follower.status()["weight"] == 0.9

"""The challenger of an open rollout, followed by a server that serves `production`.

The rollout record lives in the platform database (`modelyard.store.rollouts`); a server reads
it on the alias's poll (and on the admin reload), loads the challenger version by number in a
worker thread while everything keeps answering, and drops it when the rollout closes (promoted:
the `production` alias moves to it, and the server switches to the copy it holds; aborted: it is
gone). A server following another alias (`staging`) ignores rollouts.

In a canary, which version answers a request is a pure function of its key and the rollout's
weight (`canary_share`): every replica reading the same record routes a key the same way.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from modelyard.serving.model import LoadedModel, load_version
from modelyard.tags import CHALLENGER

if TYPE_CHECKING:
    from modelyard.store.rollouts import Rollout, RolloutStore

log = logging.getLogger("modelyard.serving")

# The request header whose value decides a canary's routing (a user or session id: the same
# key is answered by the same version on every replica); without it, the prediction id.
ROLLOUT_KEY_HEADER = "X-Rollout-Key"
CANARY, SHADOW = "canary", "shadow"


def canary_share(key: str) -> float:
    """Where `key` falls in [0, 1): the first 8 bytes of its SHA-256 (the same in every process,
    unlike `hash()`). The challenger answers the keys below the rollout's weight, so a key
    inside a canary stays inside when the weight grows."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class ChallengerFollower:
    """`rollout`: the open rollout of the model (None: none, or this server ignores rollouts);
    `current`: its challenger, loaded (None until it is, or when it could not be: `last_error`).
    """

    def __init__(
        self,
        registry_factory: Callable[[], Any],
        database_url: str,
        name: str,
        enabled: bool,
        champion: Callable[[], LoadedModel | None],
    ) -> None:
        self._registry_factory = registry_factory
        self._registry: Any = None
        self._store: RolloutStore | None = None
        self.database_url, self.name, self.enabled = database_url, name, enabled
        self._champion = champion
        self.rollout: Rollout | None = None
        self.current: LoadedModel | None = None
        self.last_error: str | None = None
        self._lock = asyncio.Lock()

    def canary(self, key: str) -> bool:
        """Whether the challenger answers the request with this key (a loaded canary's)."""
        rollout, challenger = self.rollout, self.current
        return (
            rollout is not None
            and rollout.strategy == CANARY
            and challenger is not None
            and challenger.version == rollout.challenger
            and canary_share(key) < rollout.weight
        )

    def shadow(self) -> LoadedModel | None:
        """The challenger that scores a copy of every request, in a loaded shadow rollout."""
        rollout, challenger = self.rollout, self.current
        if rollout is None or rollout.strategy != SHADOW or challenger is None:
            return None
        return challenger if challenger.version == rollout.challenger else None

    def holding(self, version: str) -> LoadedModel | None:
        """The challenger if it is `version` (the champion's follower reuses it on promotion)."""
        challenger = self.current
        return challenger if challenger is not None and challenger.version == version else None

    def status(self) -> dict[str, Any] | None:
        """The open rollout as /metadata shows it."""
        rollout = self.rollout
        if rollout is None:
            return None
        loaded = self.current is not None and self.current.version == rollout.challenger
        return {
            "id": rollout.id,
            "strategy": rollout.strategy,
            "champion": rollout.champion,
            "challenger": rollout.challenger,
            "weight": rollout.weight,
            "started_at": rollout.started_at.isoformat(),
            "challenger_loaded": loaded,
            "challenger_error": None if loaded else self.last_error,
        }

    async def check(self) -> bool:
        """Read the open rollout; load its challenger if it is new, drop it if the rollout
        ended. True when the challenger changed."""
        if not self.enabled:
            return False
        async with self._lock:
            try:
                rollout = await asyncio.to_thread(self._open_rollout)
            except Exception as error:  # noqa: BLE001 - the database may come back
                self._failed("could not read the open rollout", error)
                return False
            if rollout is None:
                return self._ended()
            self.rollout = rollout  # its weight may have changed
            if self.holding(rollout.challenger) is not None:
                self.last_error = None
                return False
            self.current = None  # another rollout's challenger no longer answers
            try:
                loaded = await asyncio.to_thread(self._load, rollout)
            except Exception as error:  # noqa: BLE001 - the champion answers meanwhile
                self._failed(f"could not load challenger version {rollout.challenger}", error)
                return False
            self.current, self.last_error = loaded, None
            log.info(
                "rollout #%d (%s, weight %g): challenger %s version %s loaded",
                rollout.id,
                rollout.strategy,
                rollout.weight,
                self.name,
                loaded.version,
            )
            return True

    def _ended(self) -> bool:
        ended, self.rollout, self.current, self.last_error = self.rollout, None, None, None
        if ended is not None:
            log.info("rollout #%d of %s ended: challenger dropped", ended.id, self.name)
        return ended is not None

    def _failed(self, what: str, error: Exception) -> None:
        failure = (
            f"{what}: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        )
        if failure != self.last_error:  # said once, then again when it changes
            log.warning("%s (retrying on every poll)", failure)
        self.last_error = failure

    def _open_rollout(self) -> Rollout | None:
        if self._store is None:
            from modelyard.store.rollouts import RolloutStore

            self._store = RolloutStore.from_url(self.database_url)
        return self._store.current(self.name)

    def _load(self, rollout: Rollout) -> LoadedModel:
        champion = self._champion()
        if champion is not None and champion.version == rollout.challenger:
            return replace(champion, alias=CHALLENGER)
        if self._registry is None:
            self._registry = self._registry_factory()
        return load_version(self._registry, self.name, CHALLENGER, rollout.challenger)

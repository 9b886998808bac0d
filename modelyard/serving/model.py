"""The model a server answers with, and how it follows the registry alias.

A `LoadedModel` is immutable: a hot swap replaces the holder's reference in one assignment, and
every batch takes the reference once, so a batch (and every response in it) is answered by
exactly one fully loaded version.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelyard.inference import TextClassifier
    from modelyard.registry.mlflow_registry import MlflowRegistry

log = logging.getLogger("modelyard.serving")


@dataclass(frozen=True)
class LoadedModel:
    name: str
    version: str
    alias: str
    classifier: TextClassifier
    dataset_md5: str | None
    loaded_at: datetime
    # The column of the training data that held the texts: /predict takes it besides `text`.
    text_column: str = "text"

    @property
    def labels(self) -> list[str]:
        return list(self.classifier.labels)

    def metadata(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "version": self.version,
            "alias": self.alias,
            "dataset_md5": self.dataset_md5,
            "labels": self.labels,
            "loaded_at": self.loaded_at.isoformat(),
            "text_column": self.text_column,
            "runtime": self.classifier.runtime,
        }


def load_version(registry: MlflowRegistry, name: str, alias: str, version: str) -> LoadedModel:
    """Load `models:/name/version` (by number, not alias: the alias may move meanwhile, and the
    version a response names must be the one that answered it)."""
    model = registry.load_pyfunc(name, version=version)
    tags = registry.version_info(name, version).tags
    return LoadedModel(
        name,
        version,
        alias,
        model.classifier,
        tags.get("dataset_md5"),
        datetime.now(UTC),
        model.text_column,
    )


class ModelFollower:
    """Keeps `current` at the version behind `name@alias`: polls the registry every
    `interval_s`, and on `check()` (the admin reload). A new version is loaded in a worker
    thread while the old one keeps answering; the switch is one reference assignment."""

    def __init__(
        self,
        registry_factory: Callable[[], MlflowRegistry],
        name: str,
        alias: str,
        interval_s: float,
        on_swap: Callable[[LoadedModel], None] | None = None,
    ) -> None:
        self._registry_factory = registry_factory
        self._registry: MlflowRegistry | None = None
        self.name, self.alias, self.interval_s = name, alias, interval_s
        self.current: LoadedModel | None = None
        self.last_error: str | None = None
        self._on_swap = on_swap
        self._lock = asyncio.Lock()
        # A version this server holds already (a rollout's challenger): when the alias moves to
        # it (the rollout promoted it), it is switched to without loading it again.
        self.preloaded: Callable[[str], LoadedModel | None] | None = None

    def _registry_client(self) -> Any:
        if self._registry is None:
            self._registry = self._registry_factory()
        return self._registry

    def _resolve_and_load(self, known: str | None) -> LoadedModel | None:
        registry = self._registry_client()
        version = registry.alias_version(self.name, self.alias)
        if version is None:
            raise LookupError(f"{self.name}@{self.alias} does not exist in the registry yet")
        if version == known:
            return None
        held = self.preloaded(version) if self.preloaded is not None else None
        if held is not None:
            return replace(held, alias=self.alias, loaded_at=datetime.now(UTC))
        return load_version(registry, self.name, self.alias, version)

    async def check(self) -> bool:
        """Load and switch to the alias's version if it moved; True when it switched."""
        async with self._lock:
            known = self.current.version if self.current else None
            try:
                loaded = await asyncio.to_thread(self._resolve_and_load, known)
            except Exception as error:  # noqa: BLE001 - the server keeps its model and retries
                failure = f"{type(error).__name__}: {error}"
                # Said once, then again when it changes: a server started before the first
                # model is registered polls for minutes, and the log should say so one time.
                if failure != self.last_error:
                    log.warning(
                        "could not follow %s@%s: %s (retrying every %g s; said again "
                        "only if this changes)",
                        self.name,
                        self.alias,
                        failure,
                        self.interval_s,
                    )
                self.last_error = failure
                return False
            self.last_error = None
            if loaded is None:
                return False
            self.current = loaded
            log.info("now serving %s version %s (was %s)", self.name, loaded.version, known)
            if self._on_swap:
                self._on_swap(loaded)
            return True

    async def run(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(self.interval_s)

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

from modelyard.tags import PRODUCTION

if TYPE_CHECKING:
    from modelyard.inference import TextClassifier
    from modelyard.promotion import PointerCheck
    from modelyard.registry.mlflow_registry import MlflowRegistry
    from modelyard.store.audit import AuditLog

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
    thread while the old one keeps answering; the switch is one reference assignment.

    Following `production` with an audit trail (`audit_factory`), it follows only a move the
    trail records: when the registry names another version than the trail's last move (moved
    in the MLflow UI or API), it keeps serving the recorded version (loads it, at startup),
    reports the move in `tampered`, logs it once and announces it to Prefect where a server is
    configured (`modelyard.promotion.check_pointer` decides)."""

    def __init__(
        self,
        registry_factory: Callable[[], MlflowRegistry],
        name: str,
        alias: str,
        interval_s: float,
        on_swap: Callable[[LoadedModel], None] | None = None,
        audit_factory: Callable[[], AuditLog] | None = None,
    ) -> None:
        self._registry_factory = registry_factory
        self._registry: MlflowRegistry | None = None
        guarded = audit_factory is not None and alias == PRODUCTION
        self._audit_factory = audit_factory if guarded else None
        self._audit: AuditLog | None = None
        # The unrecorded move being reported (None: the alias is where the trail says).
        self.tampered: PointerCheck | None = None
        self._trail_error: str | None = None
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

    def _alias_version(self, registry: MlflowRegistry) -> str:
        version = registry.alias_version(self.name, self.alias)
        if version is None:
            raise LookupError(f"{self.name}@{self.alias} does not exist in the registry yet")
        return version

    def _target(self, registry: MlflowRegistry, known: str | None) -> str:
        """The version to serve: the alias's; guarded, the one the audit trail records."""
        from modelyard.adapters.pointer import pointer

        if self._audit_factory is None:
            return self._alias_version(registry)
        try:
            if self._audit is None:
                self._audit = self._audit_factory()
            found = pointer(registry, self._audit, self.name, self.alias)
        except Exception as error:  # noqa: BLE001 - the trail is down: keep what was checked
            self._trail_unreadable(f"{type(error).__name__}: {error}", known)
            return known or self._alias_version(registry)
        self._trail_error = None
        if found is None:  # a move in flight holds the lock: look again on the next poll
            return known or self._alias_version(registry)
        self._report(found)
        if not found.tampered:
            return self._alias_version(registry)
        if found.recorded is None:
            if known is not None:
                return known
            raise LookupError(f"{found.sentence}; the trail names no version to serve")
        return found.recorded

    def _trail_unreadable(self, failure: str, known: str | None) -> None:
        if failure != self._trail_error:
            log.warning(
                "could not read the audit trail to check %s@%s: %s (%s)",
                self.name,
                self.alias,
                failure,
                "keeping the version it allowed" if known else "following the registry",
            )
        self._trail_error = failure

    def _report(self, found: PointerCheck) -> None:
        """Say an unrecorded move once (each new one again), and when it is settled."""
        if not found.tampered:
            if self.tampered is not None:
                log.info("%s; following it again", found.sentence)
            self.tampered = None
            return
        if self.tampered == found:
            return
        self.tampered = found
        log.warning("%s; not followed: serving the recorded version", found.sentence)
        try:
            from modelyard.orchestration.events import emit_registry_tampered

            emit_registry_tampered(found, f"the server following {self.name}@{self.alias}")
        except Exception as error:  # noqa: BLE001 - the announcement is best effort
            log.warning("could not announce it to Prefect: %s", error)

    def tampered_status(self) -> dict[str, Any] | None:
        """For /metadata: the unrecorded move not followed, or None."""
        found = self.tampered
        if found is None:
            return None
        return {"registry": found.registry, "recorded": found.recorded, "message": found.sentence}

    def _resolve_and_load(self, known: str | None) -> LoadedModel | None:
        registry = self._registry_client()
        version = self._target(registry, known)
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

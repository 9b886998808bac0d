"""The guarded production pointer, read: where the registry's alias points against where the
audit trail's last move put it (`modelyard.promotion.check_pointer` decides).

Every mover holds the model's promotion lock from its read to its row's commit, and the
registry moves a moment before the row commits. A reader that sees the two disagree therefore
looks again under the lock before it calls the move unrecorded: a move in flight is then
finished (recorded), a move made outside ModelYard is still there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelyard.promotion import PointerCheck, check_pointer
from modelyard.tags import PRODUCTION

if TYPE_CHECKING:
    from modelyard.registry.mlflow_registry import MlflowRegistry
    from modelyard.store.audit import AuditLog

# How long a reader waits for a mover's lock before it says nothing this time.
CONFIRM_TIMEOUT_S = 5.0


def read_pointer(
    registry: MlflowRegistry, audit: AuditLog, model: str, alias: str = PRODUCTION
) -> PointerCheck:
    """Where `model@alias` is, against the trail, as read now (no lock)."""
    last = audit.latest(model, alias)
    return check_pointer(
        model,
        alias,
        registry.alias_version(model, alias),
        None if last is None else last.to_version,
    )


def pointer(
    registry: MlflowRegistry,
    audit: AuditLog,
    model: str,
    alias: str = PRODUCTION,
    timeout_s: float = CONFIRM_TIMEOUT_S,
) -> PointerCheck | None:
    """Where `model@alias` is against the trail; an unrecorded position is confirmed under the
    promotion lock. None when a mover held the lock past `timeout_s` (a move in progress:
    look again later)."""
    from modelyard.store.lock import LockTimeout

    found = read_pointer(registry, audit, model, alias)
    if not found.tampered:
        return found
    try:
        with audit.promotion_lock(model, timeout_s=timeout_s):
            return read_pointer(registry, audit, model, alias)
    except LockTimeout:
        return None

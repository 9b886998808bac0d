"""What a prediction row is (`predictions.role`, the contract of `modelyard.store.models`), and
the one filter for "what users were answered" that every reader of the log shares.

- None (logged before rollouts) or "served": this version answered the client;
- "shadow": the challenger scored a copy of a request production answered (nobody saw it);
- "error": the version failed on that text (no label, no probabilities).
"""

from __future__ import annotations

from typing import Any

SERVED, SHADOW, ERROR = "served", "shadow", "error"


def answered(role: Any) -> Any:
    """The SQL condition on a `role` column: the row is an answer a client got."""
    from sqlalchemy import or_

    return or_(role.is_(None), role == SERVED)

"""A clean code commit for the tests: the work tree a test session runs from may have
uncommitted changes (a `-dirty` commit never repeats a version), so the session's trained
fixtures and the tests that retrain on them name one fixed commit instead."""

from __future__ import annotations

import pytest

CLEAN_COMMIT = "c0ffee" + "0" * 34


def pin_code_commit(patch: pytest.MonkeyPatch, commit: str = CLEAN_COMMIT) -> None:
    """The retrain's lineage key (`tasks.lineage`) sees `commit` as the code's commit."""
    import tasks.lineage

    patch.setattr(tasks.lineage, "code_commit", lambda fallback: commit)

"""Test doubles of the registry."""

from __future__ import annotations


class FakeRegistry:
    """Only the alias calls AuditLog.move makes (the real registry has tests of its own)."""

    def __init__(self) -> None:
        self.aliases: dict[tuple[str, str], str] = {}

    def alias_version(self, name: str, alias: str) -> str | None:
        return self.aliases.get((name, alias))

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self.aliases[(name, alias)] = version

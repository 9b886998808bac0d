"""What the platform keeps of an input text: all of it, a redacted copy, or nothing (its
SHA-256 is always kept, so feedback, de-duplication and drift can still match texts).

Redaction replaces, before anything is written: e-mail addresses, URLs, IP addresses (v4 and
v6), payment card numbers (13-19 digits, spaces or dashes allowed, Luhn-valid only, so order
numbers and dates survive), phone numbers (international or grouped national forms), and any
pattern in `privacy.extra_patterns`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("EMAIL", re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}\b")),
    ("URL", re.compile(r"\b(?:https?://|www\.)[^\s<>\"']+", re.IGNORECASE)),
    ("IP", re.compile(r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b")),
    ("IP", re.compile(r"\b(?:[0-9A-Fa-f]{1,4}:){2,7}[0-9A-Fa-f]{1,4}\b")),
)
_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
_PHONE = re.compile(
    r"(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?)?\d{2,4}(?:[\s.-]\d{2,4}){1,4}\b"
    r"|\+\d{8,15}\b"
)
_DATE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}")


def luhn(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        value = int(char)
        if i % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


@dataclass(frozen=True)
class Redactor:
    extra: tuple[str, ...] = ()

    def __call__(self, text: str) -> str:
        for label, pattern in _PATTERNS:
            text = pattern.sub(f"[{label}]", text)

        def card(match: re.Match[str]) -> str:
            digits = re.sub(r"\D", "", match.group())
            return "[CARD]" if 13 <= len(digits) <= 19 and luhn(digits) else match.group()

        text = _CARD.sub(card, text)

        def phone(match: re.Match[str]) -> str:
            found = match.group()
            digits = re.sub(r"\D", "", found)
            # A phone number has 8-15 digits and looks like one: an international prefix, an
            # area code in parentheses, or three or more groups; never a date.
            shaped = found.startswith("+") or "(" in found or len(re.split(r"[\s.-]", found)) >= 3
            if 8 <= len(digits) <= 15 and shaped and not _DATE.fullmatch(found):
                return "[PHONE]"
            return found

        text = _PHONE.sub(phone, text)
        for extra in self.extra:
            text = re.sub(extra, "[REDACTED]", text)
        return text


def protect(text: str, mode: str, redactor: Redactor) -> str | None:
    """The text as `mode` allows it to be stored (None: not at all)."""
    if mode == "full":
        return text
    if mode == "redacted":
        return redactor(text)
    return None


def protect_all(
    texts: Sequence[str],
    mode: str,
    redactor: Redactor,
    withheld: str = "[text withheld: privacy.mode is hashed]",
) -> list[str]:
    """For places that need some string (an MLflow input example)."""
    return [protect(text, mode, redactor) or withheld for text in texts]

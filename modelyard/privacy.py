"""What the platform keeps of an input text: all of it, a redacted copy, or nothing (its
SHA-256 is always kept, so feedback, de-duplication and drift can still match texts).

Redaction replaces, before anything is written: e-mail addresses, URLs, IP addresses (v4 and
v6), payment card numbers (13-19 digits, spaces or dashes allowed, Luhn-valid only, so order
numbers and dates survive), phone numbers (found by Google's libphonenumber, see `phone_spans`),
and any pattern in `privacy.extra_patterns`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("EMAIL", re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}\b")),
    ("URL", re.compile(r"\b(?:https?://|www\.)[^\s<>\"']+", re.IGNORECASE)),
    ("IP", re.compile(r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b")),
    ("IP", re.compile(r"\b(?:[0-9A-Fa-f]{1,4}:){2,7}[0-9A-Fa-f]{1,4}\b")),
)
_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
# The fewest digits of a number written with its country code: the shortest country code plus
# the shortest national number of that country (+43 and 4 digits; tests/unit/test_privacy.py
# checks it against libphonenumber's metadata).
INTERNATIONAL_MIN_DIGITS = 6
# A date needs no matcher to tell it is no phone number (the matcher, asked, says the same):
# 2026-11-28, 28.11.2026, 11/28/26.
_DAY, _MONTH = r"(?:0?[1-9]|[12]\d|3[01])", r"(?:0?[1-9]|1[0-2])"
_DATE = re.compile(
    rf"(?:19|20)\d\d([-./]){_MONTH}\1{_DAY}"
    rf"|(?:{_DAY}([-./]){_MONTH}|{_MONTH}([-./]){_DAY})(?:\2|\3)(?:19|20)?\d\d"
)


def luhn(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        value = int(char)
        if i % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


@cache
def _digit_run(region: str) -> re.Pattern[str]:
    """A run of at least as many digits as the shortest phone number `phone_spans` can find
    with this default region, each digit at most four non-word characters (spaces, dashes,
    dots, parentheses, slashes) from the next. libphonenumber's matcher reads only these runs
    and a little text around them: most texts hold none and cost one regular-expression scan."""
    from phonenumbers import PhoneMetadata

    metadata = PhoneMetadata.metadata_for_region(region)
    general = metadata.general_desc if metadata else None
    lengths = [n for n in general.possible_length if n > 0] if general else []
    fewest = min([INTERNATIONAL_MIN_DIGITS, *lengths])
    return re.compile(rf"\d(?:\W{{0,4}}\d){{{fewest - 1},}}")


def phone_spans(text: str, region: str) -> list[tuple[int, int]]:
    """Where `text` holds phone numbers, by libphonenumber's matcher with `region` as the
    country of numbers written without their country code.

    A number written in international form (`+44 7700 900123`, `011 44 20 7946 0958`) counts
    when its length is possible for its country: the `+` or international prefix says it is a
    phone number, and fictional or newly opened ranges (the UK's 07700 900xxx) fail stricter
    checks. A number in national form must be valid for `region` and grouped as that country
    groups its numbers, so that amounts, order numbers and dates written with digits survive."""
    from phonenumbers import Leniency, PhoneNumberMatcher

    spans = []
    for start, end in _windows(text, region):
        window = text[start:end]
        for match in PhoneNumberMatcher(window, region, leniency=Leniency.POSSIBLE):
            if _counts(match.raw_string, region):
                spans.append((start + match.start, start + match.end))
    return _merged(spans)


def _windows(text: str, region: str) -> list[tuple[int, int]]:
    """Each digit run with the context the matcher judges it by (a `+` or `(` before it, a
    letter that makes it part of a word, an extension after it)."""
    runs = _digit_run(region).finditer(text)
    return _merged(
        [(max(0, r.start() - 8), r.end() + 16) for r in runs if not _DATE.fullmatch(r.group())]
    )


def _counts(candidate: str, region: str) -> bool:
    """A possible number the matcher found: international form, or valid and grouped as its
    country writes it (the matcher forgets how a number was written: parsing it again tells)."""
    import phonenumbers
    from phonenumbers import Leniency, PhoneNumberMatcher
    from phonenumbers.phonenumber import CountryCodeSource

    written = phonenumbers.parse(candidate, region, keep_raw_input=True).country_code_source
    if written in (
        CountryCodeSource.FROM_NUMBER_WITH_PLUS_SIGN,
        CountryCodeSource.FROM_NUMBER_WITH_IDD,
    ):
        return True
    strict = PhoneNumberMatcher(candidate, region, leniency=Leniency.STRICT_GROUPING)
    return strict.has_next()


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping spans as one, in order."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _replaced(text: str, spans: list[tuple[int, int]], label: str) -> str:
    def pieces() -> Iterator[str]:
        last = 0
        for start, end in spans:
            yield text[last:start]
            yield label
            last = end
        yield text[last:]

    return "".join(pieces()) if spans else text


@dataclass(frozen=True)
class Redactor:
    extra: tuple[str, ...] = ()
    # The country of phone numbers written without their country code (ISO 3166-1 alpha-2).
    phone_region: str = "US"

    def __call__(self, text: str) -> str:
        for label, pattern in _PATTERNS:
            text = pattern.sub(f"[{label}]", text)

        def card(match: re.Match[str]) -> str:
            digits = re.sub(r"\D", "", match.group())
            return "[CARD]" if 13 <= len(digits) <= 19 and luhn(digits) else match.group()

        text = _CARD.sub(card, text)
        text = _replaced(text, phone_spans(text, self.phone_region), "[PHONE]")
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

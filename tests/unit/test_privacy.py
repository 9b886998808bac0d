"""The redaction table: each kind of personal data found and replaced, ordinary text (numbers,
dates, prices, order ids, words with @ or dots) untouched."""

import pytest

from modelyard.privacy import Redactor, luhn, protect, protect_all

REDACT = Redactor(extra=(r"\bEMP-\d{6}\b",))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("mail me at jane.doe+shop@example.co.uk today", "mail me at [EMAIL] today"),
        ("see https://shop.example.com/item?id=3 now", "see [URL] now"),
        ("or www.example.org/help", "or [URL]"),
        ("from 192.168.10.254 again", "from [IP] again"),
        ("v6 2001:db8:85a3:0:0:8a2e:370:7334 seen", "v6 [IP] seen"),
        ("card 4111 1111 1111 1111 declined", "card [CARD] declined"),
        ("card 5500-0000-0000-0004 ok", "card [CARD] ok"),
        ("call +44 20 7946 0958 please", "call [PHONE] please"),
        ("call (555) 123-4567 now", "call [PHONE] now"),
        ("call 030 1234 5678", "call [PHONE]"),
        ("badge EMP-123456 at the desk", "badge [REDACTED] at the desk"),
    ],
)
def test_each_pattern_is_found_and_replaced(text, expected):
    assert REDACT(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "The sound is superb, 10/10, bought it for $249.99 on 2026-11-28.",
        "Order 1234567890123 arrived (not a card: the Luhn check fails).",
        "Battery lasts 12 hours; screen 6.1 inches; version 3.17.2.",
        "Rated @home by my kid, 5 stars",
        "Room 101, floor 7, 3 of 4 people liked it",
    ],
)
def test_ordinary_text_is_untouched(text):
    assert REDACT(text) == text


def test_luhn_and_modes():
    assert luhn("4111111111111111") and not luhn("4111111111111112")
    text = "write to a@b.io"
    assert protect(text, "full", REDACT) == text
    assert protect(text, "redacted", REDACT) == "write to [EMAIL]"
    assert protect(text, "hashed", REDACT) is None
    assert protect_all([text], "hashed", REDACT) == ["[text withheld: privacy.mode is hashed]"]

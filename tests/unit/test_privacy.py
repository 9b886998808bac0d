"""The redaction table: each kind of personal data found and replaced, ordinary text (numbers,
dates, prices, order ids, words with @ or dots) untouched. Phone numbers of sixteen countries in
the forms people write them, national (with `privacy.phone_region` set to the country) and
international (whatever the region)."""

import pytest

from modelyard.config import ConfigError, Params, PrivacyParams
from modelyard.privacy import INTERNATIONAL_MIN_DIGITS, Redactor, luhn, protect, protect_all

REDACT = Redactor(extra=(r"\bEMP-\d{6}\b",))


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            # The report that started it: the phone number was stored as it was sent.
            "call me at +44 7700 900123 or mail jane.doe@example.com, card 4111 1111 1111 1111",
            "call me at [PHONE] or mail [EMAIL], card [CARD]",
        ),
        ("mail me at jane.doe+shop@example.co.uk today", "mail me at [EMAIL] today"),
        ("see https://shop.example.com/item?id=3 now", "see [URL] now"),
        ("or www.example.org/help", "or [URL]"),
        ("from 192.168.10.254 again", "from [IP] again"),
        ("v6 2001:db8:85a3:0:0:8a2e:370:7334 seen", "v6 [IP] seen"),
        ("card 4111 1111 1111 1111 declined", "card [CARD] declined"),
        ("card 5500-0000-0000-0004 ok", "card [CARD] ok"),
        ("call +44 20 7946 0958 please", "call [PHONE] please"),
        ("call (201) 555-0123 now", "call [PHONE] now"),
        ("badge EMP-123456 at the desk", "badge [REDACTED] at the desk"),
        ("two: 212-555-0198 and +49 30 12345678.", "two: [PHONE] and [PHONE]."),
    ],
)
def test_each_pattern_is_found_and_replaced(text, expected):
    assert REDACT(text) == expected


# (country, a number as people there write it at home)
NATIONAL = [
    ("US", "(212) 555-0198"),
    ("US", "212-555-0198"),
    ("US", "1-800-275-2273"),
    ("GB", "020 7946 0958"),
    ("GB", "07911 123456"),
    ("DE", "030 1234 5678"),
    ("DE", "0151 23456789"),
    ("FR", "06 12 34 56 78"),
    ("FR", "01 23 45 67 89"),
    ("IN", "098765 43210"),
    ("JP", "03-1234-5678"),
    ("JP", "090-1234-5678"),
    ("BR", "(11) 91234-5678"),
    ("AU", "0412 345 678"),
    ("AU", "(02) 9876 5432"),
    ("ES", "612 34 56 78"),
    ("IT", "333 123 4567"),
    ("IT", "06 1234 5678"),
    ("NL", "06-12345678"),
    ("MX", "55 1234 5678"),
    ("CN", "138 0013 8000"),
    ("KR", "010-1234-5678"),
    ("ZA", "082 123 4567"),
    ("NG", "0803 123 4567"),
]

INTERNATIONAL = [
    "+1 212-555-0198",
    "+44 7700 900123",  # a fictional (drama) range: not valid, still meant as a phone number
    "+44 (0)20 7946 0958",
    "+49 30 12345678",
    "+33 6 12 34 56 78",
    "+91 98765 43210",
    "+81 3-1234-5678",
    "+55 11 91234-5678",
    "+61 412 345 678",
    "+34 612 34 56 78",
    "+39 333 123 4567",
    "+31 6 12345678",
    "+52 55 1234 5678",
    "+86 138 0013 8000",
    "+82 10-1234-5678",
    "+27 82 123 4567",
    "+234 803 123 4567",
    "011 44 20 7946 0958",  # the US international prefix
]


@pytest.mark.parametrize("region, number", NATIONAL)
def test_national_numbers_are_found_with_their_region(region, number):
    assert Redactor(phone_region=region)(f"ring me on {number} tonight") == (
        "ring me on [PHONE] tonight"
    )


@pytest.mark.parametrize("number", INTERNATIONAL)
def test_international_numbers_are_found_whatever_the_region(number):
    for region in ("US", "DE"):
        if number.startswith("011") and region != "US":
            continue
        assert Redactor(phone_region=region)(f"ring me on {number}, thanks") == (
            "ring me on [PHONE], thanks"
        )


@pytest.mark.parametrize(
    "region, text",
    [
        ("US", "The sound is superb, 10/10, bought it for $249.99 on 2026-11-28."),
        ("US", "Order 1234567890123 arrived (not a card: the Luhn check fails)."),
        ("US", "Order #114-3941689-8772042 arrived on 11/28/2026 at 14:30."),
        ("US", "Invoice INV-2024-000123, total $1,299.00, paid 2026-01-15."),
        ("US", "order 4829301847 shipped, tracking 1Z999AA10123456784"),
        ("US", "between 2019-2024 they sold 1500000 units; ISBN 978-3-16-148410-0"),
        ("US", "Battery lasts 12 hours; screen 6.1 inches; version 3.17.2."),
        ("US", "Rated @home by my kid, 5 stars"),
        ("US", "Room 101, floor 7, 3 of 4 people liked it"),
        ("GB", "order 20240115 shipped on 28/11/2026, £1,299.99"),
        ("DE", "bezahlt 1.234.567,89 EUR am 28.11.2026 um 14:30, Bestellung 4711-0815"),
        ("FR", "payé 1 234 567,89 € le 28/11/2026, commande n° 2026 1128 77"),
        ("IN", "paid ₹1,23,456.00 on 28-11-2026, order 402-1234567-1234567"),
        ("JP", "2026年11月28日に¥12,800で購入、注文番号 503-1234567-8901234"),
    ],
)
def test_ordinary_text_is_untouched(region, text):
    assert Redactor(phone_region=region)(text) == text


def test_the_region_decides_numbers_without_a_country_code():
    french = "appelez le 06 12 34 56 78"
    assert Redactor(phone_region="US")(french) == french
    assert Redactor(phone_region="FR")(french) == "appelez le [PHONE]"
    assert Redactor(phone_region="US")("appelez le +33 6 12 34 56 78") == "appelez le [PHONE]"


def test_the_digit_floor_is_the_shortest_international_number():
    """Texts without a run of this many digits never reach the matcher: no country's code and
    shortest number are fewer digits."""
    import phonenumbers
    from phonenumbers import PhoneMetadata

    shortest = min(
        len(str(metadata.country_code)) + min(n for n in metadata.general_desc.possible_length)
        for metadata in map(PhoneMetadata.metadata_for_region, phonenumbers.SUPPORTED_REGIONS)
    )
    assert shortest == INTERNATIONAL_MIN_DIGITS


def test_phone_region_is_checked_and_reaches_the_redactor():
    params = Params().updated({"privacy.mode": "redacted", "privacy.phone_region": "gb"})
    assert params.privacy.phone_region == "GB"
    assert params.privacy.redactor()("ring 020 7946 0958") == "ring [PHONE]"
    assert PrivacyParams().phone_region == "US"
    with pytest.raises(ConfigError, match=r"privacy.phone_region: .*'UK' is not a region.*is GB"):
        Params().updated({"privacy.phone_region": "UK"})
    with pytest.raises(ConfigError, match="'Narnia' is not a region libphonenumber knows"):
        Params().updated({"privacy.phone_region": "Narnia"})


def test_luhn_and_modes():
    assert luhn("4111111111111111") and not luhn("4111111111111112")
    text = "write to a@b.io"
    assert protect(text, "full", REDACT) == text
    assert protect(text, "redacted", REDACT) == "write to [EMAIL]"
    assert protect(text, "hashed", REDACT) is None
    assert protect_all([text], "hashed", REDACT) == ["[text withheld: privacy.mode is hashed]"]

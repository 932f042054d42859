"""Host-to-host card checks: Luhn, expiry, and card data that never shows up in reprs or audits."""

from __future__ import annotations

from datetime import date

import pytest

from payments.cards import InvalidCard, luhn_ok, mask_pan, validate_card

TODAY = date(2026, 11, 25)
VISA = "4111111111111111"


def test_luhn() -> None:
    assert luhn_ok(VISA)
    assert luhn_ok("79927398713")
    assert not luhn_ok("4111111111111112")
    assert not luhn_ok("4111a11111111111")


def test_valid_card_is_masked_everywhere() -> None:
    card = validate_card("4111 1111 1111 1111", 12, 28, "123", "AIDA K", today=TODAY)
    assert card.exp_year == 2028
    assert card.masked == "411111******1111"
    text = repr(card) + str(card.audit_view())
    assert VISA not in text and "123" not in text.replace("411111", "")
    assert card.audit_view() == {"card": "411111******1111", "exp": "12/28"}


@pytest.mark.parametrize(
    ("number", "month", "year", "cvc", "message"),
    [
        ("4111111111111112", 12, 2028, "123", "checksum"),
        ("4111", 12, 2028, "123", "12 to 19 digits"),
        (VISA, 13, 2028, "123", "exp_month"),
        (VISA, 10, 2026, "123", "expired"),
        (VISA, 12, 2028, "12", "cvc"),
        (VISA, 12, 2099, "123", "too far"),
    ],
)
def test_invalid_cards(number: str, month: int, year: int, cvc: str, message: str) -> None:
    with pytest.raises(InvalidCard) as caught:
        validate_card(number, month, year, cvc, "", today=TODAY)
    assert message in caught.value.message
    assert number not in caught.value.message or len(number) < 6


def test_card_valid_through_the_end_of_its_month() -> None:
    assert validate_card(VISA, 11, 2026, "123", "", today=TODAY).exp_month == 11


def test_mask_short_input() -> None:
    assert mask_pan("1234") == "****"

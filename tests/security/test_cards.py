"""Card fields are ASCII digits: other Unicode digits pass str.isdigit() and int(), never a bank."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from payments.cards import InvalidCard, luhn_ok, validate_card
from tests.charging.api_world import ApiWorld, api_world

TODAY = date(2026, 11, 30)
VISA = "4111111111111111"
ARABIC_INDIC = VISA.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
FULLWIDTH = "".join(chr(0xFF10 + int(digit)) for digit in VISA)
SUPERSCRIPT = "²" * 16


@pytest.mark.parametrize("number", [ARABIC_INDIC, FULLWIDTH, SUPERSCRIPT], ids=repr)
def test_non_ascii_digits_are_no_card_number(number: str) -> None:
    assert not luhn_ok(number)
    with pytest.raises(InvalidCard):
        validate_card(number, 12, 2030, "123", "", today=TODAY)


@pytest.mark.parametrize(
    "cvc", ["²²²", "١٢٣", "".join(chr(0xFF11 + n) for n in range(3)), "12\x00"], ids=repr
)
def test_non_ascii_cvc_is_refused(cvc: str) -> None:
    with pytest.raises(InvalidCard):
        validate_card(VISA, 12, 2030, cvc, "", today=TODAY)


def test_a_holder_with_control_characters_is_refused() -> None:
    with pytest.raises(InvalidCard):
        validate_card(VISA, 12, 2030, "123", "A\x00B", today=TODAY)


def test_an_ascii_card_still_passes() -> None:
    assert validate_card("4111 1111-1111 1111", 12, 2030, "123", "A B", today=TODAY).masked == (
        "411111******1111"
    )


@pytest.fixture
async def world(
    db_sessions: async_sessionmaker[AsyncSession], temporal_env: WorkflowEnvironment
) -> AsyncIterator[ApiWorld]:
    async with api_world(db_sessions, temporal_env.client) as built:
        yield built


@pytest.mark.integration
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("card_number", SUPERSCRIPT),
        ("card_number", ARABIC_INDIC),
        ("card_number", FULLWIDTH),
        ("cvc", "²²²"),
    ],
)
async def test_h2h_with_unicode_digits_is_422_and_charges_nothing(
    world: ApiWorld, field: str, value: str
) -> None:
    client = await world.new_client(0)
    body = {
        "amount_tyiyn": 10_000,
        "card_number": VISA,
        "exp_month": 12,
        "exp_year": 2030,
        "cvc": "123",
        field: value,
    }
    response = await world.http.post(
        "/api/v1/payment/h2h-create",
        json=body,
        headers=world.client_headers(client, str(uuid.uuid4())),
    )
    assert response.status_code == 422, response.text
    assert value not in response.text  # card data is never echoed
    assert await world.held(client) == (0, 0)

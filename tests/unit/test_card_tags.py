"""Card idTags: one stored form, and never the form of a session id."""

from __future__ import annotations

import pytest
from ocpp.v16.enums import AuthorizationStatus

from domain.cards import card_lookup_tag, normalise_id_tag
from domain.identifiers import new_id
from gateway.cards import TagStanding, verdict


@pytest.mark.parametrize(
    ("printed", "stored"),
    [
        ("04a1b2c3", "04A1B2C3"),
        (" 04 A1 B2 C3 ", "04A1B2C3"),
        ("EVP-card.7", "EVP-CARD.7"),
        ("X" * 20, "X" * 20),
    ],
)
def test_a_printed_tag_has_one_stored_form(printed: str, stored: str) -> None:
    assert normalise_id_tag(printed) == stored
    assert card_lookup_tag(stored.lower()) == stored


@pytest.mark.parametrize("printed", ["", "  ", "X" * 21, "04\x00A1", "kärtchen", "04\x7fA1"])
def test_what_is_no_ocpp_idtag_has_no_stored_form(printed: str) -> None:
    assert normalise_id_tag(printed) is None


def test_a_session_id_is_never_a_stored_card_tag() -> None:
    for _ in range(1_000):
        session_id = new_id()
        if not session_id.isdigit():  # all digits: ~2e-12 per session (domain/cards.py)
            assert normalise_id_tag(session_id) != session_id


def _standing(**fields: object) -> TagStanding:
    values: dict[str, object] = {
        "session": False,
        "card": True,
        "blocked": False,
        "available_tyiyn": 5_000,
    }
    values.update(fields)
    return TagStanding(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, AuthorizationStatus.accepted),
        ({"available_tyiyn": 4_999}, AuthorizationStatus.invalid),
        ({"blocked": True}, AuthorizationStatus.blocked),
        ({"card": False}, AuthorizationStatus.invalid),
        ({"session": True, "card": False}, AuthorizationStatus.accepted),
    ],
)
def test_the_authorize_verdict(fields: dict[str, object], expected: AuthorizationStatus) -> None:
    assert verdict(_standing(**fields), 5_000) is expected

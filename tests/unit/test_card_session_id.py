"""A card-started session's id comes from its charger transaction's natural key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from domain.identifiers import card_session_id, is_session_id, session_id_for_key

T0 = datetime(2026, 11, 30, 12, 0, 0, 123_000, tzinfo=UTC)


def test_a_retried_start_names_the_same_session_whatever_offset_its_time_has() -> None:
    first = card_session_id("EVP-001", 1, "04A2B3C4", 1_000, T0)
    bishkek = T0.astimezone(timezone(timedelta(hours=6)))
    assert card_session_id("EVP-001", 1, "04A2B3C4", 1_000, bishkek) == first
    assert is_session_id(first) and len(first) == 16


def test_every_part_of_the_natural_key_makes_another_session() -> None:
    first = card_session_id("EVP-001", 1, "04A2B3C4", 1_000, T0)
    others = {
        card_session_id("EVP-002", 1, "04A2B3C4", 1_000, T0),
        card_session_id("EVP-001", 2, "04A2B3C4", 1_000, T0),
        card_session_id("EVP-001", 1, "04A2B3C5", 1_000, T0),
        card_session_id("EVP-001", 1, "04A2B3C4", 1_001, T0),
        card_session_id("EVP-001", 1, "04A2B3C4", 1_000, T0 + timedelta(milliseconds=1)),
    }
    assert first not in others and len(others) == 5
    assert first != session_id_for_key("EVP-001", "04A2B3C4")

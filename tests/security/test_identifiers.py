"""Identifier rules: every id that enters EvPower has a pattern and a length its column holds."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from domain.identifiers import (
    ID_TAG,
    PROVIDER_ID,
    SESSION_ID,
    STATION_ID,
    TOPUP_ID,
    IdentifierRule,
    IdTag,
    ProviderId,
    SessionId,
    StationId,
    TopUpId,
    has_control_characters,
    new_id,
    session_id_for_key,
    topup_id_for_key,
)

HOSTILE = [
    "",
    "EVP\x00",
    "\x00",
    "a\nb",
    "tab\there",
    "del\x7f",
    "c1\x85",
    "lone\ud800",
    "space here",
    "x" * 5_000,
    "٣٣",  # Arabic-Indic digits
    "²",
]
RULES: list[tuple[IdentifierRule, Any]] = [
    (STATION_ID, StationId),
    (ID_TAG, IdTag),
    (SESSION_ID, SessionId),
    (TOPUP_ID, TopUpId),
    (PROVIDER_ID, ProviderId),
]


@pytest.mark.parametrize(("rule", "annotated"), RULES, ids=[rule.name for rule, _ in RULES])
@pytest.mark.parametrize("value", HOSTILE, ids=repr)
def test_hostile_values_fail_both_the_function_and_the_pydantic_type(
    rule: IdentifierRule, annotated: Any, value: str
) -> None:
    assert not rule.matches(value)
    with pytest.raises(ValidationError):
        TypeAdapter(annotated).validate_python(value)


@pytest.mark.parametrize(
    ("rule", "value"),
    [
        (STATION_ID, "EVP-001"),
        (STATION_ID, "CP_7"),
        (ID_TAG, "04A2B3C4D5E6F7"),
        (SESSION_ID, new_id()),
        (SESSION_ID, session_id_for_key("client", "key")),
        (TOPUP_ID, new_id()),
        (TOPUP_ID, topup_id_for_key("client", "key")),
        (PROVIDER_ID, "1234567890"),
        (PROVIDER_ID, "ord-7.x_1:2"),
    ],
)
def test_our_own_and_real_world_ids_pass(rule: IdentifierRule, value: str) -> None:
    assert rule.matches(value)


@pytest.mark.parametrize("rule", [rule for rule, _ in RULES], ids=lambda rule: rule.name)
def test_the_longest_allowed_value_fits_the_rule_and_one_more_does_not(
    rule: IdentifierRule,
) -> None:
    assert rule.max_length <= 64  # every id column is String(64) or narrower
    longest = "a" * rule.max_length
    assert rule.matches(longest)
    assert not rule.matches(longest + "a")


def test_a_trailing_newline_is_not_accepted_by_the_anchors() -> None:
    assert not STATION_ID.matches("EVP-001\n")
    with pytest.raises(ValidationError):
        TypeAdapter(StationId).validate_python("EVP-001\n")


def test_control_characters_include_nul_c1_and_lone_surrogates() -> None:
    for value in ("\x00", "\x1f", "\x7f", "\x9f", "\ud800"):
        assert has_control_characters(value)
    assert not has_control_characters("Бишкек EVP-001 ²")

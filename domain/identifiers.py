"""Identifiers: what each kind of id may look like where it enters EvPower, and how ours are made.

Every identifier that arrives from outside (REST bodies, paths, queries and cursors, the
payment webhook, OCPP payloads) is checked against its pattern here before anything stores it
or starts a workflow with it, so the database never sees what it cannot store (a NUL byte, a
control character, a value longer than its column) and no workflow can retry such a value for
ever. Each pattern is plain ASCII with a maximum length no larger than its column.

The plain functions serve code without pydantic (the webhook parser, the gateway); the
`Annotated` types below serve FastAPI and pydantic models, and their pattern and length show
up in the OpenAPI document.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import Field

SESSION_ID_LENGTH = 16  # an OCPP 1.6 idTag holds at most 20 characters


@dataclass(frozen=True)
class IdentifierRule:
    """A documented shape for one kind of identifier."""

    name: str
    pattern: str  # anchored; the same text is used by `re` and by pydantic/OpenAPI
    max_length: int
    description: str

    def matches(self, value: object) -> bool:
        return (
            isinstance(value, str)
            and 0 < len(value) <= self.max_length
            and re.fullmatch(self.pattern, value) is not None
        )


# OCPP charge box identity (stations.id, String(64)): RFC 3986 unreserved characters, so it
# is safe in the `/ws/{id}` path and as an HTTP Basic user name (no ':').
STATION_ID = IdentifierRule(
    "station_id",
    r"^[A-Za-z0-9._~-]{1,64}$",
    64,
    "1-64 ASCII letters, digits, '.', '_', '~' or '-'",
)
# OCPP 1.6 IdToken is CiString20Type; RFID UIDs are hex, our RemoteStart tags are base32.
# Printable ASCII without space: no NUL, no control character, nothing PostgreSQL refuses.
ID_TAG = IdentifierRule(
    "id_tag",
    r"^[\x21-\x7e]{1,20}$",
    20,
    "1-20 printable ASCII characters without spaces (OCPP idTag)",
)
# Session ids are lower-case base32 (see new_id); at most 20 so they fit an idTag.
SESSION_ID = IdentifierRule(
    "session_id", r"^[a-z0-9]{1,20}$", 20, "1-20 lower-case ASCII letters or digits"
)
# Top-up ids are made like session ids; they are also the provider order_id we send.
TOPUP_ID = IdentifierRule(
    "topup_id", r"^[a-z0-9]{1,64}$", 64, "1-64 lower-case ASCII letters or digits"
)
# What the payment provider hands us (trans_id, order_id, invoice_id: String(64) columns).
# O!Dengi uses digits and letters; '.', '_', ':' and '-' leave room for other providers.
PROVIDER_ID = IdentifierRule(
    "provider_id",
    r"^[A-Za-z0-9._:-]{1,64}$",
    64,
    "1-64 ASCII letters, digits, '.', '_', ':' or '-'",
)
# Locations (locations.id, String(64)) are named like stations.
LOCATION_ID = IdentifierRule("location_id", r"^[A-Za-z0-9._~-]{1,64}$", 64, STATION_ID.description)
# The BIGINT columns' range: an integer query parameter outside it cannot name a row.
BIGINT_MAX = 2**63 - 1
INT4_MAX = 2**31 - 1


def is_station_id(value: object) -> bool:
    return STATION_ID.matches(value)


def is_id_tag(value: object) -> bool:
    return ID_TAG.matches(value)


def is_session_id(value: object) -> bool:
    return SESSION_ID.matches(value)


def is_topup_id(value: object) -> bool:
    return TOPUP_ID.matches(value)


def is_provider_id(value: object) -> bool:
    return PROVIDER_ID.matches(value)


def has_control_characters(value: str) -> bool:
    """NUL, C0/C1 controls, DEL and lone surrogates: nothing a text column or a log should hold."""
    return any(
        ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F or 0xD800 <= ord(ch) <= 0xDFFF for ch in value
    )


def _annotated(rule: IdentifierRule) -> Any:
    return Field(
        min_length=1,
        max_length=rule.max_length,
        pattern=rule.pattern,
        description=rule.description,
    )


StationId = Annotated[str, _annotated(STATION_ID)]
IdTag = Annotated[str, _annotated(ID_TAG)]
SessionId = Annotated[str, _annotated(SESSION_ID)]
TopUpId = Annotated[str, _annotated(TOPUP_ID)]
ProviderId = Annotated[str, _annotated(PROVIDER_ID)]
LocationId = Annotated[str, _annotated(LOCATION_ID)]


def _b32(raw: bytes) -> str:
    return base64.b32encode(raw).decode().rstrip("=").lower()[:SESSION_ID_LENGTH]


def new_id() -> str:
    """A fresh random id for a session or a top-up (short enough to be an OCPP idTag)."""
    return _b32(secrets.token_bytes(10))


def _id_for_key(client_id: str, key: str) -> str:
    return _b32(hashlib.sha256(f"{client_id}\x00{key}".encode()).digest())


def session_id_for_key(client_id: str, idempotency_key: str) -> str:
    """The same client and Idempotency-Key always name the same session (and workflow)."""
    return _id_for_key(client_id, idempotency_key)


def card_session_id(
    station_id: str, connector_id: int, id_tag: str, meter_start_wh: int, started_at: datetime
) -> str:
    """The session of a card-started transaction, from the transaction's natural key (what a
    retried StartTransaction repeats exactly), so every retry names the same session and
    workflow. Made like every session id (16 base32 characters); the `card` prefix keeps it
    apart from the ids made from an Idempotency-Key."""
    moment = started_at.astimezone(UTC).isoformat()
    key = f"card\x00{station_id}\x00{connector_id}\x00{id_tag}\x00{meter_start_wh}\x00{moment}"
    return _b32(hashlib.sha256(key.encode()).digest())


def topup_id_for_key(client_id: str, idempotency_key: str) -> str:
    """The same client and Idempotency-Key always name the same top-up (and workflow); the
    prefix keeps it apart from a session started with the same key."""
    return _id_for_key(client_id, f"topup:{idempotency_key}")

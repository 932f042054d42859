"""Identifiers: session ids short enough to be an OCPP idTag, derived from idempotency keys."""

from __future__ import annotations

import base64
import hashlib
import secrets

SESSION_ID_LENGTH = 16  # an OCPP 1.6 idTag holds at most 20 characters


def _b32(raw: bytes) -> str:
    return base64.b32encode(raw).decode().rstrip("=").lower()[:SESSION_ID_LENGTH]


def new_session_id() -> str:
    return _b32(secrets.token_bytes(10))


def session_id_for_key(client_id: str, idempotency_key: str) -> str:
    """The same client and Idempotency-Key always name the same session (and workflow)."""
    return _b32(hashlib.sha256(f"{client_id}\x00{idempotency_key}".encode()).digest())


def new_entity_id() -> str:
    """Ids of top-ups and other records that never travel over OCPP."""
    return _b32(secrets.token_bytes(10))

"""The StationChange workflow's contract with the operations API: its id and type, the
operator's change to a location, a station or a connector, and what it reports.

A charger key never crosses this boundary: the API hashes it (domain/charger_keys.py) and
the workflow carries only the keyed hash, so no key is ever in a workflow history.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

WORKFLOW_NAME = "StationChange"


class ChangeAction(StrEnum):
    """What an operator does; the same names as the operator audit's actions."""

    LOCATION_CREATE = "location.create"
    LOCATION_UPDATE = "location.update"
    STATION_CREATE = "station.create"
    STATION_UPDATE = "station.update"
    CONNECTOR_UPDATE = "connector.update"
    STATION_ROTATE_KEY = "station.rotate_key"


def station_change_workflow_id(target: str, action: ChangeAction, request_id: str) -> str:
    """`station-change:{target}:{verb}:{request}`, the target as the audit names it
    (`station:EVP-001`, `location:bishkek-1`, `station:EVP-001:connector:2`):
    `station-change:station:EVP-001:update:3f9a...`. Ids of stations and locations hold no
    ':', so the parts stay apart."""
    verb = action.value.partition(".")[2]
    return f"station-change:{target}:{verb}:{request_id}"


def key_ref(password_hash: str) -> str:
    """Names a stored key hash without repeating it: which request's key a change stored (every
    hash has its own salt, so two requests' hashes of one key differ)."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class StationChangeRequest:
    action: str  # a ChangeAction
    target: str  # as the audit names it: station:EVP-001, location:x, station:X:connector:2
    operator: str  # the token's subject
    reason: str
    location_id: str | None = None
    station_id: str | None = None
    connector_id: int | None = None
    # The fields the operator set (JSON values; coordinates as decimal strings). Creation:
    # every field of the new row but its key.
    changes: dict[str, Any] = field(default_factory=dict)
    # station.create and station.rotate_key: the new key's keyed hash, never the key.
    password_hash: str | None = None
    # station.rotate_key: how long the replaced key keeps logging in.
    key_grace_s: int | None = None
    # A digest of the HTTP request, so a retry with the same Idempotency-Key but another
    # body is told apart from the request that started this workflow.
    fingerprint: str = ""


@dataclass(frozen=True)
class StationChangeResult:
    outcome: str  # applied | refused
    # The change was in place already (a retried activity after its commit): nothing written.
    replayed: bool = False
    # refused: the domain error's code (location_exists, station_not_found, ...), which the
    # API answers with the same status as before these changes were workflows.
    code: str | None = None
    message: str = ""
    # station.rotate_key: until when the replaced key logs in.
    previous_key_valid_until: datetime | None = None
    fingerprint: str = ""
    # station.create, station.rotate_key: `key_ref` of the hash this workflow stored.
    key_ref: str | None = None

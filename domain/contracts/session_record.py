"""A charging session's public state, the one shape every layer derives its own from: the
workflow's `SessionView` extends it, the `record_session` activity writes it to the database
row, and the API's responses are built from it.

It travels in Temporal payloads (query and update results, the `record_session` activity's
argument), so field names stay byte for byte what recorded histories hold; a new field needs a
default, so that older payloads still decode.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any

from domain.tariff import Tariff


@dataclass(frozen=True)
class SessionRecord:
    """What a session is, as its owner, operators and the database know it."""

    session_id: str
    client_id: str
    station_id: str
    connector_id: int
    state: str
    reserved_tyiyn: int
    price_tyiyn_per_kwh: int = 0  # the tariff snapshot (0: before admission took it)
    energy_limit_wh: int = 0  # what the reservation buys at that price (0: not admitted yet)
    energy_wh: int = 0
    cost_tyiyn: int = 0
    refunded_tyiyn: int = 0
    transaction_id: int | None = None
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    stop_reason: str | None = None
    # What the meter check found (domain.meter_readings): a review reason, or a rebuilt reset.
    meter_note: str | None = None


SESSION_RECORD_FIELDS: tuple[str, ...] = tuple(field.name for field in fields(SessionRecord))


def record_fields(source: object) -> dict[str, Any]:
    """The record's fields as they stand on `source` (a record, a view that extends it, or any
    object with those attributes, such as the database row's mapping)."""
    return {name: getattr(source, name) for name in SESSION_RECORD_FIELDS}


def session_record(source: object) -> SessionRecord:
    """The record part of `source` alone (a `SessionView` carries workflow-only fields too)."""
    return SessionRecord(**record_fields(source))


def with_live_energy(record: SessionRecord, energy_wh: int | None) -> SessionRecord:
    """The record with energy and cost from a newer meter reading than the record holds: the
    workflow hears of the energy only every few minutes, the database has every sample. The
    cost follows the session's tariff, capped at the reservation as settlement caps it."""
    if energy_wh is None or energy_wh <= record.energy_wh or record.price_tyiyn_per_kwh <= 0:
        return record
    cost = Tariff(record.price_tyiyn_per_kwh).cost_tyiyn(
        energy_wh, reserved_tyiyn=record.reserved_tyiyn
    )
    return replace(record, energy_wh=energy_wh, cost_tyiyn=cost)

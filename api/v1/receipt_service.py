"""Builds a session's receipt from what is recorded: the session row, its station and location,
and the session's own ledger entries (op_keys `reserve:`, `capture:`, `release:` + session id).
Everything is read in the client's row-level-security scope, so a receipt is only ever built
from the caller's own session and money."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.client_scope import client_scope
from api.errors import ApiError
from api.v1.receipt_schemas import (
    ChargingReceipt,
    ReceiptLedgerEntry,
    ReceiptStation,
    ReceiptTariff,
    ReceiptTime,
)
from db.models import ChargingSessionRecord, LedgerEntry, Location, Station
from db.session_rows import own_session_row
from domain.energy import format_kwh
from domain.ledger import Operation
from domain.money import CURRENCY, format_som
from domain.sessions import FINAL_STATE_VALUES, SessionNotFound

TIME_ZONE = "Asia/Bishkek"
# The movements a session makes, in the order they happen.
SESSION_OPERATIONS = (Operation.RESERVE, Operation.CAPTURE, Operation.RELEASE)


def _local_zone() -> tzinfo:
    try:
        return ZoneInfo(TIME_ZONE)
    except ZoneInfoNotFoundError:
        # An image without tz data: Kyrgyzstan has kept UTC+6 without DST since 2005.
        return timezone(timedelta(hours=6), TIME_ZONE)


LOCAL_ZONE = _local_zone()


def session_op_keys(session_id: str) -> list[str]:
    """The op_keys of the session's movements (see workflows/charging_commands.ledger_movement)."""
    return [f"{operation.value}:{session_id}" for operation in SESSION_OPERATIONS]


class SessionNotFinal(ApiError):
    def __init__(self, state: str) -> None:
        super().__init__(
            409,
            "session_not_final",
            f"the session is {state}; its receipt exists once it has settled",
        )


def _time(moment: datetime | None) -> ReceiptTime | None:
    if moment is None:
        return None
    return ReceiptTime(utc=moment.astimezone(UTC), local=moment.astimezone(LOCAL_ZONE))


def _address(location: Location | None) -> str | None:
    if location is None:
        return None
    parts = [part.strip() for part in (location.address, location.city) if part and part.strip()]
    return ", ".join(parts) or None


def _entry(entry: LedgerEntry) -> ReceiptLedgerEntry:
    return ReceiptLedgerEntry(
        entry_id=entry.id,
        operation=entry.operation,
        op_key=entry.op_key,
        amount_tyiyn=entry.amount_tyiyn,
        amount=format_som(entry.amount_tyiyn),
        created_at=entry.created_at,
    )


def _total(entries: list[LedgerEntry], operation: Operation) -> int:
    return sum(entry.amount_tyiyn for entry in entries if entry.operation == operation.value)


def build_receipt(
    record: ChargingSessionRecord,
    station: Station | None,
    location: Location | None,
    entries: list[LedgerEntry],
) -> ChargingReceipt:
    """The money is the ledger's (what was held, captured and released), never a figure the
    session row repeats: the receipt agrees with the balance history by construction."""
    reserved = _total(entries, Operation.RESERVE)
    captured = _total(entries, Operation.CAPTURE)
    released = _total(entries, Operation.RELEASE)
    price = record.price_tyiyn_per_kwh
    return ChargingReceipt(
        session_id=record.id,
        state=record.state,
        stop_reason=record.stop_reason,
        station=ReceiptStation(
            station_id=record.station_id,
            name=(station.name if station is not None and station.name else record.station_id),
            location=location.name if location is not None else None,
            address=_address(location),
        ),
        connector_id=record.connector_id,
        time_zone=TIME_ZONE,
        started_at=_time(record.started_at),
        stopped_at=_time(record.stopped_at),
        energy_wh=record.energy_wh,
        energy_kwh=format_kwh(record.energy_wh),
        tariff=ReceiptTariff(
            price_tyiyn_per_kwh=price, price_per_kwh=format_som(price), currency=CURRENCY
        ),
        currency=CURRENCY,
        reserved_tyiyn=reserved,
        reserved=format_som(reserved),
        cost_tyiyn=captured,
        cost=format_som(captured),
        refunded_tyiyn=released,
        refunded=format_som(released),
        ledger_entries=[_entry(entry) for entry in entries],
    )


async def load_receipt(
    db_sessions: async_sessionmaker[AsyncSession], client_id: str, session_id: str
) -> ChargingReceipt:
    """404 for an unknown or someone else's session (they look the same), 409 while live."""
    async with client_scope(db_sessions, client_id) as session:
        record = await own_session_row(session, client_id, session_id)
        if record is None:
            raise SessionNotFound(f"no charging session {session_id!r}")
        if record.state not in FINAL_STATE_VALUES:
            raise SessionNotFinal(record.state)
        station = await session.get(Station, record.station_id)
        location = (
            await session.get(Location, station.location_id)
            if station is not None and station.location_id is not None
            else None
        )
        order = {operation.value: rank for rank, operation in enumerate(SESSION_OPERATIONS)}
        entries = sorted(
            await session.scalars(
                select(LedgerEntry).where(
                    LedgerEntry.op_key.in_(session_op_keys(session_id)),
                    LedgerEntry.client_id == client_id,
                )
            ),
            key=lambda entry: (order.get(entry.operation, len(order)), entry.id),
        )
    return build_receipt(record, station, location, entries)

"""The revenue report's one query: the ledger's session settlements in a period, summed per
day, station or location, with the energy of the billed sessions.

Money comes from the ledger only: the entries a ChargingSession makes when it settles
(op_key `capture:{session_id}` and `release:{session_id}`, workflows/charging_commands.py),
each counted in the period and on the day (Asia/Bishkek) it was written. A session's energy
and its count go with its capture, so every figure of a row comes from the same entries.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Date, Select, cast, func, null, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.sql.elements import ColumnElement

from api.v1.ops.report_period import Period
from api.v1.receipt_service import TIME_ZONE
from db.models import ChargingSessionRecord, LedgerEntry, Location, Station
from domain.ledger import Operation


class GroupBy(StrEnum):
    DAY = "day"
    STATION = "station"
    LOCATION = "location"


@dataclass(frozen=True)
class RevenueGroup:
    key: str | None  # the day (YYYY-MM-DD), station id or location id (None: no location)
    name: str | None  # the station's or location's name
    captured_tyiyn: int
    released_tyiyn: int
    energy_wh: int
    sessions: int


def _sum_of(operation: Operation, value: QueryableAttribute[int]) -> ColumnElement[int]:
    return func.coalesce(func.sum(value).filter(LedgerEntry.operation == operation.value), 0)


def _query(period: Period, group_by: GroupBy) -> Select[Any]:
    key: ColumnElement[Any]
    name: ColumnElement[Any]
    if group_by is GroupBy.DAY:
        key = cast(func.timezone(TIME_ZONE, LedgerEntry.created_at), Date)
        name = null()
    elif group_by is GroupBy.STATION:
        key = ChargingSessionRecord.station_id.expression
        name = func.max(Station.name)
    else:
        key = Station.location_id.expression
        name = func.max(Location.name)
    captured = _sum_of(Operation.CAPTURE, LedgerEntry.amount_tyiyn)
    return (
        select(
            key.label("key"),
            name.label("name"),
            captured.label("captured"),
            _sum_of(Operation.RELEASE, LedgerEntry.amount_tyiyn).label("released"),
            _sum_of(Operation.CAPTURE, ChargingSessionRecord.energy_wh).label("energy"),
            func.count().filter(LedgerEntry.operation == Operation.CAPTURE.value).label("billed"),
        )
        .join(ChargingSessionRecord, ChargingSessionRecord.id == LedgerEntry.reference)
        .outerjoin(Station, Station.id == ChargingSessionRecord.station_id)
        .outerjoin(Location, Location.id == Station.location_id)
        .where(
            LedgerEntry.operation.in_([Operation.CAPTURE.value, Operation.RELEASE.value]),
            # Only the session's own settlement entries (a future review refund has its own key).
            LedgerEntry.op_key == LedgerEntry.operation + ":" + LedgerEntry.reference,
            LedgerEntry.created_at >= period.start,
            LedgerEntry.created_at < period.end,
        )
        .group_by(key)
        .order_by(key.asc().nulls_last())
    )


async def revenue_groups(db: AsyncSession, period: Period, group_by: GroupBy) -> list[RevenueGroup]:
    rows = await db.execute(_query(period, group_by))
    return [
        RevenueGroup(
            key=None if row.key is None else str(row.key),
            name=row.name,
            captured_tyiyn=int(row.captured),
            released_tyiyn=int(row.released),
            energy_wh=int(row.energy),
            sessions=int(row.billed),
        )
        for row in rows
    ]

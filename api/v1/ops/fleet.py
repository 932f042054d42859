"""`GET /ops/stations`: the fleet as an operator sees it — every station, online or not, with
its charger's identity and each connector's status and live session."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import DbSession
from api.errors import ApiError
from api.ops_audit import audit_note
from db.models import ChargingSessionRecord, Connector, Location, Station, StationConnection
from domain.sessions import LIVE_STATES

router = APIRouter()

MAX_OFFLINE_MIN = 60 * 24 * 366


class FleetConnector(BaseModel):
    connector_id: int
    status: str
    error_code: str
    status_at: datetime | None
    session_id: str | None  # the live session on it (pending, starting, charging, stopping)
    # This connector's own price in tyiyn per kWh (None: the station's), and what a session
    # started on it now is billed at.
    price_tyiyn_per_kwh: int | None
    effective_price_tyiyn_per_kwh: int


class FleetStation(BaseModel):
    id: str
    name: str
    location_id: str | None
    location_name: str | None
    registration_status: str
    online: bool
    connected_at: datetime | None
    gateway_queue: str | None
    last_seen_at: datetime | None
    # Minutes since the charger was last heard from, for an offline one (None: never seen).
    offline_for_min: int | None
    vendor: str | None
    model: str | None
    serial_number: str | None
    firmware_version: str | None
    price_tyiyn_per_kwh: int
    connectors: list[FleetConnector]


class Fleet(BaseModel):
    items: list[FleetStation]
    online: int
    offline: int


class OnlineStatus(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


def _query(
    location: str | None, status: OnlineStatus | None, offline_since: datetime | None
) -> Select[Station, StationConnection, str]:  # outer joins: the last two may be None
    query = (
        select(Station, StationConnection, Location.name)
        .outerjoin(StationConnection, StationConnection.station_id == Station.id)
        .outerjoin(Location, Location.id == Station.location_id)
        .order_by(Station.id)
    )
    if location is not None:
        query = query.where(Station.location_id == location)
    if status is OnlineStatus.ONLINE:
        query = query.where(StationConnection.station_id.is_not(None))
    elif status is OnlineStatus.OFFLINE or offline_since is not None:
        query = query.where(StationConnection.station_id.is_(None))
    if offline_since is not None:
        query = query.where(Station.last_seen_at.is_(None) | (Station.last_seen_at < offline_since))
    return query


async def _connectors(
    db: AsyncSession, station_prices: dict[str, int]
) -> dict[str, list[FleetConnector]]:
    """Each station's connectors; `station_prices` (station id -> its price) prices those
    without one of their own."""
    station_ids = list(station_prices)
    if not station_ids:
        return {}
    live = {
        (row.station_id, row.connector_id): row.id
        for row in await db.execute(
            select(
                ChargingSessionRecord.station_id,
                ChargingSessionRecord.connector_id,
                ChargingSessionRecord.id,
            ).where(
                ChargingSessionRecord.station_id.in_(station_ids),
                ChargingSessionRecord.state.in_(sorted(LIVE_STATES)),
            )
        )
    }
    by_station: dict[str, list[FleetConnector]] = defaultdict(list)
    rows = await db.scalars(
        select(Connector)
        .where(Connector.station_id.in_(station_ids))
        .order_by(Connector.station_id, Connector.connector_id)
    )
    for connector in rows:
        by_station[connector.station_id].append(
            FleetConnector(
                connector_id=connector.connector_id,
                status=connector.status,
                error_code=connector.error_code,
                status_at=connector.status_at,
                session_id=live.get((connector.station_id, connector.connector_id)),
                price_tyiyn_per_kwh=connector.price_tyiyn_per_kwh,
                effective_price_tyiyn_per_kwh=(
                    connector.price_tyiyn_per_kwh or station_prices[connector.station_id]
                ),
            )
        )
    return by_station


@router.get("/stations")
async def fleet(
    request: Request,
    db: DbSession,
    location: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    status: OnlineStatus | None = None,
    offline_for_min: Annotated[int | None, Query(ge=0, le=MAX_OFFLINE_MIN)] = None,
) -> Fleet:
    """Every station (onboarding ones included): online when a gateway holds its websocket
    now; `offline_for_min=N` keeps those offline and silent for more than N minutes."""
    audit_note(request).action = "stations.list"
    now = datetime.now(UTC)
    offline_since = None
    if offline_for_min is not None:
        if status is OnlineStatus.ONLINE:
            raise ApiError(
                422, "contradictory_filters", "offline_for_min selects offline stations only"
            )
        offline_since = now - timedelta(minutes=offline_for_min)
    rows = (await db.execute(_query(location, status, offline_since))).all()
    connectors = await _connectors(
        db, {station.id: station.price_tyiyn_per_kwh for station, _, _ in rows}
    )
    items = [
        FleetStation(
            id=station.id,
            name=station.name,
            location_id=station.location_id,
            location_name=location_name,
            registration_status=station.registration_status,
            online=connection is not None,
            connected_at=connection.connected_at if connection else None,
            gateway_queue=connection.gateway_queue if connection else None,
            last_seen_at=station.last_seen_at,
            offline_for_min=None if connection else _minutes_since(station.last_seen_at, now),
            vendor=station.vendor,
            model=station.model,
            serial_number=station.serial_number,
            firmware_version=station.firmware_version,
            price_tyiyn_per_kwh=station.price_tyiyn_per_kwh,
            connectors=connectors.get(station.id, []),
        )
        for station, connection, location_name in rows
    ]
    online = sum(1 for item in items if item.online)
    return Fleet(items=items, online=online, offline=len(items) - online)


def _minutes_since(seen: datetime | None, now: datetime) -> int | None:
    return None if seen is None else max(0, int((now - seen).total_seconds() // 60))

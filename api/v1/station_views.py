"""Read models of stations, connectors and locations, and the queries that fill them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Connector, Location, Station, StationConnection
from domain.money import CURRENCY, format_som

# Stations still being onboarded are not shown to drivers.
VISIBLE_REGISTRATION = "accepted"
AVAILABLE = "Available"


class ConnectorView(BaseModel):
    connector_id: int
    status: str
    error_code: str
    status_at: datetime | None
    # What the app needs for a "start" button: the station is online and the plug is free.
    available: bool
    # What a session started on this connector now costs: its own price, else the station's.
    price_tyiyn_per_kwh: int


class StationView(BaseModel):
    id: str
    name: str
    location_id: str | None
    online: bool
    connected_at: datetime | None
    last_seen_at: datetime | None
    price_tyiyn_per_kwh: int
    price_per_kwh: str
    currency: str
    connectors: list[ConnectorView]


class LocationView(BaseModel):
    id: str
    name: str
    address: str
    city: str
    # Coordinates are not money: plain JSON numbers are what map clients expect.
    latitude: float | None
    longitude: float | None
    stations: list[StationView]


async def load_stations(
    session: AsyncSession,
    *,
    station_id: str | None = None,
    location_ids: Sequence[str] | None = None,
) -> list[StationView]:
    query = (
        select(Station, StationConnection.connected_at)
        .outerjoin(StationConnection, StationConnection.station_id == Station.id)
        .where(Station.registration_status == VISIBLE_REGISTRATION)
        .order_by(Station.id)
    )
    if station_id is not None:
        query = query.where(Station.id == station_id)
    if location_ids is not None:
        query = query.where(Station.location_id.in_(location_ids))
    rows = (await session.execute(query)).all()
    if not rows:
        return []
    connectors: dict[str, list[Connector]] = defaultdict(list)
    connector_rows = await session.scalars(
        select(Connector)
        .where(Connector.station_id.in_([station.id for station, _ in rows]))
        .order_by(Connector.station_id, Connector.connector_id)
    )
    for connector in connector_rows:
        connectors[connector.station_id].append(connector)
    return [
        _station_view(station, connected_at, connectors[station.id])
        for station, connected_at in rows
    ]


async def load_locations(session: AsyncSession) -> list[LocationView]:
    locations = (
        await session.scalars(select(Location).where(Location.enabled).order_by(Location.id))
    ).all()
    stations = await load_stations(session, location_ids=[location.id for location in locations])
    by_location: dict[str | None, list[StationView]] = defaultdict(list)
    for station in stations:
        by_location[station.location_id].append(station)
    return [
        LocationView(
            id=location.id,
            name=location.name,
            address=location.address,
            city=location.city,
            latitude=float(location.latitude) if location.latitude is not None else None,
            longitude=float(location.longitude) if location.longitude is not None else None,
            stations=by_location[location.id],
        )
        for location in locations
    ]


def _station_view(
    station: Station, connected_at: datetime | None, connectors: list[Connector]
) -> StationView:
    online = connected_at is not None
    return StationView(
        id=station.id,
        name=station.name,
        location_id=station.location_id,
        online=online,
        connected_at=connected_at,
        last_seen_at=station.last_seen_at,
        price_tyiyn_per_kwh=station.price_tyiyn_per_kwh,
        price_per_kwh=format_som(station.price_tyiyn_per_kwh),
        currency=CURRENCY,
        connectors=[
            ConnectorView(
                connector_id=connector.connector_id,
                status=connector.status,
                error_code=connector.error_code,
                status_at=connector.status_at,
                available=online and connector.status == AVAILABLE,
                price_tyiyn_per_kwh=connector.price_tyiyn_per_kwh or station.price_tyiyn_per_kwh,
            )
            for connector in connectors
        ],
    )

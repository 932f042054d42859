"""What the station and location management routes answer."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Connector, Location, Station
from db.stations_admin import DISABLED_REGISTRATION


class ConnectorDetail(BaseModel):
    connector_id: int
    # This connector's own price; None: the station's.
    price_tyiyn_per_kwh: int | None
    # What a session started on it now is billed at.
    effective_price_tyiyn_per_kwh: int
    current_type: str | None
    max_power_w: int | None


class StationDetail(BaseModel):
    id: str
    name: str
    location_id: str | None
    price_tyiyn_per_kwh: int
    registration_status: str
    enabled: bool
    connectors: list[ConnectorDetail]


class NewStationDetail(StationDetail):
    # Shown once: only its keyed hash is stored, and the audit masks it.
    authorization_key: str
    key_generated: bool


class LocationDetail(BaseModel):
    id: str
    name: str
    address: str
    city: str
    latitude: Decimal | None
    longitude: Decimal | None
    enabled: bool


def location_detail(location: Location) -> LocationDetail:
    return LocationDetail.model_validate(location, from_attributes=True)  # the row's own fields


async def station_detail(session: AsyncSession, station: Station) -> StationDetail:
    connectors = await session.scalars(
        select(Connector).where(Connector.station_id == station.id).order_by(Connector.connector_id)
    )
    return StationDetail(
        id=station.id,
        name=station.name,
        location_id=station.location_id,
        price_tyiyn_per_kwh=station.price_tyiyn_per_kwh,
        registration_status=station.registration_status,
        enabled=station.registration_status != DISABLED_REGISTRATION,
        connectors=[
            ConnectorDetail(
                connector_id=connector.connector_id,
                price_tyiyn_per_kwh=connector.price_tyiyn_per_kwh,
                effective_price_tyiyn_per_kwh=(
                    connector.price_tyiyn_per_kwh or station.price_tyiyn_per_kwh
                ),
                current_type=connector.current_type,
                max_power_w=connector.max_power_w,
            )
            for connector in connectors
        ],
    )

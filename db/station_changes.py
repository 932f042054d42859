"""Operators' changes to locations, stations and connectors, inside the caller's transaction.

Each raises a domain error with its own code (the API's 404/409/422) and writes nothing then.
Rules: a station that ever had a session is never deleted (disabled instead, through its
registration); a connector that had a session is never removed; a location is only disabled
once none of its stations is enabled; a station cannot join a disabled location.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ChargingSessionRecord, Connector, Location, Station
from db.stations_admin import (
    DISABLED_REGISTRATION,
    ENABLED_REGISTRATION,
    InvalidStationInput,
    LocationNotFound,
    StationExists,
)
from domain.errors import Conflict, DomainError, InvalidInput
from domain.sessions import ConnectorNotFound, StationNotFound


class LocationExists(Conflict):
    code = "location_exists"


class LocationInUse(Conflict):
    code = "location_in_use"


class LocationDisabled(Conflict):
    code = "location_disabled"


class ConnectorHasSessions(Conflict):
    code = "connector_has_sessions"


class NullNotAllowed(InvalidInput):
    code = "null_not_allowed"


class NothingToChange(InvalidInput):
    code = "nothing_to_change"


# Every refusal of a change, by its code: the StationChange workflow reports a refusal by code
# and the API raises the same error again, so it answers with the same status as ever.
REFUSALS: dict[str, type[DomainError]] = {
    cls.code: cls
    for cls in (
        LocationNotFound,
        StationNotFound,
        ConnectorNotFound,
        LocationExists,
        LocationInUse,
        LocationDisabled,
        ConnectorHasSessions,
        NullNotAllowed,
        NothingToChange,
        InvalidStationInput,
        StationExists,
    )
}

_NOT_NULL = frozenset({"name", "address", "city", "enabled", "price_tyiyn_per_kwh", "connectors"})


def check_changes(changes: Mapping[str, Any]) -> None:
    if not changes:
        raise NothingToChange("the body changes nothing (only a reason)")
    nulls = sorted(name for name, value in changes.items() if value is None and name in _NOT_NULL)
    if nulls:
        raise NullNotAllowed(f"{', '.join(nulls)} cannot be null")


async def create_location(session: AsyncSession, location_id: str, **fields: Any) -> Location:
    if await session.get(Location, location_id) is not None:
        raise LocationExists(f"location {location_id!r} already exists")
    location = Location(id=location_id, enabled=True, **fields)
    session.add(location)
    await session.flush()
    return location


async def update_location(
    session: AsyncSession, location_id: str, changes: Mapping[str, Any]
) -> Location:
    check_changes(changes)
    location = await session.get(Location, location_id, with_for_update=True)
    if location is None:
        raise LocationNotFound(f"no location {location_id}")
    if changes.get("enabled") is False:
        enabled_stations = await session.scalars(
            select(Station.id).where(
                Station.location_id == location_id,
                Station.registration_status != DISABLED_REGISTRATION,
            )
        )
        busy = list(enabled_stations)
        if busy:
            raise LocationInUse(
                f"location {location_id!r} still has enabled stations: {', '.join(busy)}"
            )
    for name, value in changes.items():
        setattr(location, name, value)
    await session.flush()
    return location


async def _sessions_on(session: AsyncSession, station_id: str, from_connector: int) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(ChargingSessionRecord)
        .where(
            ChargingSessionRecord.station_id == station_id,
            ChargingSessionRecord.connector_id >= from_connector,
        )
    )
    return int(count or 0)


async def _resize(session: AsyncSession, station_id: str, wanted: int) -> None:
    numbers = list(
        await session.scalars(
            select(Connector.connector_id).where(Connector.station_id == station_id)
        )
    )
    have = max(numbers, default=0)
    if wanted > have:
        session.add_all(
            Connector(station_id=station_id, connector_id=number)
            for number in range(have + 1, wanted + 1)
        )
    elif wanted < have:
        if await _sessions_on(session, station_id, wanted + 1):
            raise ConnectorHasSessions(
                f"connectors above {wanted} of {station_id!r} have sessions; disable them "
                "with ChangeAvailability instead"
            )
        await session.execute(
            delete(Connector).where(
                Connector.station_id == station_id, Connector.connector_id > wanted
            )
        )


async def _check_location(
    session: AsyncSession, station: Station, changes: Mapping[str, Any]
) -> None:
    """An enabled station stands only in an enabled location (drivers see both or neither)."""
    location_id = changes.get("location_id", station.location_id)
    enabled = changes.get("enabled", station.registration_status != DISABLED_REGISTRATION)
    if location_id is None or ("location_id" not in changes and "enabled" not in changes):
        return
    location = await session.get(Location, location_id)
    if location is None:
        raise LocationNotFound(f"no location {location_id}")
    if enabled and not location.enabled:
        raise LocationDisabled(f"location {location_id!r} is disabled")


async def update_station(
    session: AsyncSession, station_id: str, changes: Mapping[str, Any]
) -> Station:
    check_changes(changes)
    station = await session.get(Station, station_id, with_for_update=True)
    if station is None:
        raise StationNotFound(f"no station {station_id}")
    await _check_location(session, station, changes)
    if "connectors" in changes:
        await _resize(session, station_id, changes["connectors"])
    for name, value in changes.items():
        if name == "enabled":
            station.registration_status = ENABLED_REGISTRATION if value else DISABLED_REGISTRATION
        elif name != "connectors":
            setattr(station, name, value)
    await session.flush()
    return station


async def set_connector_price(
    session: AsyncSession, station_id: str, connector_id: int, price: int | None
) -> Connector:
    """The connector's own price (None: its station's) for sessions started from now on; a
    session that started already keeps the price it snapshotted."""
    connector = await session.get(Connector, (station_id, connector_id), with_for_update=True)
    if connector is None:
        if await session.get(Station, station_id) is None:
            raise StationNotFound(f"no station {station_id}")
        raise ConnectorNotFound(f"station {station_id!r} has no connector {connector_id}")
    connector.price_tyiyn_per_kwh = price
    await session.flush()
    return connector

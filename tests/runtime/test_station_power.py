"""`evpower stations add` records what the connectors can deliver (it bounds billing)."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.stations import LocateStation, StationDirectory
from db.models import Connector
from db.stations_admin import InvalidStationInput, create_station
from domain.meter_readings import DEFAULT_MAX_POWER_W
from gateway.auth import ChargerKeys

pytestmark = pytest.mark.integration

KEYS = ChargerKeys(b"station-power-pepper-0123456789abcdef")


async def test_connectors_keep_their_type_and_power_and_sessions_see_it(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    await create_station(
        db_sessions,
        KEYS,
        station_id="PWR-1",
        connectors=2,
        price_tyiyn_per_kwh=1_500,
        current_type="DC",
        max_power_w=150_000,
    )
    await create_station(
        db_sessions,
        KEYS,
        station_id="PWR-2",
        connectors=1,
        price_tyiyn_per_kwh=1_500,
        current_type="AC",
    )
    async with db_sessions() as session:
        connector = await session.get(Connector, ("PWR-1", 2))
        assert connector is not None
        assert (connector.current_type, connector.max_power_w) == ("DC", 150_000)
        configured = await StationDirectory().locate(session, LocateStation("PWR-1", 1))
        by_type = await StationDirectory().locate(session, LocateStation("PWR-2", 1))
    assert configured.max_power_w == 150_000
    assert by_type.max_power_w == DEFAULT_MAX_POWER_W["AC"]


@pytest.mark.parametrize(("current_type", "power"), [("XY", None), (None, 0), ("DC", 10**9)])
async def test_an_impossible_configuration_is_refused(
    db_sessions: async_sessionmaker[AsyncSession], current_type: str | None, power: int | None
) -> None:
    with pytest.raises(InvalidStationInput):
        await create_station(
            db_sessions,
            KEYS,
            station_id="PWR-X",
            connectors=1,
            price_tyiyn_per_kwh=1_500,
            current_type=current_type,
            max_power_w=power,
        )

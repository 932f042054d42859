"""Stations and locations over REST, and the locations stream fed by PostgreSQL NOTIFY."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
import websockets
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from db.models import Connector, Location, Station, StationConnection

pytestmark = pytest.mark.integration


@pytest.fixture
async def network(db_sessions) -> None:
    """One location; EVP-001 online (connector 1 free, 2 charging), EVP-002 offline,
    EVP-NEW still pending registration."""
    async with db_sessions() as session, session.begin():
        session.add(
            Location(
                id="bishkek-1",
                name="Ala-Too",
                address="Chuy 150",
                city="Bishkek",
                latitude=Decimal("42.876400"),
                longitude=Decimal("74.603700"),
            )
        )
        await session.flush()
        for station_id, status in (
            ("EVP-001", "accepted"),
            ("EVP-002", "accepted"),
            ("EVP-NEW", "pending"),
        ):
            session.add(
                Station(
                    id=station_id,
                    location_id="bishkek-1",
                    name=f"Station {station_id}",
                    price_tyiyn_per_kwh=1_250,
                    registration_status=status,
                )
            )
        await session.flush()
        session.add_all(
            [
                Connector(station_id="EVP-001", connector_id=1, status="Available"),
                Connector(station_id="EVP-001", connector_id=2, status="Charging"),
                Connector(station_id="EVP-002", connector_id=1, status="Available"),
                StationConnection(
                    station_id="EVP-001",
                    gateway_queue="gateway-test",
                    connected_at=datetime(2026, 1, 1, tzinfo=UTC),
                ),
            ]
        )


async def test_station_list_shows_connectors_prices_and_who_is_online(
    client: httpx.AsyncClient, network
) -> None:
    response = await client.get("/api/v1/stations")
    assert response.status_code == 200
    stations = {station["id"]: station for station in response.json()["stations"]}
    assert set(stations) == {"EVP-001", "EVP-002"}
    online = stations["EVP-001"]
    assert online["online"] is True
    assert online["price_tyiyn_per_kwh"] == 1_250
    assert online["price_per_kwh"] == "12.50"
    assert [(c["connector_id"], c["status"], c["available"]) for c in online["connectors"]] == [
        (1, "Available", True),
        (2, "Charging", False),
    ]
    offline = stations["EVP-002"]
    assert offline["online"] is False
    # Reported Available, but nobody can start on a station that is not connected.
    assert offline["connectors"][0]["available"] is False


async def test_station_status_and_unknown_station(client: httpx.AsyncClient, network) -> None:
    response = await client.get("/api/v1/stations/EVP-001/status")
    assert response.status_code == 200
    assert response.json()["online"] is True
    for unknown in ("EVP-404", "EVP-NEW"):
        missing = await client.get(f"/api/v1/stations/{unknown}/status")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"


async def test_locations_group_stations(client: httpx.AsyncClient, network) -> None:
    response = await client.get("/api/v1/locations")
    assert response.status_code == 200
    (location,) = response.json()["locations"]
    assert location["id"] == "bishkek-1"
    assert location["latitude"] == pytest.approx(42.8764)
    assert [station["id"] for station in location["stations"]] == ["EVP-001", "EVP-002"]


async def _notify(engine: AsyncEngine, payload: dict[str, object]) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            text("SELECT pg_notify('station_status', :payload)"), {"payload": json.dumps(payload)}
        )


async def _listeners(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int(
            (
                await connection.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE query LIKE 'LISTEN%station_status%' AND pid <> pg_backend_pid()"
                    )
                )
            ).scalar_one()
        )


async def test_locations_stream_sends_a_snapshot_then_every_notified_status(
    live_server: str, network, engine: AsyncEngine
) -> None:
    url = f"ws://{live_server}/api/v1/locations/stream"
    async with websockets.connect(url) as first, websockets.connect(url) as second:
        for ws in (first, second):
            snapshot = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert snapshot["type"] == "snapshot"
            assert snapshot["locations"][0]["stations"][0]["id"] == "EVP-001"
        # Two subscribers, one LISTEN connection in this process.
        assert await _listeners(engine) == 1

        event = {"station_id": "EVP-002", "connector_id": 1, "status": "Faulted"}
        await _notify(engine, event)
        await _notify(engine, {"not": "a status"})
        await _notify(engine, {**event, "status": "Available"})
        for ws in (first, second):
            received = [json.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(2)]
            assert received == [
                {**event, "type": "status"},
                {**event, "status": "Available", "type": "status"},
            ]
    # The last subscriber gone, the LISTEN connection is closed.
    for _ in range(100):
        if await _listeners(engine) == 0:
            break
        await asyncio.sleep(0.05)
    assert await _listeners(engine) == 0

"""`GET /api/v1/ops/stations`: every station with its liveness, identity, connectors and the
live sessions on them — across clients (ops never run under the client RLS role)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import (
    ChargingSessionRecord,
    Client,
    Connector,
    Location,
    Station,
    StationConnection,
)
from tests.api.conftest import Tokens
from tests.ops.conftest import audit_rows, caller_headers

pytestmark = pytest.mark.integration

FLEET = "/api/v1/ops/stations"


async def _fleet(db_sessions: async_sessionmaker[AsyncSession]) -> None:
    now = datetime.now(UTC)
    clients = [str(uuid.uuid4()), str(uuid.uuid4())]
    async with db_sessions() as session, session.begin():
        session.add_all([Location(id="loc-a", name="A"), Location(id="loc-b", name="B")])
        session.add_all([Client(id=client) for client in clients])
        await session.flush()
        session.add_all(
            [
                Station(
                    id="ON-1",
                    location_id="loc-a",
                    price_tyiyn_per_kwh=1_500,
                    vendor="Alfen",
                    model="Eve",
                    firmware_version="6.1",
                    last_seen_at=now,
                ),
                Station(
                    id="OFF-LONG",
                    location_id="loc-a",
                    price_tyiyn_per_kwh=1_500,
                    last_seen_at=now - timedelta(hours=3),
                ),
                Station(
                    id="OFF-NEW",
                    location_id="loc-b",
                    price_tyiyn_per_kwh=1_500,
                    last_seen_at=now - timedelta(minutes=2),
                ),
                Station(id="NEVER", price_tyiyn_per_kwh=1_500),
            ]
        )
        await session.flush()
        session.add_all(
            [
                Connector(station_id="ON-1", connector_id=1, status="Charging"),
                Connector(station_id="ON-1", connector_id=2, status="Charging"),
                Connector(station_id="ON-1", connector_id=3, status="Available"),
                Connector(station_id="OFF-LONG", connector_id=1, status="Unavailable"),
                StationConnection(station_id="ON-1", gateway_queue="gateway-x", connected_at=now),
            ]
        )
        # Two clients' live sessions and a finished one.
        for index, (connector, state) in enumerate(
            ((1, "charging"), (2, "starting"), (3, "completed"))
        ):
            session.add(
                ChargingSessionRecord(
                    id=f"s-{connector}",
                    client_id=clients[index % 2],
                    station_id="ON-1",
                    connector_id=connector,
                    state=state,
                    price_tyiyn_per_kwh=1_500,
                    reserved_tyiyn=10_000,
                )
            )


async def test_the_fleet_with_liveness_identity_and_live_sessions(
    ops_http: httpx.AsyncClient, tokens: Tokens, db_sessions
) -> None:
    await _fleet(db_sessions)
    response = await ops_http.get(FLEET, headers=caller_headers(tokens, "operator"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["online"], body["offline"]) == (1, 3)
    stations = {item["id"]: item for item in body["items"]}
    assert list(stations) == ["NEVER", "OFF-LONG", "OFF-NEW", "ON-1"]
    on = stations["ON-1"]
    assert on["online"] and on["gateway_queue"] == "gateway-x" and on["offline_for_min"] is None
    assert (on["vendor"], on["model"], on["firmware_version"]) == ("Alfen", "Eve", "6.1")
    assert on["location_name"] == "A"
    assert [(c["connector_id"], c["status"], c["session_id"]) for c in on["connectors"]] == [
        (1, "Charging", "s-1"),
        (2, "Charging", "s-2"),
        (3, "Available", None),
    ]
    assert stations["OFF-LONG"]["offline_for_min"] >= 179
    assert stations["NEVER"]["offline_for_min"] is None
    assert stations["NEVER"]["last_seen_at"] is None and stations["NEVER"]["connectors"] == []
    rows = await audit_rows(db_sessions)
    assert [(row.action, row.outcome, row.role) for row in rows] == [
        ("stations.list", "ok", "operator")
    ]


async def test_the_fleet_filters(ops_http: httpx.AsyncClient, tokens: Tokens, db_sessions) -> None:
    await _fleet(db_sessions)
    headers = caller_headers(tokens, "admin")

    async def ids(**params: str | int) -> list[str]:
        response = await ops_http.get(FLEET, params=params, headers=headers)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert await ids(location="loc-a") == ["OFF-LONG", "ON-1"]
    assert await ids(status="online") == ["ON-1"]
    assert await ids(status="offline") == ["NEVER", "OFF-LONG", "OFF-NEW"]
    assert await ids(offline_for_min=60) == ["NEVER", "OFF-LONG"]
    assert await ids(offline_for_min=60, location="loc-a") == ["OFF-LONG"]
    assert await ids(location="nowhere") == []
    for bad in ({"status": "asleep"}, {"offline_for_min": -1}, {"offline_for_min": "x"}):
        response = await ops_http.get(FLEET, params=bad, headers=headers)
        assert response.status_code == 422, bad
        assert response.json()["error"]["code"] == "validation_error"
    both = await ops_http.get(
        FLEET, params={"status": "online", "offline_for_min": 5}, headers=headers
    )
    assert both.status_code == 422 and both.json()["error"]["code"] == "contradictory_filters"
    rows = await audit_rows(db_sessions)
    assert len(rows) == 10 and rows[-1].outcome == "rejected"
    assert rows[-1].request["query"] == "status=online&offline_for_min=5"


async def test_the_fleet_shows_each_connectors_own_price(
    ops_http: httpx.AsyncClient, tokens: Tokens, db_sessions
) -> None:
    await _fleet(db_sessions)
    async with db_sessions() as session, session.begin():
        connector = await session.get(Connector, ("ON-1", 2))
        assert connector is not None
        connector.price_tyiyn_per_kwh = 2_400
    response = await ops_http.get(FLEET, headers=caller_headers(tokens, "operator"))
    assert response.status_code == 200, response.text
    on = {item["id"]: item for item in response.json()["items"]}["ON-1"]
    assert on["price_tyiyn_per_kwh"] == 1_500
    assert [
        (c["connector_id"], c["price_tyiyn_per_kwh"], c["effective_price_tyiyn_per_kwh"])
        for c in on["connectors"]
    ] == [(1, None, 1_500), (2, 2_400, 2_400), (3, None, 1_500)]


@pytest.mark.parametrize("caller", ["none", "client", "operator", "admin"])
async def test_the_fleet_matrix(
    ops_http: httpx.AsyncClient, tokens: Tokens, db_sessions, caller: str
) -> None:
    response = await ops_http.get(FLEET, headers=caller_headers(tokens, caller))
    expected = {"none": 401, "client": 403}.get(caller, 200)
    assert response.status_code == expected
    assert [row.status_code for row in await audit_rows(db_sessions)] == [expected]

"""Locations, stations and connector prices managed through `/api/v1/ops/` (real PostgreSQL):
bodies refuse unknown fields and need a reason, errors have their own codes, keys are hashed
as the CLI hashes them and never reach the audit, and a disabled station starts no session."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from activities.sessions import OpenSession, SessionStore
from db.models import ChargingSessionRecord, Client, Station, StationConnection
from domain.charger_keys import ChargerKeys, KeyCheck
from domain.sessions import ConnectorUnavailable
from tests.api.conftest import AppFactory, Tokens
from tests.ops.conftest import audit_rows, caller_headers
from tests.ops.stack import station_change_worker

pytestmark = pytest.mark.integration

PEPPER = b"station-management-pepper-0123456789abcdef"
REASON = "new site opening"


@pytest.fixture
async def http(
    make_app: AppFactory,
    db_sessions: async_sessionmaker[AsyncSession],
    temporal_env: WorkflowEnvironment,
) -> AsyncIterator[httpx.AsyncClient]:
    """The app and a worker running its StationChange workflows."""
    task_queue = f"stations-{uuid.uuid4().hex[:8]}"
    app = make_app(key_pepper=PEPPER, task_queue=task_queue)
    async with (
        station_change_worker(db_sessions, temporal_env.client, task_queue),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
            base_url="http://testserver",
        ) as client,
    ):
        yield client


class Ops:
    def __init__(self, http: httpx.AsyncClient, tokens: Tokens) -> None:
        self.http = http
        self.headers = caller_headers(tokens, "operator")

    async def call(self, method: str, path: str, body: dict[str, Any]) -> httpx.Response:
        return await self.http.request(
            method, f"/api/v1/ops{path}", json=body, headers=self.headers
        )

    async def ok(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.call(method, path, {"reason": REASON, **body})
        assert response.status_code in (200, 201), response.text
        result: dict[str, Any] = response.json()
        return result

    async def error(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, str]:
        response = await self.call(method, path, body)
        return response.status_code, response.json()["error"]["code"]


@pytest.fixture
def ops(http: httpx.AsyncClient, tokens: Tokens) -> Ops:
    return Ops(http, tokens)


async def test_locations_created_changed_and_disabled_only_when_empty(
    ops: Ops, http: httpx.AsyncClient, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    created = await ops.ok("POST", "/locations", {"id": "bishkek-1", "name": "Vefa", "city": "B"})
    assert created["enabled"] and created["city"] == "B"
    assert await ops.error(
        "POST", "/locations", {"id": "bishkek-1", "name": "X", "reason": REASON}
    ) == (409, "location_exists")
    assert await ops.error("POST", "/locations", {"id": "x", "name": "X"}) == (
        422,
        "validation_error",
    )
    assert await ops.error(
        "POST", "/locations", {"id": "x", "name": "X", "reason": REASON, "owner": "me"}
    ) == (422, "validation_error")
    assert await ops.error("PATCH", "/locations/nowhere", {"name": "Y", "reason": REASON}) == (
        404,
        "location_not_found",
    )
    assert await ops.error("PATCH", "/locations/bishkek-1", {"reason": REASON}) == (
        422,
        "nothing_to_change",
    )
    assert await ops.error("PATCH", "/locations/bishkek-1", {"name": None, "reason": REASON}) == (
        422,
        "null_not_allowed",
    )
    moved = await ops.ok(
        "PATCH", "/locations/bishkek-1", {"latitude": "42.874621", "address": "Main 1"}
    )
    assert (moved["latitude"], moved["address"]) == ("42.874621", "Main 1")

    await ops.ok(
        "POST",
        "/stations",
        {"id": "EVP-L1", "connectors": 1, "price_tyiyn_per_kwh": 1_500, "location_id": "bishkek-1"},
    )
    assert await ops.error(
        "PATCH", "/locations/bishkek-1", {"enabled": False, "reason": REASON}
    ) == (409, "location_in_use")
    await ops.ok("PATCH", "/stations/EVP-L1", {"enabled": False})
    assert (await ops.ok("PATCH", "/locations/bishkek-1", {"enabled": False}))["enabled"] is False
    # Drivers no longer see it; a station cannot be enabled in it or join it.
    public = await http.get("/api/v1/locations")
    assert public.status_code == 200, public.text
    assert [item["id"] for item in public.json()["locations"]] == []
    assert await ops.error("PATCH", "/stations/EVP-L1", {"enabled": True, "reason": REASON}) == (
        409,
        "location_disabled",
    )
    rows = await audit_rows(db_sessions)
    assert {row.action for row in rows} >= {"location.create", "location.update", "station.update"}
    assert all(row.reason == REASON for row in rows if row.outcome == "ok")


async def test_a_station_is_registered_with_a_key_shown_once_and_never_audited(
    ops: Ops, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    created = await ops.ok(
        "POST",
        "/stations",
        {
            "id": "EVP-100",
            "name": "Mall",
            "connectors": 2,
            "price_tyiyn_per_kwh": 1_800,
            "current_type": "DC",
            "max_power_w": 60_000,
        },
    )
    key = created["authorization_key"]
    assert created["key_generated"] and created["enabled"]
    assert [
        (c["connector_id"], c["effective_price_tyiyn_per_kwh"]) for c in created["connectors"]
    ] == [(1, 1_800), (2, 1_800)]
    given = await ops.ok(
        "POST",
        "/stations",
        {
            "id": "EVP-101",
            "connectors": 1,
            "price_tyiyn_per_kwh": 900,
            "authorization_key": "operator-chosen-key-123",
        },
    )
    assert given["authorization_key"] == "operator-chosen-key-123" and not given["key_generated"]
    async with db_sessions() as session:
        station = await session.get(Station, "EVP-100")
        assert station is not None and station.password_hash is not None
        assert key not in station.password_hash
        assert ChargerKeys(PEPPER).check(key, station.password_hash) is KeyCheck.MATCH
    rows = [row for row in await audit_rows(db_sessions) if row.action == "station.create"]
    assert len(rows) == 2
    for row in rows:
        assert key not in str(row.request) + str(row.result)
        assert "operator-chosen-key-123" not in str(row.request) + str(row.result)

    base = {"connectors": 1, "price_tyiyn_per_kwh": 1_000, "reason": REASON}
    assert await ops.error("POST", "/stations", {**base, "id": "EVP-100"}) == (
        409,
        "station_exists",
    )
    assert await ops.error(
        "POST", "/stations", {**base, "id": "EVP-102", "location_id": "nowhere"}
    ) == (404, "location_not_found")
    assert await ops.error("POST", "/stations", {**base, "id": "bad id"}) == (
        422,
        "invalid_station",
    )
    assert await ops.error(
        "POST", "/stations", {**base, "id": "EVP-103", "authorization_key": "short"}
    ) == (422, "invalid_station")
    for price in (0, -5, 1_000_001, 12.5, "1500"):
        assert await ops.error(
            "POST", "/stations", {**base, "id": "EVP-104", "price_tyiyn_per_kwh": price}
        ) == (422, "validation_error")
    assert await ops.error("POST", "/stations", {**base, "id": "EVP-104", "connectors": 33}) == (
        422,
        "validation_error",
    )


async def test_the_api_without_a_key_pepper_registers_no_station(
    make_app: AppFactory, tokens: Tokens
) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=make_app(), raise_app_exceptions=False),
        base_url="http://testserver",
    ) as client:
        response = await client.post(
            "/api/v1/ops/stations",
            json={"id": "EVP-9", "connectors": 1, "price_tyiyn_per_kwh": 1, "reason": REASON},
            headers=caller_headers(tokens, "operator"),
        )
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "charger_keys_unavailable"


async def _session_on(
    db_sessions: async_sessionmaker[AsyncSession], station: str, connector: int
) -> None:
    client = str(uuid.uuid4())
    async with db_sessions() as session, session.begin():
        session.add(Client(id=client))
        await session.flush()
        session.add(
            ChargingSessionRecord(
                id=f"s-{uuid.uuid4().hex[:8]}",
                client_id=client,
                station_id=station,
                connector_id=connector,
                state="completed",
                price_tyiyn_per_kwh=1_000,
                reserved_tyiyn=10_000,
            )
        )


async def test_stations_change_resize_and_price_their_connectors(
    ops: Ops, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    await ops.ok(
        "POST", "/stations", {"id": "EVP-200", "connectors": 2, "price_tyiyn_per_kwh": 1_500}
    )
    changed = await ops.ok(
        "PATCH",
        "/stations/EVP-200",
        {"name": "Renamed", "price_tyiyn_per_kwh": 1_700, "connectors": 4},
    )
    assert (changed["name"], changed["price_tyiyn_per_kwh"]) == ("Renamed", 1_700)
    assert [c["connector_id"] for c in changed["connectors"]] == [1, 2, 3, 4]
    await _session_on(db_sessions, "EVP-200", 3)
    assert await ops.error("PATCH", "/stations/EVP-200", {"connectors": 2, "reason": REASON}) == (
        409,
        "connector_has_sessions",
    )
    assert len((await ops.ok("PATCH", "/stations/EVP-200", {"connectors": 3}))["connectors"]) == 3

    priced = await ops.ok("PATCH", "/stations/EVP-200/connectors/2", {"price_tyiyn_per_kwh": 2_500})
    assert [
        (c["price_tyiyn_per_kwh"], c["effective_price_tyiyn_per_kwh"]) for c in priced["connectors"]
    ] == [(None, 1_700), (2_500, 2_500), (None, 1_700)]
    back = await ops.ok("PATCH", "/stations/EVP-200/connectors/2", {"price_tyiyn_per_kwh": None})
    assert back["connectors"][1]["effective_price_tyiyn_per_kwh"] == 1_700
    assert await ops.error("PATCH", "/stations/EVP-200/connectors/2", {"reason": REASON}) == (
        422,
        "validation_error",
    )
    assert await ops.error(
        "PATCH", "/stations/EVP-200/connectors/2", {"price_tyiyn_per_kwh": 0, "reason": REASON}
    ) == (422, "validation_error")
    assert await ops.error(
        "PATCH", "/stations/EVP-200/connectors/9", {"price_tyiyn_per_kwh": 5, "reason": REASON}
    ) == (404, "connector_not_found")
    assert await ops.error(
        "PATCH", "/stations/NOPE/connectors/1", {"price_tyiyn_per_kwh": 5, "reason": REASON}
    ) == (404, "station_not_found")
    assert await ops.error("PATCH", "/stations/NOPE", {"name": "x", "reason": REASON}) == (
        404,
        "station_not_found",
    )
    assert await ops.error(
        "PATCH", "/stations/EVP-200", {"price_tyiyn_per_kwh": None, "reason": REASON}
    ) == (422, "null_not_allowed")
    assert await ops.error(
        "PATCH", "/stations/EVP-200", {"password_hash": "x", "reason": REASON}
    ) == (422, "validation_error")
    assert await ops.error(
        "PATCH", "/stations/EVP-200", {"location_id": "nowhere", "reason": REASON}
    ) == (404, "location_not_found")


async def test_a_disabled_station_starts_no_session_and_can_be_enabled_again(
    ops: Ops, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    await ops.ok(
        "POST", "/stations", {"id": "EVP-300", "connectors": 1, "price_tyiyn_per_kwh": 1_500}
    )
    async with db_sessions() as session, session.begin():
        session.add(
            StationConnection(
                station_id="EVP-300", gateway_queue="gateway-x", connected_at=datetime.now(UTC)
            )
        )
    disabled = await ops.ok("PATCH", "/stations/EVP-300", {"enabled": False})
    assert (disabled["enabled"], disabled["registration_status"]) == (False, "rejected")
    store = SessionStore(db_sessions)
    request = OpenSession(str(uuid.uuid4()), str(uuid.uuid4()), "EVP-300", 1, 10_000)
    with pytest.raises(ConnectorUnavailable, match="disabled"):
        await store.open(request)
    enabled = await ops.ok("PATCH", "/stations/EVP-300", {"enabled": True})
    assert (enabled["enabled"], enabled["registration_status"]) == (True, "accepted")

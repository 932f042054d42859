"""`POST /api/v1/ops/stations/{id}/rotate-key` on the real stack: the new key is shown once and
stored only as a keyed hash, never in the audit; over a real websocket the charger logs in with
the new key, and with the old one only until its grace ends."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from db.models import Station
from tests.gateway.conftest import basic_auth
from tests.ops.conftest import audit_rows
from tests.ops.stack import KEY_PEPPER, PASSWORD, add_station, headers, ops_stack

pytestmark = pytest.mark.integration

REASON = "key leaked in a maintenance log"


async def _logs_in(port: int, station_id: str, key: str) -> bool:
    """True when the gateway upgrades the websocket for these credentials (401 otherwise)."""
    try:
        async with connect(
            f"ws://127.0.0.1:{port}/ocpp/{station_id}",
            subprotocols=[Subprotocol("ocpp1.6")],
            additional_headers=basic_auth(station_id, key),
            open_timeout=10,
        ):
            return True
    except InvalidStatus as exc:
        assert exc.response.status_code == 401
        return False


async def test_a_rotated_key_and_the_old_one_during_its_grace(
    db_sessions: async_sessionmaker[AsyncSession], temporal_env: WorkflowEnvironment
) -> None:
    station_id = f"KR-{uuid.uuid4().hex[:6]}"
    await add_station(db_sessions, station_id)
    async with (
        ops_stack(db_sessions, temporal_env.client, key_pepper=KEY_PEPPER) as stack,
        httpx.AsyncClient(base_url=stack.base_url, timeout=30) as http,
    ):
        path = f"/api/v1/ops/stations/{station_id}/rotate-key"
        assert (
            await http.post(path, json={"reason": REASON}, headers=headers("client"))
        ).status_code == 403
        assert (await http.post(path, json={}, headers=headers("operator"))).status_code == 422
        missing = await http.post(
            "/api/v1/ops/stations/NOPE/rotate-key",
            json={"reason": REASON},
            headers=headers("operator"),
        )
        assert (missing.status_code, missing.json()["error"]["code"]) == (404, "station_not_found")

        rotated = await http.post(path, json={"reason": REASON}, headers=headers("operator"))
        assert rotated.status_code == 200, rotated.text
        new_key = rotated.json()["authorization_key"]
        until = datetime.fromisoformat(rotated.json()["previous_key_valid_until"])
        assert timedelta(hours=23) < until - datetime.now(UTC) <= timedelta(hours=24)
        assert await _logs_in(stack.port, station_id, new_key)
        assert await _logs_in(stack.port, station_id, PASSWORD)  # within the grace
        assert not await _logs_in(stack.port, station_id, "some-other-key-0123456789")

        # The grace ends: only the new key logs in.
        async with db_sessions() as session, session.begin():
            await session.execute(
                update(Station)
                .where(Station.id == station_id)
                .values(previous_key_expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        assert not await _logs_in(stack.port, station_id, PASSWORD)
        assert await _logs_in(stack.port, station_id, new_key)

        # Rotating again gives the last key the grace; the one before it is gone at once.
        again = await http.post(path, json={"reason": REASON}, headers=headers("operator"))
        newest = again.json()["authorization_key"]
        assert newest != new_key
        assert await _logs_in(stack.port, station_id, newest)
        assert await _logs_in(stack.port, station_id, new_key)

    async with db_sessions() as session:
        station = await session.get(Station, station_id)
        assert station is not None and station.password_hash is not None
        assert newest not in station.password_hash + (station.previous_password_hash or "")
    rows = [row for row in await audit_rows(db_sessions) if row.path.endswith("/rotate-key")]
    assert [(row.outcome, row.status_code) for row in rows] == [
        ("refused", 403),
        ("rejected", 422),
        ("rejected", 404),
        ("ok", 200),
        ("ok", 200),
    ]
    assert [row.reason for row in rows[3:]] == [REASON, REASON]
    for row in rows:
        assert new_key not in str(row.request) + str(row.result)
        assert newest not in str(row.request) + str(row.result)

"""The live session stream end to end: the simulator charges over a real websocket, the gateway
stores its samples, and two clients on two api apps (each its own LISTEN, one database) follow
the session to its settlement; strangers are refused with a policy-violation close."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from activities.ledger import LedgerMovement
from api.app import create_app
from api.deps import ApiConfig, ApiContext
from api.dev_tokens import issue_dev_token
from api.v1.session_stream import MAX_STREAMS_PER_CLIENT
from db.models import ChargingSessionRecord, Connector, LedgerEntry, MeterValue, OcppRemoteStart
from domain.ledger import Operation
from simulator import FaultPlan, SimulatedStation, StationConfig
from tests.charging.test_end_to_end import (
    PASSWORD,
    SECRET,
    add_station,
    eventually,
    running_stack,
)
from tests.stack import served

pytestmark = [pytest.mark.integration, pytest.mark.slow]

POLICY_VIOLATION = 1008


@asynccontextmanager
async def second_api(
    db_sessions: async_sessionmaker[AsyncSession], context: ApiContext
) -> AsyncIterator[str]:
    """Another api process's app (its own session feed and LISTEN) on its own port."""
    app = create_app(ApiContext(db_sessions, context.temporal, context.config))
    async with served(app) as port:
        yield f"ws://127.0.0.1:{port}"


async def follow(connection: ClientConnection) -> list[dict[str, Any]]:
    """Every message until the server closes the stream."""
    messages: list[dict[str, Any]] = []
    with pytest.raises(ConnectionClosed):
        while True:
            messages.append(json.loads(await connection.recv()))
    return messages


async def refusal(
    url: str, first_message: str | None = None, **kwargs: Any
) -> tuple[int | None, str | None]:
    async with connect(url, **kwargs) as connection:
        if first_message is not None:
            await connection.send(first_message)
        with pytest.raises(ConnectionClosed):
            await connection.recv()
        assert connection.close_code is not None
        return connection.close_code, connection.close_reason


async def test_two_clients_on_two_api_apps_follow_a_session_to_its_settlement(
    db_sessions: async_sessionmaker[AsyncSession], temporal_env: WorkflowEnvironment
) -> None:
    owner, stranger = str(uuid.uuid4()), str(uuid.uuid4())
    station_id = f"LIVE-{uuid.uuid4().hex[:6]}"
    await add_station(db_sessions, station_id)
    async with running_stack(db_sessions, temporal_env.client) as stack:
        await stack.ledger.apply(
            Operation.CREDIT_TOPUP,
            LedgerMovement(f"topup:{owner}", owner, 50_000, provider="TEST"),
        )
        context = ApiContext(
            db_sessions,
            temporal_env.client,
            ApiConfig.of(supabase_jwt_secret=SECRET, task_queue="unused"),
        )
        station = SimulatedStation(
            StationConfig(
                station_id=station_id,
                url=f"ws://127.0.0.1:{stack.port}/ocpp",
                password=PASSWORD,
                meter_interval_s=0.3,
                energy_per_sample_wh=400,
                meter_start_wh=2_000_000,
            )
        )
        token = issue_dev_token(SECRET, owner)
        headers = {"Authorization": f"Bearer {token}"}
        async with (
            station,
            second_api(db_sessions, context) as other_api,
            httpx.AsyncClient(base_url=stack.base_url, timeout=30) as http,
        ):
            await eventually(lambda: _connector_ready(db_sessions, station_id), "the charger is in")
            started = await http.post(
                "/api/v1/charging/start",
                json={"station_id": station_id, "connector_id": 1, "amount_tyiyn": 10_000},
                headers={**headers, "Idempotency-Key": f"live-{uuid.uuid4()}"},
            )
            assert started.status_code == 201, started.text
            session_id = started.json()["session_id"]
            path = f"/api/v1/charging/{session_id}/stream"

            # Browser style on one app (token as a subprotocol), first message on the other.
            by_protocol = await connect(
                f"ws://127.0.0.1:{stack.port}{path}",
                subprotocols=["evpower.v1", f"bearer.{token}"],  # type: ignore[list-item]
            )
            assert by_protocol.subprotocol == "evpower.v1"  # the token is never echoed
            by_message = await connect(f"{other_api}{path}")
            await by_message.send(json.dumps({"token": token}))
            following = [
                asyncio.create_task(follow(by_protocol)),
                asyncio.create_task(follow(by_message)),
            ]

            async def charged_a_while() -> bool:
                live = await http.get(f"/api/v1/charging/{session_id}", headers=headers)
                return bool(live.json()["energy_wh"] >= 2_000)

            await eventually(charged_a_while, "the car took 2 kWh")
            # Strangers, while the session runs: no token, a bad one, an expired one, another
            # client's; each is closed with 1008 and says why.
            url = f"ws://127.0.0.1:{stack.port}{path}"
            assert await refusal(url, first_message=json.dumps({"token": "x.y.z"})) == (
                POLICY_VIOLATION,
                "invalid_token",
            )
            expired = issue_dev_token(SECRET, owner, ttl=timedelta(minutes=-5))
            assert await refusal(
                url, additional_headers={"Authorization": f"Bearer {expired}"}
            ) == (POLICY_VIOLATION, "token_expired")
            assert await refusal(
                f"{other_api}{path}",
                subprotocols=["evpower.v1", f"bearer.{issue_dev_token(SECRET, stranger)}"],
            ) == (POLICY_VIOLATION, "session_not_found")
            assert await refusal(url, first_message="not json") == (
                POLICY_VIOLATION,
                "invalid_token",
            )
            # The owner too, beyond its streams per api process.
            bearer = ["evpower.v1", f"bearer.{token}"]
            extra = [
                await connect(url, subprotocols=bearer)  # type: ignore[arg-type]
                for _ in range(MAX_STREAMS_PER_CLIENT - 1)
            ]
            for connection in extra:
                await connection.recv()  # its first message: it is counted
            assert await refusal(url, subprotocols=bearer) == (POLICY_VIOLATION, "too_many_streams")
            for connection in extra:
                await connection.close()

            stopped = await http.post(
                "/api/v1/charging/stop",
                json={"session_id": session_id},
                headers={**headers, "Idempotency-Key": f"live-stop-{uuid.uuid4()}"},
            )
            assert stopped.status_code == 202, stopped.text
            streams = await asyncio.wait_for(asyncio.gather(*following), timeout=120)
            close_codes = [by_protocol.close_code, by_message.close_code]

        async with db_sessions() as session:
            ledger = {
                entry.operation: entry.amount_tyiyn
                for entry in await session.scalars(
                    select(LedgerEntry).where(LedgerEntry.reference == session_id)
                )
            }
            record = await session.get(ChargingSessionRecord, session_id)
            assert record is not None and record.transaction_id is not None
            stored = sorted(
                energy - 2_000_000
                for energy in await session.scalars(
                    select(MeterValue.energy_wh).where(
                        MeterValue.transaction_id == record.transaction_id,
                        MeterValue.energy_wh.is_not(None),
                    )
                )
                if energy is not None
            )

    assert close_codes == [1000, 1000]
    for messages in streams:
        live = [m for m in messages if m["type"] == "session"]
        charging = [m for m in live if m["state"] == "charging"]
        energies = [m["energy_wh"] for m in charging]
        # Samples arrived as they were stored: several readings, never going back.
        assert len(set(energies)) >= 3, energies
        assert energies == sorted(energies)
        # Every sample stored while the client watched reached it, not only the newest.
        watched = {energy for energy in stored if energies[0] <= energy <= energies[-1]}
        assert set(energies) - {0} == watched, (energies, stored)
        assert any(m["power_w"] == 22_000 for m in charging)
        assert all(m["remaining_tyiyn"] == 10_000 - m["cost_tyiyn"] for m in charging)
        final = messages[-1]
        assert [m["type"] for m in messages].count("final") == 1
        assert (final["type"], final["state"]) == ("final", "completed")
        assert final["stop_reason"] == "user"
        assert final["cost_tyiyn"] == ledger["capture"]
        assert final["refunded_tyiyn"] == ledger["release"] == 10_000 - ledger["capture"]
        assert (final["remaining_tyiyn"], final["power_w"]) == (0, None)
        assert final["energy_wh"] >= energies[-1]


async def _connector_ready(db_sessions: async_sessionmaker[AsyncSession], station_id: str) -> bool:
    async with db_sessions() as session:
        row = await session.get(Connector, (station_id, 1))
        return row is not None and row.status == "Available"


async def test_the_stream_shows_starting_once_the_charger_is_asked(
    db_sessions: async_sessionmaker[AsyncSession], temporal_env: WorkflowEnvironment
) -> None:
    """A charger that accepts RemoteStart but never starts (no cable): the row stays `pending`,
    the stream says `starting` from the RemoteStart the gateway stored."""
    owner = str(uuid.uuid4())
    station_id = f"LIVE-{uuid.uuid4().hex[:6]}"
    await add_station(db_sessions, station_id)
    async with running_stack(db_sessions, temporal_env.client) as stack:
        await stack.ledger.apply(
            Operation.CREDIT_TOPUP,
            LedgerMovement(f"topup:{owner}", owner, 50_000, provider="TEST"),
        )
        station = SimulatedStation(
            StationConfig(
                station_id=station_id, url=f"ws://127.0.0.1:{stack.port}/ocpp", password=PASSWORD
            ),
            FaultPlan(skip_start_transaction=True),
        )
        token = issue_dev_token(SECRET, owner)
        async with station, httpx.AsyncClient(base_url=stack.base_url, timeout=30) as http:
            await eventually(lambda: _connector_ready(db_sessions, station_id), "the charger is in")
            started = await http.post(
                "/api/v1/charging/start",
                json={"station_id": station_id, "connector_id": 1, "amount_tyiyn": 5_000},
                headers={
                    "Authorization": f"Bearer {token}",
                    "Idempotency-Key": f"live-{uuid.uuid4()}",
                },
            )
            assert started.status_code == 201, started.text
            session_id = started.json()["session_id"]
            async with connect(
                f"ws://127.0.0.1:{stack.port}/api/v1/charging/{session_id}/stream",
                subprotocols=["evpower.v1", f"bearer.{token}"],  # type: ignore[list-item]
            ) as stream:
                states: list[str] = []
                while "starting" not in states:
                    message = json.loads(await asyncio.wait_for(stream.recv(), timeout=60))
                    states.append(message["state"])
            async with db_sessions() as session:
                record = await session.get(ChargingSessionRecord, session_id)
                assert record is not None and record.state == "pending"
                assert await session.get(OcppRemoteStart, session_id) is not None

    assert set(states) <= {"pending", "starting"}, states

"""A charging stack whose PostgreSQL and Temporal can be stopped for real mid-session: a
`temporal server start-dev` on its own SQLite file (killed with SIGKILL and restarted on the
same file) and an embedded PostgreSQL in its own data directory (stopped and started)."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client

from activities.ledger import LedgerMovement
from api.dev_tokens import issue_dev_token
from db.engine import create_engine
from db.migrate import upgrade_sync
from db.models import Connector, OcppTransaction, OcppTransactionEvent, Station
from domain.contracts.charging import SessionView, charging_workflow_id
from domain.ledger import Operation
from gateway.auth import ChargerKeys
from gateway.server import OcppGateway
from runtime.embedded import EmbeddedPostgres, EmbeddedTemporal, free_port
from simulator import FaultPlan, SimulatedStation, StationConfig
from tests.stack import Stack
from tests.stack import running_stack as shared_stack
from workflows.charging import ChargingSessionWorkflow

SECRET = "edge-outage-secret-0123456789abcdef-xyz"
PASSWORD = "edge charger password"
KEY_PEPPER = b"edge-outage-pepper-0123456789abcdef"
PRICE = 1_500
INITIAL = 50_000
AMOUNT = 10_000
# A safety net for waits on the charger, not a timing assertion: CI runs these beside
# the rest of the suite on two cores, where an outage's recovery can take a while.
TIMEOUT_S = 120


class KillableTemporal:
    """A dev server of our own: the session-wide one must survive these tests."""

    def __init__(self, data_dir: Path) -> None:
        self.server = EmbeddedTemporal(data_dir, port=free_port(), ui_port=None)

    @property
    def address(self) -> str:
        return self.server.address

    async def start(self) -> None:
        await self.server.start()

    def kill(self) -> None:
        pid = self.server.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        self.server.stop()  # reaps it


class KillablePostgres:
    """An embedded PostgreSQL of our own, migrated; stop() and start() keep its data and URL."""

    def __init__(self, data_dir: Path) -> None:
        self.server = EmbeddedPostgres(data_dir)
        self.url = ""

    def start(self) -> str:
        self.url = self.server.start()
        return self.url

    def stop(self) -> None:
        self.server.stop()


@asynccontextmanager
async def killable_temporal(data_dir: Path) -> AsyncIterator[KillableTemporal]:
    temporal = KillableTemporal(data_dir)
    await temporal.start()
    try:
        yield temporal
    finally:
        temporal.server.stop()


@asynccontextmanager
async def killable_postgres(data_dir: Path) -> AsyncIterator[tuple[KillablePostgres, AsyncEngine]]:
    postgres = KillablePostgres(data_dir)
    url = await asyncio.to_thread(postgres.start)
    await asyncio.to_thread(upgrade_sync, url)
    engine = create_engine(url, pool_size=10)
    try:
        yield postgres, engine
    finally:
        await engine.dispose()
        await asyncio.to_thread(postgres.stop)


class EdgeStack(Stack):
    def station(
        self, station_id: str, faults: FaultPlan | None = None, **config: Any
    ) -> SimulatedStation:
        settings: dict[str, Any] = {
            "station_id": station_id,
            "url": self.ocpp_url,
            "password": PASSWORD,
            "meter_interval_s": 0.2,
            "energy_per_sample_wh": 100,
            "meter_start_wh": 1_000_000,
            "reconnect_delay_s": 0.2,
            "transaction_message_retry_s": 1.0,
        }
        settings.update(config)
        return SimulatedStation(StationConfig(**settings), faults)


# Short outage intervals: the relay retries and signals give up quickly.
EDGE_GATEWAY: dict[str, Any] = {
    "meter_signal_interval_s": 1,
    "signal_timeout_s": 2.0,
    "relay_poll_s": 1.0,
    "relay_retry_first_s": 0.2,
    "relay_retry_max_s": 1.0,
}


@asynccontextmanager
async def running_stack(
    db_sessions: async_sessionmaker[AsyncSession], temporal: Client, **gateway: Any
) -> AsyncIterator[EdgeStack]:
    """Worker, gateway and API as `evpower dev` runs them, with short outage intervals."""
    ping_interval = gateway.pop("ws_ping_interval", 20.0)
    async with shared_stack(
        db_sessions,
        temporal,
        jwt_secret=SECRET,
        key_pepper=KEY_PEPPER,
        gateway={**EDGE_GATEWAY, **gateway},
        ws_ping_interval=ping_interval,
        kind=EdgeStack,
    ) as stack:
        yield stack


async def add_station(db_sessions: async_sessionmaker[AsyncSession], station_id: str) -> None:
    async with db_sessions() as session, session.begin():
        session.add(
            Station(
                id=station_id,
                name=station_id,
                price_tyiyn_per_kwh=PRICE,
                password_hash=ChargerKeys(KEY_PEPPER).hash(PASSWORD),
            )
        )
        await session.flush()
        session.add(Connector(station_id=station_id, connector_id=1))


async def eventually(check: Any, what: str, attempts: int = 6_000) -> None:
    """Poll a condition (bounded by attempts, not by a clock assertion)."""
    for _ in range(attempts):
        try:
            if await check():
                return
        except Exception:  # a database or Temporal that is still coming back
            pass
        await asyncio.sleep(0.02)
    raise AssertionError(f"never happened: {what}")


async def remote_start_handled(station: SimulatedStation, connector_id: int = 1) -> None:
    """RemoteStart reached the charger and its after-hook ran: with `skip_start_transaction`
    the connector is free again for a start at the charger itself. (The message is recorded
    when it arrives, before the answer is sent and before the hook runs.)"""

    async def handled() -> bool:
        arrived = any(action == "RemoteStartTransaction" for action, _ in station.received)
        return arrived and station.connector(connector_id).free

    await eventually(handled, "RemoteStart reached the charger")


async def fund(stack: Stack, client_id: str) -> None:
    await stack.ledger.apply(
        Operation.CREDIT_TOPUP,
        LedgerMovement(f"topup:{client_id}", client_id, INITIAL, provider="TEST"),
    )


async def start_session(stack: Stack, station_id: str, client_id: str) -> str:
    """POST /charging/start once the charger has reported its connector; the session id."""

    async def connector_available() -> bool:
        async with stack.db_sessions() as session:
            row = await session.get(Connector, (station_id, 1))
            return row is not None and row.status == "Available"

    await eventually(connector_available, "the charger reported its connector")
    token = issue_dev_token(SECRET, client_id)
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as http:
        started = await http.post(
            "/api/v1/charging/start",
            json={"station_id": station_id, "connector_id": 1, "amount_tyiyn": AMOUNT},
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": f"start-{station_id}"},
        )
    assert started.status_code == 201, started.text
    return str(started.json()["session_id"])


async def session_result(temporal: Client, session_id: str) -> SessionView:
    handle = temporal.get_workflow_handle_for(
        ChargingSessionWorkflow.run, charging_workflow_id(session_id)
    )
    return await handle.result()


async def stored_stop(
    db_sessions: async_sessionmaker[AsyncSession], transaction_id: int
) -> int | None:
    async with db_sessions() as session:
        return await session.scalar(
            select(OcppTransaction.meter_stop_wh).where(OcppTransaction.id == transaction_id)
        )


async def relay_found_temporal_down(
    db_sessions: async_sessionmaker[AsyncSession], gateway: OcppGateway
) -> bool:
    """The relay met the outage: it tried to deliver an event and Temporal was not there, or
    another call of the gateway (a meter signal) found it down first and the relay waits for
    Temporal without trying the stored events."""
    if gateway.temporal_unreachable:
        return True
    async with db_sessions() as session:
        failed = await session.scalar(
            select(OcppTransactionEvent.id).where(OcppTransactionEvent.last_error.is_not(None))
        )
    return failed is not None


async def session_view(temporal: Client, session_id: str) -> SessionView:
    """The running session as its workflow sees it (no database involved)."""
    handle = temporal.get_workflow_handle_for(
        ChargingSessionWorkflow.run, charging_workflow_id(session_id)
    )
    return await handle.query(ChargingSessionWorkflow.state)

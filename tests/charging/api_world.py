"""The charging API on the real database and Temporal dev server: a worker with the real
session, station and ledger activities, a scripted gateway on its own queue, seeded stations."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from activities.failures import ACTIVITY_INTERCEPTORS
from activities.ledger import Ledger, LedgerActivities, LedgerMovement
from activities.sessions import charging_activities
from api.app import create_app
from api.deps import ApiConfig, ApiContext
from api.dev_tokens import issue_dev_token
from db.models import (
    ChargingSessionRecord,
    Connector,
    MeterValue,
    OcppTransaction,
    Station,
    StationConnection,
)
from domain.contracts.charging import charging_workflow_id
from domain.contracts.session_signals import TRANSACTION_STOPPED, TransactionStopped
from domain.contracts.station_commands import (
    REMOTE_START,
    REMOTE_STOP,
    CommandResult,
    RemoteStartRequest,
    RemoteStopRequest,
)
from domain.ledger import Operation
from workflows.charging import ChargingSessionWorkflow

SECRET = "charging-api-tests-secret-0123456789abcdef"
PRICE = 1_500


@dataclass
class ScriptedGateway:
    """Answers RemoteStart/RemoteStop like a gateway whose charger obeys; a RemoteStop is
    confirmed with the StopTransaction the test scripted for that session."""

    temporal: Client
    starts: list[RemoteStartRequest] = field(default_factory=list)
    stops: list[RemoteStopRequest] = field(default_factory=list)
    stop_answers: dict[str, TransactionStopped] = field(default_factory=dict)
    start_status: str = "Accepted"

    @activity.defn(name=REMOTE_START)
    async def remote_start(self, request: RemoteStartRequest) -> CommandResult:
        self.starts.append(request)
        return CommandResult(self.start_status, {"status": self.start_status})

    @activity.defn(name=REMOTE_STOP)
    async def remote_stop(self, request: RemoteStopRequest) -> CommandResult:
        self.stops.append(request)
        workflow_id = activity.info().workflow_id
        assert workflow_id is not None
        session_id = workflow_id.removeprefix("charging-")
        answer = self.stop_answers.get(session_id)
        if answer is not None:
            await self.temporal.get_workflow_handle(workflow_id).signal(TRANSACTION_STOPPED, answer)
        return CommandResult("Accepted", {"status": "Accepted"})


@dataclass
class ApiWorld:
    http: httpx.AsyncClient
    db_sessions: async_sessionmaker[AsyncSession]
    temporal: Client
    gateway: ScriptedGateway
    gateway_queue: str
    ledger: Ledger
    task_queue: str

    def client_headers(self, client_id: str, key: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {issue_dev_token(SECRET, client_id)}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        return headers

    async def new_client(self, balance_tyiyn: int) -> str:
        client_id = str(uuid.uuid4())
        if balance_tyiyn:
            await self.ledger.apply(
                Operation.CREDIT_TOPUP,
                LedgerMovement(f"topup:{client_id}", client_id, balance_tyiyn, provider="TEST"),
            )
        return client_id

    async def add_station(
        self,
        station_id: str,
        *,
        connectors: int = 1,
        online: bool = True,
        status: str = "Available",
    ) -> None:
        now = datetime.now(UTC)
        async with self.db_sessions() as session, session.begin():
            session.add(Station(id=station_id, name=station_id, price_tyiyn_per_kwh=PRICE))
            await session.flush()
            for connector_id in range(1, connectors + 1):
                session.add(
                    Connector(
                        station_id=station_id,
                        connector_id=connector_id,
                        status=status,
                        status_at=now,
                    )
                )
            if online:
                session.add(
                    StationConnection(
                        station_id=station_id, gateway_queue=self.gateway_queue, connected_at=now
                    )
                )

    async def start(
        self, client_id: str, station_id: str, amount_tyiyn: int, connector_id: int = 1
    ) -> httpx.Response:
        return await self.http.post(
            "/api/v1/charging/start",
            json={
                "station_id": station_id,
                "connector_id": connector_id,
                "amount_tyiyn": amount_tyiyn,
            },
            headers=self.client_headers(client_id, key=str(uuid.uuid4())),
        )

    async def record(self, session_id: str) -> ChargingSessionRecord | None:
        async with self.db_sessions() as session:
            found: ChargingSessionRecord | None = await session.get(
                ChargingSessionRecord, session_id
            )
            return found

    async def store_transaction(
        self, session_id: str, station_id: str, meter_start_wh: int, registers: list[int]
    ) -> int:
        """What the gateway writes for a running transaction: the row and its meter values."""
        now = datetime.now(UTC)
        async with self.db_sessions() as session, session.begin():
            row = OcppTransaction(
                station_id=station_id,
                connector_id=1,
                id_tag=session_id,
                session_id=session_id,
                meter_start_wh=meter_start_wh,
                started_at=now,
            )
            session.add(row)
            await session.flush()
            for register in registers:
                session.add(
                    MeterValue(
                        station_id=station_id,
                        connector_id=1,
                        transaction_id=row.id,
                        measured_at=now,
                        energy_wh=register,
                    )
                )
            return row.id

    async def held(self, client_id: str) -> tuple[int, int]:
        balance = await self.ledger.balance(client_id)
        return balance.available_tyiyn, balance.held_tyiyn

    async def records_of(self, client_id: str) -> list[str]:
        async with self.db_sessions() as session:
            rows = await session.scalars(
                select(ChargingSessionRecord.id).where(ChargingSessionRecord.client_id == client_id)
            )
            return list(rows)

    def handle(self, session_id: str) -> Any:
        return self.temporal.get_workflow_handle_for(
            ChargingSessionWorkflow.run, charging_workflow_id(session_id)
        )


@asynccontextmanager
async def api_world(
    db_sessions: async_sessionmaker[AsyncSession], temporal: Client, **config: Any
) -> AsyncIterator[ApiWorld]:
    task_queue = f"charging-api-{uuid.uuid4().hex[:8]}"
    gateway_queue = f"gateway-{uuid.uuid4().hex[:8]}"
    ledger = Ledger(db_sessions)
    ledger_activities = LedgerActivities(ledger)
    gateway = ScriptedGateway(temporal)
    app = create_app(
        ApiContext(
            db_sessions=db_sessions,
            temporal=temporal,
            config=ApiConfig.of(supabase_jwt_secret=SECRET, task_queue=task_queue, **config),
        )
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        Worker(
            temporal,
            task_queue=task_queue,
            interceptors=ACTIVITY_INTERCEPTORS,
            workflows=[ChargingSessionWorkflow],
            activities=[
                *charging_activities(db_sessions),
                ledger_activities.reserve,
                ledger_activities.capture,
                ledger_activities.release,
            ],
        ),
        Worker(
            temporal,
            task_queue=gateway_queue,
            activities=[gateway.remote_start, gateway.remote_stop],
        ),
        httpx.AsyncClient(transport=transport, base_url="http://evpower.test") as http,
    ):
        yield ApiWorld(http, db_sessions, temporal, gateway, gateway_queue, ledger, task_queue)

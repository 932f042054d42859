"""End to end: real PostgreSQL, Temporal dev server, the gateway and the API on one uvicorn
port, the charging worker, and the simulator charging over a real websocket."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from activities.ledger import LedgerMovement
from api.dev_tokens import issue_dev_token
from db.models import Connector, Station
from domain.contracts.charging import charging_workflow_id
from domain.ledger import Operation
from domain.tariff import energy_cost_tyiyn
from gateway.auth import ChargerKeys
from simulator import SimulatedStation, StationConfig
from tests.stack import Stack
from tests.stack import running_stack as shared_stack
from tests.temporal_costs import local_activity_type
from workflows.charging import ChargingSessionWorkflow

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SECRET = "charging-e2e-secret-0123456789abcdef-xyz"
PASSWORD = "e2e charger password"
KEY_PEPPER = b"charging-e2e-pepper-0123456789abcdef"
PRICE = 1_500
INITIAL = 50_000
CAR_TAKES_WH = 5_000


@asynccontextmanager
async def running_stack(
    db_sessions: async_sessionmaker[AsyncSession], temporal: Client, **gateway_config: Any
) -> AsyncIterator[Stack]:
    """Worker, gateway and API as `evpower dev` runs them, on one free port."""
    gateway = {"meter_signal_interval_s": 1, **gateway_config}  # the timeline shows samples
    async with shared_stack(
        db_sessions, temporal, jwt_secret=SECRET, key_pepper=KEY_PEPPER, gateway=gateway, kind=Stack
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


async def eventually(check: Any, what: str) -> None:
    """Poll a condition (bounded by attempts, not by a clock assertion)."""
    for _ in range(1_000):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never happened: {what}")


def car_full_after(station: SimulatedStation, connector_id: int, wh: int) -> None:
    """The car stops drawing power once it has taken `wh`: the register stands still."""
    connector = station.connector(connector_id)
    take_sample = connector.add_sample
    start = connector.register_wh

    def sample(**kwargs: Any) -> None:
        if connector.register_wh - start < wh:
            take_sample(**kwargs)

    connector.add_sample = sample  # type: ignore[method-assign]


def timeline(history: WorkflowHistory) -> list[str]:
    steps: list[str] = []
    for event in history.events:
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            steps.append(event.activity_task_scheduled_event_attributes.activity_type.name)
        elif kind == EventType.EVENT_TYPE_MARKER_RECORDED:
            local = local_activity_type(event)
            if local is not None:
                steps.append(local)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            steps.append(event.workflow_execution_signaled_event_attributes.signal_name)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            request = event.workflow_execution_update_accepted_event_attributes.accepted_request
            steps.append(f"update:{request.input.name}")
    return steps


async def test_top_up_start_charge_five_kwh_stop_pays_exactly_for_the_energy(
    db_sessions: async_sessionmaker[AsyncSession], temporal_env: WorkflowEnvironment
) -> None:
    client_id = str(uuid.uuid4())
    station_id = f"E2E-{uuid.uuid4().hex[:6]}"
    await add_station(db_sessions, station_id)
    async with running_stack(db_sessions, temporal_env.client) as stack:
        await stack.ledger.apply(
            Operation.CREDIT_TOPUP,
            LedgerMovement(f"topup:{client_id}", client_id, INITIAL, provider="TEST"),
        )
        station = SimulatedStation(
            StationConfig(
                station_id=station_id,
                url=f"ws://127.0.0.1:{stack.port}/ocpp",
                password=PASSWORD,
                meter_interval_s=0.2,
                energy_per_sample_wh=500,
                meter_start_wh=1_000_000,
            )
        )
        async with station, httpx.AsyncClient(base_url=stack.base_url, timeout=30) as http:
            car_full_after(station, 1, CAR_TAKES_WH)

            async def connector_available() -> bool:
                async with db_sessions() as session:
                    row = await session.get(Connector, (station_id, 1))
                    return row is not None and row.status == "Available"

            await eventually(connector_available, "the charger reported its connector")
            token = issue_dev_token(SECRET, client_id)
            started = await http.post(
                "/api/v1/charging/start",
                json={"station_id": station_id, "connector_id": 1, "amount_tyiyn": 10_000},
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "e2e-start"},
            )
            assert started.status_code == 201, started.text
            session_id = started.json()["session_id"]

            async def car_is_full() -> bool:
                tx = station.active_transaction(1)
                return tx is not None and tx.started and tx.energy_wh >= CAR_TAKES_WH

            await eventually(car_is_full, "the car took 5 kWh")
            stopped = await http.post(
                "/api/v1/charging/stop",
                json={"session_id": session_id},
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "e2e-stop"},
            )
            assert stopped.status_code == 202, stopped.text
            handle = stack.temporal.get_workflow_handle_for(
                ChargingSessionWorkflow.run, charging_workflow_id(session_id)
            )
            result = await handle.result()
            final = await http.get(
                f"/api/v1/charging/{session_id}", headers={"Authorization": f"Bearer {token}"}
            )
        history = await handle.fetch_history()
        balance = await stack.ledger.balance(client_id)

    expected_cost = energy_cost_tyiyn(CAR_TAKES_WH, PRICE)  # ceil(5000 x 1500 / 1000) = 7500
    assert (result.state, result.stop_reason, result.energy_wh) == ("completed", "user", 5_000)
    assert (balance.available_tyiyn, balance.held_tyiyn) == (INITIAL - expected_cost, 0)
    assert final.json()["cost_tyiyn"] == expected_cost
    assert final.json()["refunded_tyiyn"] == 10_000 - expected_cost
    steps = timeline(history)
    milestones = [
        "update:start",
        "admit_session",  # the claim and the reservation in one transaction
        "remote_start",
        "update:transaction_started",
        "meter_sample",
        "update:stop",
        "remote_stop",
        "transaction_stopped",
        "settle_session",  # capture and release in one ledger transaction
        "record_session",
    ]
    remaining = iter(steps)
    assert all(step in remaining for step in milestones), steps  # in this order

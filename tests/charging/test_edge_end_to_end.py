"""The edge, end to end over a real websocket with the simulator: a session whose charger has
stopped without the stop reaching the workflow settles on what the gateway recorded.
Real PostgreSQL, Temporal dev server, gateway + API on one uvicorn port, worker."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.ledger import Ledger, LedgerMovement
from api.dev_tokens import issue_dev_token
from db.models import Connector, OcppTransaction
from domain.contracts.charging import charging_workflow_id
from domain.contracts.session_signals import STATION_CONNECTED, TRANSACTION_STOPPED
from domain.ledger import Operation
from domain.tariff import energy_cost_tyiyn
from gateway.relay import TransactionRelay
from gateway.server import OcppGateway
from runtime.asgi import OcppDispatcher
from simulator import SimulatedStation, StationConfig
from tests.charging.test_end_to_end import (
    INITIAL,
    KEY_PEPPER,
    PASSWORD,
    PRICE,
    SECRET,
    add_station,
    eventually,
    running_stack,
    timeline,
)
from tests.stack import api_app, charging_parts, ocpp_gateway, served
from workflows.charging import ChargingSessionWorkflow

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def relay_down(self: TransactionRelay) -> Any:
    """The relay cannot deliver anything (as before it existed, when the issue was seen)."""
    await asyncio.Event().wait()


async def test_a_rejected_remote_stop_settles_on_the_stop_transaction_the_gateway_recorded(
    db_sessions: async_sessionmaker[AsyncSession],
    temporal_env: WorkflowEnvironment,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(TransactionRelay, "deliver_due", relay_down)
    client_id = str(uuid.uuid4())
    station_id = f"EDGE-{uuid.uuid4().hex[:6]}"
    await add_station(db_sessions, station_id)
    # No idle report in this test: the RemoteStop the charger refuses is what finds the stop.
    async with running_stack(db_sessions, temporal_env.client, idle_report_delay_s=3_600) as stack:
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
                energy_per_sample_wh=300,
                meter_start_wh=2_000_000,
            )
        )
        async with station, httpx.AsyncClient(base_url=stack.base_url, timeout=30) as http:

            async def connector_available() -> bool:
                async with db_sessions() as session:
                    row = await session.get(Connector, (station_id, 1))
                    return row is not None and row.status == "Available"

            await eventually(connector_available, "the charger reported its connector")
            auth = {"Authorization": f"Bearer {issue_dev_token(SECRET, client_id)}"}
            started = await http.post(
                "/api/v1/charging/start",
                json={"station_id": station_id, "connector_id": 1, "amount_tyiyn": 10_000},
                headers={**auth, "Idempotency-Key": "edge-start"},
            )
            assert started.status_code == 201, started.text
            session_id = started.json()["session_id"]

            async def charged_a_while() -> bool:
                tx = station.active_transaction(1)
                return tx is not None and tx.started and tx.energy_wh >= 1_500

            await eventually(charged_a_while, "the car took some energy")
            # The driver stops at the charger: its StopTransaction is stored and acked, but
            # never reaches the session.
            tx = await station.stop_local_transaction(1)

            async def stop_recorded() -> bool:
                async with db_sessions() as session:
                    stopped_at = await session.scalar(
                        select(OcppTransaction.stopped_at).where(
                            OcppTransaction.id == tx.transaction_id
                        )
                    )
                    return stopped_at is not None

            await eventually(stop_recorded, "the gateway stored the StopTransaction")
            stopped = await http.post(
                "/api/v1/charging/stop",
                json={"session_id": session_id},
                headers={**auth, "Idempotency-Key": "edge-stop"},
            )
            assert stopped.status_code == 202, stopped.text
            handle = stack.temporal.get_workflow_handle_for(
                ChargingSessionWorkflow.run, charging_workflow_id(session_id)
            )
            result = await asyncio.wait_for(handle.result(), 60)  # a safety net only
        history = await handle.fetch_history()
        balance = await stack.ledger.balance(client_id)

    assert tx.meter_stop_wh is not None
    delivered = tx.meter_stop_wh - tx.meter_start_wh
    cost = energy_cost_tyiyn(delivered, PRICE)
    assert (result.state, result.stop_reason) == ("completed", "user")
    assert (result.energy_wh, result.cost_tyiyn) == (delivered, cost)
    assert (balance.available_tyiyn, balance.held_tyiyn) == (INITIAL - cost, 0)
    steps = timeline(history)
    assert TRANSACTION_STOPPED not in steps  # the stop came from the database
    remaining = iter(steps)
    order = ["update:stop", "remote_stop", "recorded_transaction", "settle_session"]
    assert all(step in remaining for step in order), steps
    assert ("RemoteStopTransaction", {"transaction_id": tx.transaction_id}) in station.received


class SwappableGateway:
    """One address for the chargers whichever gateway process serves it (a restart)."""

    def __init__(self, gateway: OcppGateway) -> None:
        self.gateway = gateway

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.gateway(scope, receive, send)


async def test_a_stop_asked_while_the_gateway_is_down_follows_the_charger_when_it_reconnects(
    db_sessions: async_sessionmaker[AsyncSession], temporal_env: WorkflowEnvironment
) -> None:
    temporal = temporal_env.client
    client_id = str(uuid.uuid4())
    station_id = f"EDGE-{uuid.uuid4().hex[:6]}"
    await add_station(db_sessions, station_id)
    task_queue = f"edge-{uuid.uuid4().hex[:8]}"
    ledger = Ledger(db_sessions)
    await ledger.apply(
        Operation.CREDIT_TOPUP,
        LedgerMovement(f"topup:{client_id}", client_id, INITIAL, provider="TEST"),
    )
    first = ocpp_gateway(db_sessions, temporal, key_pepper=KEY_PEPPER, name="first")
    second = ocpp_gateway(db_sessions, temporal, key_pepper=KEY_PEPPER, name="second")
    holder = SwappableGateway(first)
    api = api_app(db_sessions, temporal, jwt_secret=SECRET, task_queue=task_queue)
    workflows, activities = charging_parts(db_sessions)
    async with Worker(temporal, task_queue=task_queue, workflows=workflows, activities=activities):
        await first.start()
        async with served(OcppDispatcher(api, holder), before_exit=second.stop) as port:
            station = SimulatedStation(
                StationConfig(
                    station_id=station_id,
                    url=f"ws://127.0.0.1:{port}/ocpp",
                    password=PASSWORD,
                    meter_interval_s=0.2,
                    energy_per_sample_wh=100,
                    meter_start_wh=3_000_000,
                    reconnect_delay_s=0.2,
                )
            )
            base = f"http://127.0.0.1:{port}"
            async with station, httpx.AsyncClient(base_url=base, timeout=30) as http:

                async def connector_available() -> bool:
                    async with db_sessions() as session:
                        row = await session.get(Connector, (station_id, 1))
                        return row is not None and row.status == "Available"

                await eventually(connector_available, "the charger reported its connector")
                auth = {"Authorization": f"Bearer {issue_dev_token(SECRET, client_id)}"}
                started = await http.post(
                    "/api/v1/charging/start",
                    json={"station_id": station_id, "connector_id": 1, "amount_tyiyn": 10_000},
                    headers={**auth, "Idempotency-Key": "edge-down-start"},
                )
                assert started.status_code == 201, started.text
                session_id = started.json()["session_id"]

                async def charging() -> bool:
                    tx = station.active_transaction(1)
                    return tx is not None and tx.started and tx.energy_wh >= 300

                await eventually(charging, "the car is charging")
                await first.stop()  # the gateway goes down: the charger keeps charging
                stopped = await http.post(
                    "/api/v1/charging/stop",
                    json={"session_id": session_id},
                    headers={**auth, "Idempotency-Key": "edge-down-stop"},
                )
                assert stopped.status_code == 202, stopped.text
                assert station.active_transaction(1) is not None  # nobody could tell it
                await second.start()  # the gateway is back (a new process, a new queue)
                holder.gateway = second
                handle = temporal.get_workflow_handle_for(
                    ChargingSessionWorkflow.run, charging_workflow_id(session_id)
                )
                result = await asyncio.wait_for(handle.result(), 90)  # a safety net only
            history = await handle.fetch_history()
            balance = await ledger.balance(client_id)

    assert station.active_transaction(1) is None  # stopped by the RemoteStop that followed it
    assert (result.state, result.stop_reason) == ("completed", "user")
    cost = energy_cost_tyiyn(result.energy_wh, PRICE)
    assert result.cost_tyiyn == cost and (balance.available_tyiyn, balance.held_tyiyn) == (
        INITIAL - cost,
        0,
    )
    # The order of things: the stop went to the dead gateway's queue, the reconnect told the
    # session where the charger is, and the RemoteStop went there with no timer waited out.
    events = history.events
    steps: list[tuple[str, str]] = []
    for event in events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attributes = event.activity_task_scheduled_event_attributes
            steps.append((attributes.activity_type.name, attributes.task_queue.name))
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            name = event.workflow_execution_signaled_event_attributes.signal_name
            steps.append((name, ""))
        elif event.event_type == EventType.EVENT_TYPE_TIMER_FIRED:
            steps.append(("timer fired", ""))
    stops = [i for i, step in enumerate(steps) if step[0] == "remote_stop"]
    assert steps[stops[0]][1] == first.task_queue, steps
    assert steps[stops[-1]][1] == second.task_queue, steps
    connected = steps.index((STATION_CONNECTED, ""))
    assert stops[0] < connected < stops[-1], steps
    assert ("timer fired", "") not in steps[connected : stops[-1]], steps
    assert steps.index((TRANSACTION_STOPPED, "")) > stops[-1], steps

"""A price change through the operations API on the real stack (PostgreSQL, Temporal, the
gateway and the simulator over a real websocket): the session already running is billed at
the price it started with; sessions started afterwards pay the new one — the connector's own
price where set, else the station's."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from domain.contracts.charging import SessionView, charging_workflow_id
from simulator import SimulatedStation
from tests.charging.test_end_to_end import car_full_after
from tests.ops.conftest import audit_rows
from tests.ops.stack import (
    OpsStack,
    add_station,
    driver_bearer,
    eventually,
    fund,
    headers,
    ops_stack,
)
from workflows.charging import ChargingSessionWorkflow

pytestmark = [pytest.mark.integration, pytest.mark.slow]

INITIAL = 100_000
RESERVE = 20_000
CAR_TAKES_WH = 5_000
REASON = "tariff revision for December"


async def _start(http: httpx.AsyncClient, station_id: str, connector: int, client_id: str) -> str:
    started = await http.post(
        "/api/v1/charging/start",
        json={"station_id": station_id, "connector_id": connector, "amount_tyiyn": RESERVE},
        headers={**driver_bearer(client_id), "Idempotency-Key": f"start-{uuid.uuid4().hex}"},
    )
    assert started.status_code == 201, started.text
    session_id: str = started.json()["session_id"]
    return session_id


async def _charge_to_full(
    stack: OpsStack,
    http: httpx.AsyncClient,
    station: SimulatedStation,
    session_id: str,
    client_id: str,
    connector: int,
) -> SessionView:
    async def full() -> bool:
        tx = station.active_transaction(connector)
        return tx is not None and tx.started and tx.energy_wh >= CAR_TAKES_WH

    await eventually(full, f"the car on connector {connector} took 5 kWh")
    stopped = await http.post(
        "/api/v1/charging/stop",
        json={"session_id": session_id},
        headers={**driver_bearer(client_id), "Idempotency-Key": f"stop-{session_id}"},
    )
    assert stopped.status_code == 202, stopped.text
    handle = stack.temporal.get_workflow_handle_for(
        ChargingSessionWorkflow.run, charging_workflow_id(session_id)
    )
    return await handle.result()


async def test_a_running_session_keeps_its_price_and_the_next_pays_the_new_one(
    db_sessions: async_sessionmaker[AsyncSession], temporal_env: WorkflowEnvironment
) -> None:
    station_id = f"PR-{uuid.uuid4().hex[:6]}"
    driver, other = str(uuid.uuid4()), str(uuid.uuid4())
    await add_station(db_sessions, station_id)  # 1,500 tyiyn per kWh, two connectors
    ledger = await fund(db_sessions, INITIAL, driver, other)
    async with ops_stack(db_sessions, temporal_env.client, charging=True) as stack:
        station = stack.charging_station(station_id)
        async with station, httpx.AsyncClient(base_url=stack.base_url, timeout=30) as http:
            plain_sample = station.connector(1).add_sample
            car_full_after(station, 1, CAR_TAKES_WH)
            await stack.connectors_available(station_id)
            first = await _start(http, station_id, 1, driver)

            async def charging() -> bool:
                tx = station.active_transaction(1)
                return tx is not None and tx.started and tx.energy_wh > 0

            await eventually(charging, "the first session delivers energy")
            # Mid-session: connector 1 gets its own price, the station a new one.
            operator = headers("operator")
            for path, body in (
                (f"/stations/{station_id}/connectors/1", {"price_tyiyn_per_kwh": 3_000}),
                (f"/stations/{station_id}", {"price_tyiyn_per_kwh": 2_000}),
            ):
                changed = await http.patch(
                    f"/api/v1/ops{path}", json={**body, "reason": REASON}, headers=operator
                )
                assert changed.status_code == 200, changed.text
            old = await _charge_to_full(stack, http, station, first, driver, 1)

            await stack.connectors_available(station_id)
            station.connector(1).add_sample = plain_sample  # type: ignore[method-assign]
            car_full_after(station, 1, CAR_TAKES_WH)
            car_full_after(station, 2, CAR_TAKES_WH)
            second = await _start(http, station_id, 1, driver)
            third = await _start(http, station_id, 2, other)
            on_connector = await _charge_to_full(stack, http, station, second, driver, 1)
            on_station = await _charge_to_full(stack, http, station, third, other, 2)

    # ceil(5000 Wh x price / 1000): the snapshot, then the connector's, then the station's.
    assert (old.price_tyiyn_per_kwh, old.energy_wh, old.cost_tyiyn) == (1_500, 5_000, 7_500)
    assert (on_connector.price_tyiyn_per_kwh, on_connector.cost_tyiyn) == (3_000, 15_000)
    assert (on_station.price_tyiyn_per_kwh, on_station.cost_tyiyn) == (2_000, 10_000)
    assert [view.state for view in (old, on_connector, on_station)] == ["completed"] * 3
    driver_balance = await ledger.balance(driver)
    assert (driver_balance.available_tyiyn, driver_balance.held_tyiyn) == (
        INITIAL - 7_500 - 15_000,
        0,
    )
    updates = [
        row
        for row in await audit_rows(db_sessions)
        if row.action in {"connector.update", "station.update"}
    ]
    assert [(row.action, row.reason, row.outcome) for row in updates] == [
        ("connector.update", REASON, "ok"),
        ("station.update", REASON, "ok"),
    ]

"""`POST /api/v1/ops/sessions/{id}/stop` on the real stack: two drivers charge the same energy
on one charger over a real websocket; one stops from the app, an operator stops the other.
Both settle the same, to the tyiyn, and the operator's stop is audited with its reason."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from db.models import LedgerEntry
from domain.contracts.charging import SessionView, charging_workflow_id
from tests.charging.test_end_to_end import car_full_after
from tests.ops.conftest import audit_rows
from tests.ops.stack import add_station, driver_bearer, eventually, fund, headers, ops_stack
from workflows.charging import ChargingSessionWorkflow

pytestmark = [pytest.mark.integration, pytest.mark.slow]

INITIAL = 50_000
RESERVE = 10_000
CAR_TAKES_WH = 5_000
REASON = "driver left the car plugged in at a full battery"


async def _money(
    db_sessions: async_sessionmaker[AsyncSession], session_id: str
) -> list[tuple[str, int]]:
    async with db_sessions() as session:
        rows = await session.execute(
            select(LedgerEntry.operation, LedgerEntry.amount_tyiyn)
            .where(LedgerEntry.reference == session_id)
            .order_by(LedgerEntry.id)
        )
        return [(operation, amount) for operation, amount in rows]


async def _update_inputs(
    handle: WorkflowHandle[ChargingSessionWorkflow, SessionView],
) -> list[dict[str, Any]]:
    inputs: list[dict[str, Any]] = []
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            request = event.workflow_execution_update_accepted_event_attributes.accepted_request
            if request.input.name == "stop":
                inputs += [json.loads(p.data) for p in request.input.args.payloads]
    return inputs


async def test_an_operator_stop_settles_exactly_like_the_drivers_own(
    db_sessions: async_sessionmaker[AsyncSession], temporal_env: WorkflowEnvironment
) -> None:
    station_id = f"FS-{uuid.uuid4().hex[:6]}"
    driver, other = str(uuid.uuid4()), str(uuid.uuid4())
    await add_station(db_sessions, station_id)
    ledger = await fund(db_sessions, INITIAL, driver, other)
    async with ops_stack(db_sessions, temporal_env.client, charging=True) as stack:
        station = stack.charging_station(station_id)
        async with station, httpx.AsyncClient(base_url=stack.base_url, timeout=30) as http:
            for connector in (1, 2):
                car_full_after(station, connector, CAR_TAKES_WH)
            await stack.connectors_available(station_id)
            session_ids = []
            for connector, client_id in ((1, driver), (2, other)):
                started = await http.post(
                    "/api/v1/charging/start",
                    json={
                        "station_id": station_id,
                        "connector_id": connector,
                        "amount_tyiyn": RESERVE,
                    },
                    headers={**driver_bearer(client_id), "Idempotency-Key": f"start-{connector}"},
                )
                assert started.status_code == 201, started.text
                session_ids.append(started.json()["session_id"])

            async def cars_full() -> bool:
                return all(
                    (tx := station.active_transaction(connector)) is not None
                    and tx.started
                    and tx.energy_wh >= CAR_TAKES_WH
                    for connector in (1, 2)
                )

            await eventually(cars_full, "both cars took 5 kWh")
            by_driver = await http.post(
                "/api/v1/charging/stop",
                json={"session_id": session_ids[0]},
                headers={**driver_bearer(driver), "Idempotency-Key": "stop-1"},
            )
            assert by_driver.status_code == 202, by_driver.text
            operator = headers("operator")
            # A client token, a missing reason and an unknown session change nothing.
            refused = await http.post(
                f"/api/v1/ops/sessions/{session_ids[1]}/stop",
                json={"reason": REASON},
                headers=driver_bearer(driver),
            )
            assert refused.status_code == 403
            no_reason = await http.post(
                f"/api/v1/ops/sessions/{session_ids[1]}/stop", json={}, headers=operator
            )
            assert no_reason.status_code == 422
            unknown = await http.post(
                "/api/v1/ops/sessions/nosuchsession/stop", json={"reason": REASON}, headers=operator
            )
            assert unknown.status_code == 404, unknown.text
            assert unknown.json()["error"]["code"] == "session_not_found"
            forced = await http.post(
                f"/api/v1/ops/sessions/{session_ids[1]}/stop",
                json={"reason": REASON},
                headers=operator,
            )
            assert forced.status_code == 202, forced.text
            assert forced.json()["session_id"] == session_ids[1]
            handles = [
                stack.temporal.get_workflow_handle_for(
                    ChargingSessionWorkflow.run, charging_workflow_id(session_id)
                )
                for session_id in session_ids
            ]
            results = [await handle.result() for handle in handles]
            # Stopping a finished session again answers how it ended.
            again = await http.post(
                f"/api/v1/ops/sessions/{session_ids[1]}/stop",
                json={"reason": REASON},
                headers=operator,
            )
            assert again.status_code == 202 and again.json()["state"] == "completed"

        for result in results:
            assert (result.state, result.stop_reason, result.energy_wh) == (
                "completed",
                "user",
                CAR_TAKES_WH,
            )
        assert results[0].cost_tyiyn == results[1].cost_tyiyn == 7_500  # ceil(5000 x 1500/1000)
        assert results[0].refunded_tyiyn == results[1].refunded_tyiyn == RESERVE - 7_500
        money = [await _money(db_sessions, session_id) for session_id in session_ids]
        assert (
            money[0]
            == money[1]
            == [
                ("reserve", RESERVE),
                ("capture", 7_500),
                ("release", RESERVE - 7_500),
            ]
        )
        balances = [await ledger.balance(client_id) for client_id in (driver, other)]
        assert balances[0] == balances[1]
        assert (balances[1].available_tyiyn, balances[1].held_tyiyn) == (INITIAL - 7_500, 0)

        # The workflow's history holds who forced the stop and why; the driver's holds neither.
        driver_stop, operator_stop = [await _update_inputs(handle) for handle in handles]
        assert driver_stop == [{"client_id": driver, "operator": None, "reason": None}]
        assert operator_stop[0]["client_id"] == other
        assert operator_stop[0]["reason"] == REASON and operator_stop[0]["operator"]

    rows = [
        row for row in await audit_rows(db_sessions) if row.path.startswith("/api/v1/ops/sessions")
    ]
    assert [(row.role, row.status_code) for row in rows] == [
        ("client", 403),
        ("operator", 422),
        ("operator", 404),
        ("operator", 202),
        ("operator", 202),
    ]
    ok = rows[3]
    assert (ok.target, ok.reason, ok.outcome) == (f"session:{session_ids[1]}", REASON, "pending")
    assert ok.subject == operator_stop[0]["operator"]
    assert ok.action == "sessions.stop" and ok.result is not None
    assert ok.result["workflow_id"] == charging_workflow_id(session_ids[1])
    assert ok.result["client_id"] == other
    assert ok.result["state"] in {"stopping", "completed"}

"""Meter readings end to end over a real websocket with the simulator: real PostgreSQL,
Temporal dev server, gateway + API on one uvicorn port, the worker. A session is billed only
for energy that can have flowed; after each, the ledger invariants hold."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from activities.ledger import LedgerMovement
from api.dev_tokens import issue_dev_token
from db.models import Connector, MeterValue
from domain.contracts.charging import charging_workflow_id
from domain.ledger import Operation
from domain.tariff import energy_cost_tyiyn
from simulator import SimulatedStation, StationConfig, charging
from simulator.state import MWH_PER_WH
from simulator.state import meter_value as wh_meter_value
from tests.charging.test_end_to_end import (
    INITIAL,
    PASSWORD,
    PRICE,
    SECRET,
    add_station,
    eventually,
    running_stack,
)
from tests.ledger.invariants import assert_ledger_invariants
from workflows.charging import ChargingSessionWorkflow

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def charge(
    engine: AsyncEngine,
    db_sessions: async_sessionmaker[AsyncSession],
    temporal_env: WorkflowEnvironment,
    *,
    power_w: int,
    meter_start_wh: int,
    samples_before_stop: int,
    before_stop: Callable[[SimulatedStation], None],
) -> tuple[Any, dict[str, Any], tuple[int, int], int, int]:
    """Start from the app, let the charger sample, tamper with its register, stop at the
    charger. Returns the result, the API's answer, the balance, meterStart and the highest
    stored sample."""
    client_id = str(uuid.uuid4())
    station_id = f"METER-{uuid.uuid4().hex[:6]}"
    await add_station(db_sessions, station_id)
    async with db_sessions() as session, session.begin():
        connector = await session.get(Connector, (station_id, 1))
        assert connector is not None
        connector.current_type, connector.max_power_w = "DC", 350_000
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
                power_w=power_w,
                meter_interval_s=0.2 if samples_before_stop else 3_600,
                meter_start_wh=meter_start_wh,
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
                headers={**auth, "Idempotency-Key": "meter-start"},
            )
            assert started.status_code == 201, started.text
            session_id = started.json()["session_id"]

            async def transaction_running() -> bool:
                tx = station.active_transaction(1)
                return tx is not None and tx.started and tx.transaction_id is not None

            await eventually(transaction_running, "the charger started")
            tx = station.active_transaction(1)
            assert tx is not None and tx.transaction_id is not None

            async def sampled() -> bool:
                async with db_sessions() as session:
                    count = await session.scalar(
                        select(func.count()).where(MeterValue.transaction_id == tx.transaction_id)
                    )
                    return (count or 0) >= samples_before_stop

            await eventually(sampled, f"{samples_before_stop} samples stored")
            before_stop(station)
            await station.stop_local_transaction(1)
            handle = stack.temporal.get_workflow_handle_for(
                ChargingSessionWorkflow.run, charging_workflow_id(session_id)
            )
            result = await handle.result()
            answer = (await http.get(f"/api/v1/charging/{session_id}", headers=auth)).json()
        balance = await stack.ledger.balance(client_id)
        async with db_sessions() as session:
            highest = await session.scalar(
                select(func.max(MeterValue.energy_wh)).where(
                    MeterValue.transaction_id == tx.transaction_id,
                    MeterValue.energy_wh >= tx.meter_start_wh,
                    MeterValue.energy_wh < 10**8,
                )
            )
    await assert_ledger_invariants(engine)
    return (
        result,
        answer,
        (balance.available_tyiyn, balance.held_tyiyn),
        tx.meter_start_wh,
        highest or tx.meter_start_wh,
    )


def register_to(wh: int) -> Callable[[SimulatedStation], None]:
    def tamper(station: SimulatedStation) -> None:
        station.connector(1).register_mwh = wh * MWH_PER_WH

    return tamper


async def test_an_absurd_meter_stop_captures_nothing_and_the_session_needs_review(
    engine: AsyncEngine,
    db_sessions: async_sessionmaker[AsyncSession],
    temporal_env: WorkflowEnvironment,
) -> None:
    result, answer, balance, _, _ = await charge(
        engine,
        db_sessions,
        temporal_env,
        power_w=22_000,
        meter_start_wh=0,
        samples_before_stop=0,
        before_stop=register_to(999_999_999),
    )
    assert (result.state, result.cost_tyiyn, result.refunded_tyiyn) == ("needs_review", 0, 10_000)
    assert balance == (INITIAL, 0)  # not a tyiyn taken, nothing left held
    assert (answer["state"], answer["review_reason"]) == ("needs_review", "implausible_step")
    assert result.meter_review.claimed_wh == 999_999_999
    assert result.meter_review.at_stake_tyiyn == 10_000


async def test_a_register_reset_is_billed_from_the_samples_before_it(
    engine: AsyncEngine,
    db_sessions: async_sessionmaker[AsyncSession],
    temporal_env: WorkflowEnvironment,
) -> None:
    result, answer, balance, meter_start, highest = await charge(
        engine,
        db_sessions,
        temporal_env,
        power_w=350_000,
        meter_start_wh=5_000_000,
        samples_before_stop=3,
        before_stop=register_to(0),  # the meter rebooted: meterStop 0 < meterStart
    )
    delivered = highest - meter_start
    assert delivered > 0
    cost = energy_cost_tyiyn(delivered, PRICE)
    assert (result.state, result.meter_note, result.energy_wh) == (
        "completed",
        "register_reset",
        delivered,
    )
    assert balance == (INITIAL - cost, 0)
    assert answer["meter_note"] == "register_reset" and answer["review_reason"] is None


async def test_a_genuine_350_kw_session_is_billed_in_full(
    engine: AsyncEngine,
    db_sessions: async_sessionmaker[AsyncSession],
    temporal_env: WorkflowEnvironment,
) -> None:
    result, answer, balance, meter_start, highest = await charge(
        engine,
        db_sessions,
        temporal_env,
        power_w=350_000,
        meter_start_wh=1_000_000,
        samples_before_stop=5,
        before_stop=lambda station: None,
    )
    assert (result.state, result.meter_note) == ("completed", None)
    delivered = result.energy_wh
    assert delivered >= highest - meter_start > 0
    assert balance == (INITIAL - energy_cost_tyiyn(delivered, PRICE), 0)
    assert answer["state"] == "completed"


async def test_kwh_samples_and_a_wh_meter_stop_are_billed_exactly(
    engine: AsyncEngine,
    db_sessions: async_sessionmaker[AsyncSession],
    temporal_env: WorkflowEnvironment,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The charger's MeterValues say kWh (with 3 decimals), its meterStop Wh: one quantity."""

    def in_kwh(connector: Any, **kwargs: Any) -> dict[str, object]:
        value = wh_meter_value(connector, **kwargs)
        samples: Any = value["sampledValue"]
        for sampled in samples:
            if sampled["measurand"] == "Energy.Active.Import.Register":
                sampled["value"] = str(Decimal(sampled["value"]) / 1000)
                sampled["unit"] = "kWh"
        return value

    monkeypatch.setattr(charging, "meter_value", in_kwh)
    result, answer, balance, meter_start, highest = await charge(
        engine,
        db_sessions,
        temporal_env,
        power_w=350_000,
        meter_start_wh=2_000_000,
        samples_before_stop=3,
        before_stop=lambda station: None,
    )
    assert (result.state, result.meter_note) == ("completed", None)
    assert result.energy_wh >= highest - meter_start > 0  # the kWh samples were read as Wh
    assert balance == (INITIAL - energy_cost_tyiyn(result.energy_wh, PRICE), 0)
    assert answer["review_reason"] is None

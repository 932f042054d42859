"""Card-started sessions on the real stack: PostgreSQL, the Temporal dev server, the gateway and
the API on one uvicorn port, a worker, and the simulator presenting RFID cards over a real
websocket. The card is linked and blocked through the API, as a driver does it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

import httpx
import pytest
from ocpp.v16 import call
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.ledger import Ledger
from db.models import ChargingSessionRecord, LedgerEntry, OcppTransaction
from domain.contracts.charging import SessionView, charging_workflow_id
from domain.contracts.search_attributes import CLIENT_ID, SESSION_STATE, STATION_ID
from domain.identifiers import card_session_id
from simulator import FaultPlan, SimulatedStation, Transaction
from tests.ops.stack import OpsStack, add_station, driver_bearer, fund, ops_stack
from workflows.charging import ChargingSessionWorkflow

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PRICE = 1_500  # tyiyn per kWh (tests/ops/stack.add_station)
RESERVE = 50_000  # CARD_RESERVE_TYIYN's default: 500 som
MIN_BALANCE = 5_000  # CARD_MIN_BALANCE_TYIYN's default
TAG = "04A2B3C4D5E6"
TIMEOUT_S = 60.0  # a safety net for the charger, not a timing assertion


@dataclass
class Driver:
    client_id: str
    card_id: int
    ledger: Ledger


@asynccontextmanager
async def card_world(
    db_sessions: async_sessionmaker[AsyncSession],
    temporal_env: WorkflowEnvironment,
    funds: int,
    *stations: str,
) -> AsyncIterator[tuple[OpsStack, httpx.AsyncClient, Driver]]:
    client_id = str(uuid.uuid4())
    for station_id in stations:
        await add_station(db_sessions, station_id)
    ledger = await fund(db_sessions, funds, client_id)
    async with (
        # A generous Temporal deadline: on a busy CI machine a first workflow task can be slow,
        # and a start the gateway gets no answer for is refused (a safety net, not a timing).
        ops_stack(
            db_sessions,
            temporal_env.client,
            charging=True,
            gateway_options={"signal_timeout_s": 30.0},
        ) as stack,
        httpx.AsyncClient(base_url=stack.base_url, timeout=30) as http,
    ):
        linked = await http.post(
            "/api/v1/cards",
            json={"id_tag": TAG.lower(), "label": "blue card"},
            headers=driver_bearer(client_id),
        )
        assert linked.status_code == 201, linked.text
        yield stack, http, Driver(client_id, linked.json()["id"], ledger)


def session_of(station_id: str, tx: Transaction) -> str:
    """The session the gateway names after the transaction's natural key."""
    started_at = datetime.fromisoformat(tx.started_at)
    return card_session_id(station_id, tx.connector_id, tx.id_tag, tx.meter_start_wh, started_at)


def handle_of(
    stack: OpsStack, session_id: str
) -> WorkflowHandle[ChargingSessionWorkflow, SessionView]:
    return stack.temporal.get_workflow_handle_for(
        ChargingSessionWorkflow.run, charging_workflow_id(session_id)
    )


async def ledger_of(
    db_sessions: async_sessionmaker[AsyncSession], session_id: str
) -> list[tuple[str, str, int]]:
    async with db_sessions() as session:
        rows = await session.execute(
            select(LedgerEntry.op_key, LedgerEntry.operation, LedgerEntry.amount_tyiyn)
            .where(LedgerEntry.reference == session_id)
            .order_by(LedgerEntry.id)
        )
        return [(op_key, operation, amount) for op_key, operation, amount in rows]


async def transaction_row(
    db_sessions: async_sessionmaker[AsyncSession], station_id: str
) -> list[OcppTransaction]:
    async with db_sessions() as session:
        rows = await session.scalars(
            select(OcppTransaction)
            .where(OcppTransaction.station_id == station_id)
            .order_by(OcppTransaction.id)
        )
        return list(rows)


async def answered(station: SimulatedStation, tx: Transaction) -> str:
    await station.wait_until(lambda: tx.id_tag_status is not None, TIMEOUT_S)
    assert tx.id_tag_status is not None
    return tx.id_tag_status


async def test_authorize_then_start_charges_and_the_card_again_settles_to_the_ledger(
    db_sessions: async_sessionmaker[AsyncSession], temporal_env: WorkflowEnvironment
) -> None:
    station_id = f"CS-{uuid.uuid4().hex[:6]}"
    initial = 100_000
    async with card_world(db_sessions, temporal_env, initial, station_id) as (stack, http, driver):
        station = stack.station(
            station_id, meter_interval_s=0.2, energy_per_sample_wh=500, car_takes_wh=5_000
        )
        async with station:
            await stack.connectors_available(station_id)
            assert await station.authorize(TAG.lower()) == "Accepted"
            tx = await station.present_card(TAG, connector_id=1)
            assert tx is not None
            assert await answered(station, tx) == "Accepted"
            session_id = session_of(station_id, tx)
            handle = handle_of(stack, session_id)
            # Reserved before the charger was accepted; the reservation's energy is the limit.
            assert await ledger_of(db_sessions, session_id) == [
                (f"reserve:{session_id}", "reserve", RESERVE)
            ]
            [row] = await transaction_row(db_sessions, station_id)
            assert (row.session_id, row.energy_limit_wh) == (session_id, RESERVE * 1000 // PRICE)
            await station.wait_for_energy(tx, 5_000, TIMEOUT_S)

            listed = await http.get("/api/v1/charging", headers=driver_bearer(driver.client_id))
            assert listed.status_code == 200
            [item] = listed.json()["items"]
            assert (item["session_id"], item["state"]) == (session_id, "charging")
            described = await handle.describe()
            attributes = described.typed_search_attributes
            assert attributes.get(CLIENT_ID) == driver.client_id
            assert attributes.get(STATION_ID) == station_id
            assert attributes.get(SESSION_STATE) == "charging"

            assert await station.present_card(TAG, connector_id=1) is tx  # the card again
            await station.wait_for_stop(tx, TIMEOUT_S)
            result = await handle.result()

        cost = 5_000 * PRICE // 1000  # ceil(5000 x 1500 / 1000) = 7500
        assert (result.state, result.energy_wh, result.cost_tyiyn) == ("completed", 5_000, cost)
        assert (result.reserved_tyiyn, result.refunded_tyiyn) == (RESERVE, RESERVE - cost)
        assert await ledger_of(db_sessions, session_id) == [
            (f"reserve:{session_id}", "reserve", RESERVE),
            (f"capture:{session_id}", "capture", cost),
            (f"release:{session_id}", "release", RESERVE - cost),
        ]
        balance = await driver.ledger.balance(driver.client_id)
        assert (balance.available_tyiyn, balance.held_tyiyn) == (initial - cost, 0)
        receipt = await http.get(
            f"/api/v1/charging/{session_id}/receipt", headers=driver_bearer(driver.client_id)
        )
        assert receipt.status_code == 200, receipt.text
        assert (receipt.json()["cost_tyiyn"], receipt.json()["refunded_tyiyn"]) == (
            cost,
            RESERVE - cost,
        )


async def test_start_without_authorize_reserves_what_the_balance_holds_and_stops_at_its_limit(
    db_sessions: async_sessionmaker[AsyncSession], temporal_env: WorkflowEnvironment
) -> None:
    station_id = f"CS-{uuid.uuid4().hex[:6]}"
    # Less than the 50,000 a card session reserves (and little enough energy that the fast
    # simulated samples stay within the meter check's bound for a 350 kW connector).
    funds = 6_000
    async with card_world(db_sessions, temporal_env, funds, station_id) as (stack, _http, driver):
        station = stack.charging_station(station_id)
        async with station:
            await stack.connectors_available(station_id)
            tx = await station.present_card(TAG, connector_id=2, authorize=False)
            assert tx is not None
            assert await answered(station, tx) == "Accepted"
            session_id = session_of(station_id, tx)
            # The gateway stops the charger at the energy the reservation buys.
            await station.wait_for_stop(tx, TIMEOUT_S)
            result = await handle_of(stack, session_id).result()

        limit_wh = funds * 1000 // PRICE  # 4,000 Wh
        assert result.energy_limit_wh == limit_wh
        assert (result.state, result.stop_reason) == ("completed", "limit_reached")
        assert limit_wh <= result.energy_wh
        assert result.cost_tyiyn == funds  # capped at the reservation
        assert await ledger_of(db_sessions, session_id) == [
            (f"reserve:{session_id}", "reserve", funds),
            (f"capture:{session_id}", "capture", funds),
        ]
        balance = await driver.ledger.balance(driver.client_id)
        assert (balance.available_tyiyn, balance.held_tyiyn) == (0, 0)


async def test_a_retried_start_joins_its_session_with_one_reservation(
    db_sessions: async_sessionmaker[AsyncSession], temporal_env: WorkflowEnvironment
) -> None:
    station_id = f"CS-{uuid.uuid4().hex[:6]}"
    async with card_world(db_sessions, temporal_env, 100_000, station_id) as (stack, http, driver):
        station = stack.station(
            station_id,
            faults=FaultPlan(start_transaction_repeats=2),
            meter_interval_s=0.2,
            energy_per_sample_wh=500,
            car_takes_wh=2_000,
        )
        async with station:
            await stack.connectors_available(station_id)
            tx = await station.present_card(TAG, authorize=False)
            assert tx is not None
            assert await answered(station, tx) == "Accepted"
            await station.wait_until(lambda: len(tx.assigned_ids) == 3, TIMEOUT_S)
            assert len(set(tx.assigned_ids)) == 1  # the same transaction every time
            session_id = session_of(station_id, tx)
            stopped = await http.post(
                "/api/v1/charging/stop",
                json={"session_id": session_id},
                headers={**driver_bearer(driver.client_id), "Idempotency-Key": "stop"},
            )
            assert stopped.status_code == 202, stopped.text
            await station.wait_for_stop(tx, TIMEOUT_S)
            result = await handle_of(stack, session_id).result()

        assert (result.state, result.stop_reason) == ("completed", "user")
        money = await ledger_of(db_sessions, session_id)
        assert [operation for _, operation, _ in money].count("reserve") == 1
        assert sum(amount for _, operation, amount in money if operation != "reserve") == RESERVE
        async with db_sessions() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(ChargingSessionRecord)
                .where(ChargingSessionRecord.client_id == driver.client_id)
            )
        assert count == 1


async def test_a_card_blocked_mid_session_charges_on_until_stopped_and_starts_nothing_more(
    db_sessions: async_sessionmaker[AsyncSession], temporal_env: WorkflowEnvironment
) -> None:
    station_id = f"CS-{uuid.uuid4().hex[:6]}"
    async with card_world(db_sessions, temporal_env, 100_000, station_id) as (stack, http, driver):
        station = stack.station(
            station_id, meter_interval_s=0.2, energy_per_sample_wh=500, car_takes_wh=2_000
        )
        async with station:
            await stack.connectors_available(station_id)
            tx = await station.present_card(TAG, connector_id=1)
            assert tx is not None and await answered(station, tx) == "Accepted"
            session_id = session_of(station_id, tx)
            blocked = await http.delete(
                f"/api/v1/cards/{driver.card_id}", headers=driver_bearer(driver.client_id)
            )
            assert blocked.status_code == 204
            # The card starts nothing more: Authorize says Blocked, and so does a local start.
            assert await station.authorize(TAG) == "Blocked"
            assert await station.present_card(TAG, connector_id=2) is None
            other = await station.present_card(TAG, connector_id=2, authorize=False)
            assert other is not None and await answered(station, other) == "Blocked"
            # The running session goes on (its money is reserved) until it is stopped; a retry
            # of its StartTransaction still joins it.
            retried = await station.send(
                call.StartTransaction(
                    connector_id=1,
                    id_tag=TAG,
                    meter_start=tx.meter_start_wh,
                    timestamp=tx.started_at,
                )
            )
            assert retried is not None
            assert (retried.transaction_id, retried.id_tag_info["status"]) == (
                tx.transaction_id,
                "Accepted",
            )
            await station.wait_for_energy(tx, 2_000, TIMEOUT_S)
            view = await handle_of(stack, session_id).query(ChargingSessionWorkflow.state)
            assert view.state == "charging"
            assert await station.present_card(TAG, connector_id=1) is tx
            await station.wait_for_stop(tx, TIMEOUT_S)
            result = await handle_of(stack, session_id).result()

        assert (result.state, result.energy_wh, result.cost_tyiyn) == ("completed", 2_000, 3_000)
        rows = await transaction_row(db_sessions, station_id)
        assert [(row.session_id, row.stop_reason) for row in rows] == [
            (session_id, "Local"),
            (None, "DeAuthorized"),  # the charger's own stop of the refused one, recorded once
        ]


async def test_too_low_a_balance_is_invalid_with_nothing_reserved_and_the_row_closed(
    db_sessions: async_sessionmaker[AsyncSession], temporal_env: WorkflowEnvironment
) -> None:
    station_id = f"CS-{uuid.uuid4().hex[:6]}"
    funds = MIN_BALANCE - 1
    async with card_world(db_sessions, temporal_env, funds, station_id) as (stack, _http, driver):
        station = stack.station(station_id, faults=FaultPlan())
        async with station:
            await stack.connectors_available(station_id)
            assert await station.authorize(TAG) == "Invalid"
            assert await station.present_card(TAG) is None
            tx = await station.present_card(TAG, authorize=False)
            assert tx is not None and await answered(station, tx) == "Invalid"
            session_id = session_of(station_id, tx)
            view = await handle_of(stack, session_id).result()

        assert (view.state, view.rejection) == ("rejected", "InsufficientFunds")
        assert await ledger_of(db_sessions, session_id) == []
        [row] = await transaction_row(db_sessions, station_id)
        assert row.session_id is None and row.stopped_at is not None
        async with db_sessions() as session:
            assert await session.get(ChargingSessionRecord, session_id) is None
        balance = await driver.ledger.balance(driver.client_id)
        assert (balance.available_tyiyn, balance.held_tyiyn) == (funds, 0)


async def test_two_chargers_presenting_the_card_at_once_get_one_session(
    db_sessions: async_sessionmaker[AsyncSession], temporal_env: WorkflowEnvironment
) -> None:
    first_id, second_id = (f"CS-{uuid.uuid4().hex[:6]}" for _ in range(2))
    async with card_world(db_sessions, temporal_env, 100_000, first_id, second_id) as (
        stack,
        http,
        driver,
    ):
        first, second = (
            stack.station(
                station_id, meter_interval_s=0.2, energy_per_sample_wh=500, car_takes_wh=2_000
            )
            for station_id in (first_id, second_id)
        )
        async with first, second:
            await stack.connectors_available(first_id)
            await stack.connectors_available(second_id)
            txs = await asyncio.gather(
                first.present_card(TAG, authorize=False),
                second.present_card(TAG, authorize=False),
            )
            answers = [
                await answered(station, tx)
                for station, tx in zip((first, second), txs, strict=True)
                if tx
            ]
            assert sorted(answers) == ["Accepted", "Invalid"]
            winner = 0 if answers[0] == "Accepted" else 1
            station, tx = (first, second)[winner], txs[winner]
            assert tx is not None
            session_id = session_of((first_id, second_id)[winner], tx)
            loser = txs[1 - winner]
            assert loser is not None
            loser_view = await handle_of(
                stack, session_of((first_id, second_id)[1 - winner], loser)
            ).result()
            assert (loser_view.state, loser_view.rejection) == ("rejected", "CardInUse")
            await station.present_card(TAG)
            await station.wait_for_stop(tx, TIMEOUT_S)
            result = await handle_of(stack, session_id).result()
        assert result.state == "completed"
        listed = await http.get("/api/v1/charging", headers=driver_bearer(driver.client_id))
        assert [item["session_id"] for item in listed.json()["items"]] == [session_id]
        balance = await driver.ledger.balance(driver.client_id)
        assert (balance.available_tyiyn, balance.held_tyiyn) == (100_000 - result.cost_tyiyn, 0)

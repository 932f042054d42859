"""Charger messages during a real PostgreSQL outage (the gateway's own embedded server is
stopped and started): with Temporal up the workflow is signalled directly and the rows are
written when the database is back; with both down the charger gets an error, and its retry
succeeds once the database is back, the relay delivering when Temporal returns."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from db.engine import session_factory
from domain.tariff import energy_cost_tyiyn
from simulator import FaultPlan
from tests.edge.world import (
    INITIAL,
    PRICE,
    TIMEOUT_S,
    add_station,
    eventually,
    fund,
    killable_postgres,
    killable_temporal,
    remote_start_handled,
    running_stack,
    session_result,
    session_view,
    start_session,
    stored_stop,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def test_stop_during_a_database_outage_reaches_the_workflow(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    client_id = str(uuid.uuid4())
    station_id = f"DO-{uuid.uuid4().hex[:6]}"
    async with killable_postgres(tmp_path / "pg") as (postgres, engine):
        db_sessions = session_factory(engine)
        await add_station(db_sessions, station_id)
        async with running_stack(db_sessions, temporal_env.client) as stack:
            await fund(stack, client_id)
            async with stack.station(station_id) as station:
                session_id = await start_session(stack, station_id, client_id)
                tx = await station.wait_for_transaction(timeout_s=TIMEOUT_S)
                await station.wait_for_energy(tx, 500, timeout_s=TIMEOUT_S)

                await asyncio.to_thread(postgres.stop)
                during = tx.energy_wh + 300
                await station.wait_for_energy(tx, during, timeout_s=TIMEOUT_S)

                async def sample_reached_the_workflow() -> bool:
                    view = await session_view(temporal_env.client, session_id)
                    return view.energy_wh >= during

                # MeterValues while the database is down reach the session through Temporal.
                await eventually(sample_reached_the_workflow, "a sample taken during the outage")
                await station.stop_local_transaction(reason="EVDisconnected")
                await station.wait_for_stop(tx, timeout_s=TIMEOUT_S)  # acked: Temporal took it
                assert station.transaction_message_failures == 0

                await asyncio.to_thread(postgres.start)
                result = await session_result(temporal_env.client, session_id)
                assert tx.transaction_id is not None
                transaction_id = tx.transaction_id

                async def stop_written() -> bool:
                    return await stored_stop(db_sessions, transaction_id) == tx.meter_stop_wh

                await eventually(stop_written, "the held stop was written to the database")
            balance = await stack.ledger.balance(client_id)

    cost = energy_cost_tyiyn(tx.energy_wh, PRICE)
    assert (result.state, result.energy_wh, result.cost_tyiyn) == ("completed", tx.energy_wh, cost)
    assert (balance.available_tyiyn, balance.held_tyiyn) == (INITIAL - cost, 0)


async def test_with_both_down_the_charger_gets_an_error_and_its_retry_succeeds(
    tmp_path: Path,
) -> None:
    client_id = str(uuid.uuid4())
    station_id = f"DB-{uuid.uuid4().hex[:6]}"
    async with (
        killable_postgres(tmp_path / "pg") as (postgres, engine),
        killable_temporal(tmp_path / "temporal") as temporal,
    ):
        db_sessions = session_factory(engine)
        await add_station(db_sessions, station_id)
        client = await Client.connect(temporal.address)
        async with running_stack(db_sessions, client) as stack:
            await fund(stack, client_id)
            # The usual TransactionMessageAttempts: 3 tries, then the charger gives up.
            charger = stack.station(
                station_id, transaction_message_attempts=3, transaction_message_retry_s=3.0
            )
            async with charger as station:
                session_id = await start_session(stack, station_id, client_id)
                tx = await station.wait_for_transaction(timeout_s=TIMEOUT_S)
                await station.wait_for_energy(tx, 500, timeout_s=TIMEOUT_S)

                temporal.kill()
                await asyncio.to_thread(postgres.stop)
                await station.stop_local_transaction(reason="Local")

                async def refused() -> bool:
                    return station.transaction_message_failures >= 1

                await eventually(refused, "the gateway answered the stop with an error")
                assert not tx.stop_acknowledged

                await asyncio.to_thread(postgres.start)  # Temporal is still down
                await station.wait_for_stop(tx, timeout_s=TIMEOUT_S)
                assert station.given_up_messages == []
                assert tx.transaction_id is not None
                assert await stored_stop(db_sessions, tx.transaction_id) == tx.meter_stop_wh

                await temporal.start()
                result = await session_result(client, session_id)
            balance = await stack.ledger.balance(client_id)

    cost = energy_cost_tyiyn(tx.energy_wh, PRICE)
    assert (result.state, result.energy_wh, result.cost_tyiyn) == ("completed", tx.energy_wh, cost)
    assert (balance.available_tyiyn, balance.held_tyiyn) == (INITIAL - cost, 0)


async def test_start_and_stop_during_a_database_outage_settle_exactly(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """RemoteStart went out, then the database stopped before the car was plugged in: the
    start gets a reserved transaction id and the session's verdict through Temporal."""
    client_id = str(uuid.uuid4())
    station_id = f"DS-{uuid.uuid4().hex[:6]}"
    async with killable_postgres(tmp_path / "pg") as (postgres, engine):
        db_sessions = session_factory(engine)
        await add_station(db_sessions, station_id)
        async with running_stack(db_sessions, temporal_env.client) as stack:
            await fund(stack, client_id)
            faults = FaultPlan(skip_start_transaction=True)
            async with stack.station(station_id, faults) as station:
                session_id = await start_session(stack, station_id, client_id)

                await remote_start_handled(station)

                await asyncio.to_thread(postgres.stop)
                tx = await station.start_local_transaction(1, session_id)
                await station.wait_for_transaction(timeout_s=TIMEOUT_S)
                assert tx.id_tag_status == "Accepted"  # the session's own verdict
                await station.wait_for_energy(tx, 300, timeout_s=TIMEOUT_S)
                await station.stop_local_transaction(reason="Local")
                await station.wait_for_stop(tx, timeout_s=TIMEOUT_S)
                assert station.transaction_message_failures == 0

                await asyncio.to_thread(postgres.start)
                result = await session_result(temporal_env.client, session_id)
                assert tx.transaction_id is not None
                transaction_id = tx.transaction_id

                async def rows_written() -> bool:
                    return await stored_stop(db_sessions, transaction_id) == tx.meter_stop_wh

                await eventually(rows_written, "the held start and stop were written")
            balance = await stack.ledger.balance(client_id)

    cost = energy_cost_tyiyn(tx.energy_wh, PRICE)
    assert (result.state, result.energy_wh, result.transaction_id) == (
        "completed",
        tx.energy_wh,
        tx.transaction_id,
    )
    assert (balance.available_tyiyn, balance.held_tyiyn) == (INITIAL - cost, 0)

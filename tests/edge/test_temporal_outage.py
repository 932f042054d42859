"""Charger messages during a real Temporal outage: the dev server is killed with SIGKILL and
restarted on its file. The charger is answered from what the gateway stored, and the relay
delivers the messages once Temporal is back; the session settles exactly."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from domain.tariff import energy_cost_tyiyn
from simulator import FaultPlan
from tests.edge.world import (
    AMOUNT,
    INITIAL,
    PRICE,
    TIMEOUT_S,
    add_station,
    eventually,
    fund,
    killable_temporal,
    relay_found_temporal_down,
    remote_start_handled,
    running_stack,
    session_result,
    start_session,
    stored_stop,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def test_stop_during_a_temporal_outage_is_acked_and_settles_after_it(
    db_sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    client_id = str(uuid.uuid4())
    station_id = f"TO-{uuid.uuid4().hex[:6]}"
    await add_station(db_sessions, station_id)
    async with killable_temporal(tmp_path / "temporal") as temporal:
        client = await Client.connect(temporal.address)
        async with running_stack(db_sessions, client) as stack:
            await fund(stack, client_id)
            async with stack.station(station_id) as station:
                session_id = await start_session(stack, station_id, client_id)
                tx = await station.wait_for_transaction(timeout_s=TIMEOUT_S)
                await station.wait_for_energy(tx, 500, timeout_s=TIMEOUT_S)

                temporal.kill()
                await station.stop_local_transaction(reason="EVDisconnected")
                await station.wait_for_stop(tx, timeout_s=TIMEOUT_S)  # acked while Temporal is down
                assert station.transaction_message_failures == 0
                assert tx.transaction_id is not None
                assert await stored_stop(db_sessions, tx.transaction_id) == tx.meter_stop_wh
                # Down long enough for the relay to find it so (the bug report's 27 s outage
                # lost the stop exactly here).
                await eventually(
                    lambda: relay_found_temporal_down(db_sessions, stack.gateway),
                    "the relay met the outage",
                )

                await temporal.start()
                result = await session_result(client, session_id)
            balance = await stack.ledger.balance(client_id)

    delivered = tx.energy_wh
    cost = energy_cost_tyiyn(delivered, PRICE)
    assert (result.state, result.stop_reason, result.energy_wh) == (
        "completed",
        "charger",
        delivered,
    )
    assert result.cost_tyiyn == cost < AMOUNT
    assert (balance.available_tyiyn, balance.held_tyiyn) == (INITIAL - cost, 0)


async def test_start_during_a_temporal_outage_is_answered_from_the_stored_remote_start(
    db_sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """RemoteStart reached the charger, then Temporal died before the car was plugged in."""
    client_id = str(uuid.uuid4())
    station_id = f"TS-{uuid.uuid4().hex[:6]}"
    await add_station(db_sessions, station_id)
    faults = FaultPlan(skip_start_transaction=True)
    async with killable_temporal(tmp_path / "temporal") as temporal:
        client = await Client.connect(temporal.address)
        async with running_stack(db_sessions, client) as stack:
            await fund(stack, client_id)
            async with stack.station(station_id, faults) as station:
                session_id = await start_session(stack, station_id, client_id)

                await remote_start_handled(station)
                temporal.kill()
                tx = await station.start_local_transaction(1, session_id)
                await station.wait_for_transaction(timeout_s=TIMEOUT_S)
                assert tx.id_tag_status == "Accepted"  # from the stored RemoteStart
                await station.wait_for_energy(tx, 300, timeout_s=TIMEOUT_S)

                await temporal.start()
                await station.stop_local_transaction(reason="Local")
                await station.wait_for_stop(tx, timeout_s=TIMEOUT_S)
                result = await session_result(client, session_id)
            balance = await stack.ledger.balance(client_id)

    cost = energy_cost_tyiyn(tx.energy_wh, PRICE)
    assert (result.state, result.energy_wh, result.transaction_id) == (
        "completed",
        tx.energy_wh,
        tx.transaction_id,
    )
    assert (balance.available_tyiyn, balance.held_tyiyn) == (INITIAL - cost, 0)


async def test_unknown_id_tag_during_a_temporal_outage_is_invalid(
    db_sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    station_id = f"TI-{uuid.uuid4().hex[:6]}"
    await add_station(db_sessions, station_id)
    async with killable_temporal(tmp_path / "temporal") as temporal:
        client = await Client.connect(temporal.address)
        async with (
            running_stack(db_sessions, client) as stack,
            stack.station(station_id) as station,
        ):
            temporal.kill()
            tx = await station.start_local_transaction(1, "NOBODY")
            await eventually(lambda: _finished(tx), "the charger ended the refused transaction")
    assert tx.id_tag_status == "Invalid"


async def _finished(tx: object) -> bool:
    return bool(getattr(tx, "finished", False))

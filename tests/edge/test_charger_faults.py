"""A misbehaving charger through the real gateway and session workflow: Start/Stop resent,
MeterValues duplicated and out of order, the stop sent only after a reconnect, no Heartbeat
at all (only ping/pong). The session still settles exactly on meterStop - meterStart."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from domain.tariff import energy_cost_tyiyn
from simulator import FaultPlan
from tests.edge.world import (
    INITIAL,
    PRICE,
    TIMEOUT_S,
    add_station,
    fund,
    running_stack,
    session_result,
    start_session,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HEARTBEAT_S = 1


async def test_a_messy_ping_only_charger_is_billed_exactly(
    db_sessions: async_sessionmaker[AsyncSession], temporal_env: WorkflowEnvironment
) -> None:
    client_id = str(uuid.uuid4())
    station_id = f"MF-{uuid.uuid4().hex[:6]}"
    await add_station(db_sessions, station_id)
    faults = FaultPlan(
        start_transaction_repeats=1,
        stop_transaction_repeats=1,
        retry_with_same_message_id=True,
        duplicate_meter_values=True,
        meter_values_out_of_order=True,
        stop_after_reconnect=True,
        ping_only=True,
    )
    async with running_stack(
        db_sessions,
        temporal_env.client,
        heartbeat_interval_s=HEARTBEAT_S,
        last_seen_flush_s=0.5,
        ws_ping_interval=0.3,
    ) as stack:
        await fund(stack, client_id)
        async with stack.station(station_id, faults, ping_interval_s=None) as station:
            session_id = await start_session(stack, station_id, client_id)
            tx = await station.wait_for_transaction(timeout_s=TIMEOUT_S)
            # Long past 2 x the heartbeat interval without a single Heartbeat.
            await station.wait_for_energy(tx, 1_500, timeout_s=TIMEOUT_S)
            assert station.connect_count == 1

            await station.stop_local_transaction(reason="EVDisconnected")
            await station.wait_for_stop(tx, timeout_s=TIMEOUT_S)
            result = await session_result(temporal_env.client, session_id)
            reconnects = station.connect_count - 1
        balance = await stack.ledger.balance(client_id)

    assert reconnects == 1  # the fault's own reconnect, no liveness drop
    assert tx.meter_stop_wh is not None
    delivered = tx.meter_stop_wh - tx.meter_start_wh
    cost = energy_cost_tyiyn(delivered, PRICE)
    assert (result.state, result.energy_wh, result.cost_tyiyn) == ("completed", delivered, cost)
    assert (balance.available_tyiyn, balance.held_tyiyn) == (INITIAL - cost, 0)
